import FleetCore
import Foundation

/// The parts of `kubectl get … -o json` that verify reads.
public enum KubeJSON {
    public struct List<Item: Decodable & Sendable>: Decodable, Sendable {
        public var items: [Item]
    }

    public struct Metadata: Decodable, Sendable {
        public var name: String
        public var namespace: String?
        public var labels: [String: String]?
    }

    /// A status condition, as nodes and jobs carry them.
    public struct Condition: Decodable, Sendable {
        public var type: String
        public var status: String
        public var reason: String?
        public var message: String?
    }

    public struct Node: Decodable, Sendable {
        public struct Spec: Decodable, Sendable {
            public var podCIDR: String?
            public var podCIDRs: [String]?
        }
        public struct Address: Decodable, Sendable {
            public var type: String
            public var address: String
        }
        public struct Status: Decodable, Sendable {
            public var addresses: [Address]?
            public var conditions: [KubeJSON.Condition]?
        }
        public var metadata: Metadata
        public var spec: Spec?
        public var status: Status?

        public var podCIDRs: [String] { spec?.podCIDRs ?? spec?.podCIDR.map { [$0] } ?? [] }
        public var internalIPs: [String] { (status?.addresses ?? []).filter { $0.type == "InternalIP" }.map(\.address) }
        public var ready: Condition? { status?.conditions?.first { $0.type == "Ready" } }
        public var role: String {
            let labels = metadata.labels ?? [:]
            if labels["node-role.kubernetes.io/control-plane"] != nil || labels["node-role.kubernetes.io/master"] != nil {
                return "control-plane"
            }
            return "agent"
        }
        /// An embedded-etcd member (`node-role.kubernetes.io/etcd`).
        public var etcd: Bool { metadata.labels?["node-role.kubernetes.io/etcd"] != nil }
        /// `control-plane,etcd`, `control-plane` or `agent`.
        public var roles: String { role == "control-plane" && etcd ? "control-plane,etcd" : role }
    }

    public struct Pod: Decodable, Sendable {
        public struct Spec: Decodable, Sendable {
            public var nodeName: String?
            public var hostNetwork: Bool?
        }
        public struct IP: Decodable, Sendable { public var ip: String }
        public struct Status: Decodable, Sendable {
            public var phase: String?
            public var podIP: String?
            public var podIPs: [IP]?
        }
        public var metadata: Metadata
        public var spec: Spec?
        public var status: Status?

        public var ips: [String] { status?.podIPs?.map(\.ip) ?? status?.podIP.map { [$0] } ?? [] }
    }

    public struct Service: Decodable, Sendable {
        public struct Spec: Decodable, Sendable {
            public var clusterIP: String?
            public var clusterIPs: [String]?
            public var type: String?
        }
        public var metadata: Metadata
        public var spec: Spec?

        public var clusterIPs: [String] {
            (spec?.clusterIPs ?? spec?.clusterIP.map { [$0] } ?? []).filter { !$0.isEmpty && $0 != "None" }
        }
    }

    public static func decode<Item: Decodable & Sendable>(_ type: Item.Type, _ text: String) throws -> [Item] {
        try JSONDecoder().decode(List<Item>.self, from: Data(text.utf8)).items
    }
}

/// One row of verify's table.
public struct NodeRow: Sendable, Equatable {
    public var name: String
    public var role: String
    public var internalIP: String
    public var podCIDR: String
    public var ready: String
}

/// What verify concluded: the table, and every check that does not hold yet.
public struct VerifyReport: Sendable, Equatable {
    public var rows: [NodeRow] = []
    public var problems: [String] = []
    public var notes: [String] = []
    /// Each add-on's install job, when the inventory has add-ons.
    public var addons: [String: AddonStatus.State] = [:]
    public var podsChecked = 0
    public var servicesChecked = 0

    public var passed: Bool { problems.isEmpty }

    public var table: String {
        let header = NodeRow(name: "NODE", role: "ROLE", internalIP: "INTERNAL-IP", podCIDR: "POD-CIDR", ready: "READY")
        let all = [header] + rows
        func width(_ f: (NodeRow) -> String) -> Int { all.map { f($0).count }.max() ?? 0 }
        let w = [width(\.name), width(\.role), width(\.internalIP), width(\.podCIDR)]
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
        return all.map { r in
            [pad(r.name, w[0]), pad(r.role, w[1]), pad(r.internalIP, w[2]), pad(r.podCIDR, w[3]), r.ready]
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

public enum Verify {
    /// What verify says instead of failing when `cni = "none"` leaves the nodes NotReady.
    public static let noCNINote = "cni = \"none\": nodes stay NotReady until a CNI runs (install one; this is expected, not broken)"

    /// Parses an IPv6 CIDR without insisting on zero host bits (the API never sends them anyway).
    static func cidr(_ text: String) -> IPv6CIDR? {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard parts.count == 2, let a = IPv6Address(String(parts[0])), let n = Int(parts[1]), (0...128).contains(n) else {
            return nil
        }
        return IPv6CIDR(masking: a, prefixLength: n)
    }

    /// Pure: checks the cluster's objects against the inventory.
    public static func evaluate(inventory: Inventory, nodes: [KubeJSON.Node], pods: [KubeJSON.Pod],
                                services: [KubeJSON.Service]) -> VerifyReport {
        var r = VerifyReport()
        let clusterCIDR = inventory.cluster.clusterCIDR
        let serviceCIDR = inventory.cluster.serviceCIDR
        var byName: [String: KubeJSON.Node] = [:]
        for n in nodes { byName[n.metadata.name] = n }

        for host in inventory.hosts {
            guard let node = byName[host.name] else {
                r.problems.append("\(host.name): not a node of the cluster yet")
                r.rows.append(NodeRow(name: host.name, role: host.role == .server ? "control-plane" : "agent",
                                      internalIP: "-", podCIDR: "-", ready: "missing"))
                continue
            }
            let ready = node.ready
            let readyText = ready?.status == "True" ? "Ready" : (ready.map { "NotReady (\($0.status))" } ?? "NotReady")
            r.rows.append(NodeRow(name: host.name, role: node.roles, internalIP: node.internalIPs.joined(separator: ","),
                                  podCIDR: node.podCIDRs.joined(separator: ","), ready: readyText))
            if ready?.status != "True", inventory.cluster.cni == .none {
                if !r.notes.contains(Verify.noCNINote) { r.notes.append(Verify.noCNINote) }
            } else if ready?.status != "True" {
                let why = [ready?.reason, ready?.message].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ": ")
                r.problems.append("\(host.name): not Ready" + (why.isEmpty ? "" : " (\(why))"))
            }
            r.problems += roleProblems(host, node, embeddedEtcd: inventory.servers.count > 1)
            let ips = node.internalIPs
            let parsed = ips.compactMap(IPv6Address.init)
            if ips.isEmpty {
                r.problems.append("\(host.name): no InternalIP address")
            } else if !parsed.contains(host.nodeIP) {
                r.problems.append("\(host.name): InternalIP \(ips.joined(separator: ",")) is not node_ip \(host.nodeIP)")
            }
            if ips.count != parsed.count {
                let other = ips.filter { IPv6Address($0) == nil }
                r.problems.append("\(host.name): InternalIP \(other.joined(separator: ",")) is not IPv6 (an IPv6-only node must have only IPv6 addresses)")
            }
            let cidrs = node.podCIDRs
            if cidrs.isEmpty {
                r.problems.append("\(host.name): no podCIDR allocated yet")
            }
            for text in cidrs {
                guard let c = cidr(text) else {
                    r.problems.append("\(host.name): podCIDR \(text) is not an IPv6 range")
                    continue
                }
                if !clusterCIDR.contains(c) {
                    r.problems.append("\(host.name): podCIDR \(text) is outside cluster_cidr \(clusterCIDR)")
                }
            }
        }
        let extra = nodes.map(\.metadata.name).filter { inventory.host(named: $0) == nil }
        if !extra.isEmpty {
            r.notes.append("node(s) not in the inventory: \(extra.sorted().joined(separator: ", "))")
        }

        for pod in pods {
            let phase = pod.status?.phase ?? ""
            if pod.spec?.hostNetwork == true || phase == "Succeeded" || phase == "Failed" { continue }
            let ips = pod.ips
            if ips.isEmpty { continue }
            r.podsChecked += 1
            let name = "\(pod.metadata.namespace ?? "default")/\(pod.metadata.name)"
            r.problems += addressProblems(ips, "pod \(name): IP", inside: clusterCIDR, named: "cluster_cidr")
        }

        for svc in services {
            let ips = svc.clusterIPs
            if ips.isEmpty { continue }
            r.servicesChecked += 1
            let name = "\(svc.metadata.namespace ?? "default")/\(svc.metadata.name)"
            r.problems += addressProblems(ips, "service \(name): cluster IP", inside: serviceCIDR, named: "service_cidr")
        }
        return r
    }

    /// A server must be a control-plane node (and, with several servers, an etcd member); an agent
    /// must not be one.
    static func roleProblems(_ host: FleetCore.Host, _ node: KubeJSON.Node, embeddedEtcd: Bool) -> [String] {
        switch host.role {
        case .server where node.role != "control-plane":
            return ["\(host.name): registered without the control-plane role, although the inventory says server "
                    + "(it runs K3s as an agent: fleet reset --limit \(host.name), then fleet up)"]
        case .server where embeddedEtcd && !node.etcd:
            return ["\(host.name): a control-plane node but not an etcd member; with several servers each must be one "
                    + "(the first server needs cluster-init, the others server: and the token)"]
        case .agent where node.role == "control-plane":
            return ["\(host.name): a control-plane node, although the inventory says agent "
                    + "(fleet reset --limit \(host.name), then fleet up)"]
        default:
            return []
        }
    }

    /// The three lists in one round trip (and the add-ons' HelmCharts and Jobs when there are add-ons).
    static func command(addons: Bool) -> String {
        var s = FactScript()
        for kind in ["nodes", "pods", "svc"] {
            s.add(kind, "\(K3sInstall.binaryPath) kubectl get \(kind) \(kind == "nodes" ? "" : "-A ")-o json </dev/null")
        }
        if addons { AddonStatus.addFacts(&s) }
        return s.command
    }

    static let command = command(addons: false)

    /// Pure: the command's output → a report, or why it could not be read.
    public static func evaluate(output: String, inventory: Inventory, addons: [String] = []) -> VerifyReport {
        let s = FactScript.sections(output)
        var r: VerifyReport
        do {
            let nodes = try KubeJSON.decode(KubeJSON.Node.self, s["nodes"] ?? "")
            let pods = try KubeJSON.decode(KubeJSON.Pod.self, s["pods"] ?? "")
            let services = try KubeJSON.decode(KubeJSON.Service.self, s["svc"] ?? "")
            r = evaluate(inventory: inventory, nodes: nodes, pods: pods, services: services)
            if !addons.isEmpty {
                if let states = AddonStatus.parse(s, addons: addons, pods: pods) {
                    r.addons = states
                    for addon in addons {
                        if case .waiting(let why)? = states[addon] { r.problems.append("add-on \(addon): \(why)") }
                        if case .failed(let job, let pod, let reason)? = states[addon] {
                            r.problems.append("add-on \(addon): job \(job) failed" + (reason.isEmpty ? "" : " (\(reason))")
                                              + (pod.map { ", pod \($0)" } ?? ""))
                        }
                    }
                } else {
                    r.problems.append("the API did not list HelmCharts and Jobs yet")
                }
            }
        } catch {
            r = VerifyReport()
            r.problems.append("the API did not answer with node, pod and service lists yet")
        }
        return r
    }
}

/// `k3s_verify`: polls the cluster until every inventory host is a Ready node with its node_ip
/// and its role (servers control-plane, and etcd members when there are several), a pod range inside cluster_cidr, every pod IP is IPv6 inside cluster_cidr and every
/// service IP inside service_cidr. Prints a table; on timeout lists what is not yet true.
///
///     action = "k3s_verify"
///     target = "first-server"
///     timeout = 180    # optional
///     interval = 2     # optional
public struct K3sVerifyAction: Action {
    public var wait: Double
    public var interval: Double

    /// Whose add-ons' install jobs verify waits for: `cluster` (the K3s playbook's) or `storage`.
    public var addonGroup: String

    public init(_ p: StepParams) throws {
        wait = try p.number("timeout") ?? 180
        interval = try p.number("interval") ?? 2
        addonGroup = try p.string("addons") ?? "cluster"
        guard wait > 0 else { throw p.error("timeout", "must be > 0") }
        guard interval > 0 else { throw p.error("interval", "must be > 0") }
        guard AddonsSection.groups.contains(addonGroup) else {
            throw p.error("addons", "must be one of \(AddonsSection.groups.joined(separator: ", "))")
        }
    }

    public init(wait: Double = 180, interval: Double = 2, addonGroup: String = "cluster") {
        self.wait = wait
        self.interval = interval
        self.addonGroup = addonGroup
    }

    /// What verify compares the cluster with: every host's name, role and node IP, the two ranges.
    public struct Inputs: Encodable {
        public struct Node: Encodable {
            public var name: String
            public var role: HostRole
            public var nodeIP: IPv6Address
        }

        public var nodes: [Node]
        public var clusterCIDR: IPv6CIDR
        public var serviceCIDR: IPv6CIDR
        public var wait: Double
        public var interval: Double
        /// The add-ons (of ``addonGroup``) whose install job verify waits for.
        public var addons: [String]
        public var cni: CNI
    }

    public func inputs(host: FleetCore.Host, inventory: Inventory) -> Inputs {
        Inputs(nodes: inventory.hosts.map { Inputs.Node(name: $0.name, role: $0.role, nodeIP: $0.nodeIP) },
               clusterCIDR: inventory.cluster.clusterCIDR, serviceCIDR: inventory.cluster.serviceCIDR,
               wait: wait, interval: interval, addons: Addons.effective(inventory, group: addonGroup).map(\.name),
               cni: inventory.cluster.cni)
    }

    public func describe(_ vars: TemplateVariables) -> [String] {
        ["until every host is a Ready node with its node_ip and role (servers control-plane), pod CIDRs and pod IPs in \(vars["cluster.cluster_cidr"]) "
            + "and service IPs in \(vars["cluster.service_cidr"]) (every \(interval) s, at most \(Int(wait)) s)"]
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        let start = Date()
        var polls = 0
        let addons = inputs(host: ctx.host, inventory: ctx.inventory).addons
        let command = Verify.command(addons: !addons.isEmpty)
        while true {
            polls += 1
            let r = try ctx.run(command, timeout: min(60, max(10, wait)))
            let report = Verify.evaluate(output: r.stdoutText, inventory: ctx.inventory, addons: addons)
            let elapsed = Date().timeIntervalSince(start)
            try Self.failOnFailedAddon(report, ctx, r)
            if report.passed {
                var lines = ["\(ctx.inventory.hosts.count) node(s) Ready on IPv6, \(report.podsChecked) pod(s) and "
                    + "\(report.servicesChecked) service(s) in range (after \(polls) poll(s), \(String(format: "%.1f", elapsed)) s)"]
                if !addons.isEmpty { lines.append("add-on job(s) complete: " + addons.map(AddonStatus.jobName).joined(separator: ", ")) }
                lines.append(report.table)
                lines += report.notes.map { "note: " + $0 }
                return .ok(lines.joined(separator: "\n"))
            }
            if elapsed + interval > wait || ctx.cancelled {
                var lines = ["not yet true after \(Int(elapsed)) s (\(polls) poll(s)):"]
                lines += report.problems.map { "  - " + $0 }
                lines.append(report.table)
                throw TaskFailure(lines.joined(separator: "\n"), result: r)
            }
            Thread.sleep(forTimeInterval: interval)
        }
    }
}

extension K3sVerifyAction {
    /// A failed install job will not recover by waiting: fail now, naming the job, its pod and its last log lines.
    static func failOnFailedAddon(_ report: VerifyReport, _ ctx: TaskContext, _ r: CommandResult) throws {
        for name in report.addons.keys.sorted() {
            guard case .failed(let job, let listedPod, let reason)? = report.addons[name] else { continue }
            var lines = ["add-on \(name): job \(job) failed" + (reason.isEmpty ? "" : " (\(reason))")]
            // The pods were listed before the jobs: a pod that failed in between is looked up again.
            var pod = listedPod
            if pod == nil, let again = try? ctx.run(AddonStatus.podsCommand(job: job), timeout: 30),
               let pods = try? KubeJSON.decode(KubeJSON.Pod.self, again.stdoutText) {
                pod = AddonStatus.failedPod(job: job, pods: pods)
            }
            if let pod {
                let logs = try ctx.run(AddonStatus.logCommand(pod: pod), timeout: 30)
                lines.append("pod \(pod), last log lines:")
                lines += logs.stdoutText.split(separator: "\n").suffix(20).map { "  " + $0 }
            }
            lines.append("fix the chart or its values in [addons.\(name)] and run fleet up again")
            throw TaskFailure(lines.joined(separator: "\n"), result: r)
        }
    }
}

/// `<what> <ip> is not IPv6` / `… is outside <name> <range>` for each address that is not in `range`.
func addressProblems(_ ips: [String], _ what: String, inside range: IPv6CIDR, named rangeName: String) -> [String] {
    ips.compactMap { text in
        guard let a = IPv6Address(text) else { return "\(what) \(text) is not IPv6" }
        return range.contains(a) ? nil : "\(what) \(text) is outside \(rangeName) \(range)"
    }
}
