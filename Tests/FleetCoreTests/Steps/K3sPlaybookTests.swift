import FleetCore
import FleetTestSupport
@testable import FleetSteps
import Foundation
import XCTest

/// The K3s config files, the forwarding values, the playbook and add-worker's plan.
final class K3sPlaybookTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path
    static var playbookPath: String { repo + "/playbooks/k3s-ipv6.toml" }

    func inventory(_ hosts: [(String, HostRole)] = [("s1", .server), ("a1", .agent), ("a2", .agent)],
                   cluster: ClusterConfig? = nil) throws -> Inventory {
        let base = Fixtures.inventory(hosts)
        var inv = try Inventory(path: base.path, cluster: base.cluster, k3s: base.k3s, hosts: base.hosts)
        if let cluster { inv.cluster = cluster }
        return inv
    }

    func testServerConfig() throws {
        var cluster = ClusterConfig(name: "lab", disable: ["traefik", "servicelb"], k3sVersion: "v1.31.5+k3s1",
                                    tlsSAN: ["k3s.example.org", "fd00:10:0::1", "2001:db8::5"])
        cluster.clusterCIDR = try IPv6CIDR(parsing: "2001:20:30::/56")
        let inv = try inventory(cluster: cluster)
        let text = try K3sConfigFile.render(K3sConfigFile.server(host: inv.hosts[0], inventory: inv))
        XCTAssertEqual(text, """
            # Written by fleet. Changes here are overwritten on the next run.
            node-name: "s1"
            node-ip: "fd00:10::1"
            cluster-cidr: "2001:20:30::/56"
            service-cidr: "fd00:43::/112"
            cluster-dns: "fd00:43::a"
            flannel-ipv6-masq: true
            disable:
            - "traefik"
            - "servicelb"
            tls-san:
            - "fd00:10::1"
            - "k3s.example.org"
            - "2001:db8::5"
            write-kubeconfig-mode: "0600"

            """)
    }

    func testServerConfigWithoutDisable() throws {
        let inv = try inventory()
        let text = try K3sConfigFile.render(K3sConfigFile.server(host: inv.hosts[0], inventory: inv))
        XCTAssertFalse(text.contains("disable"))
        XCTAssertTrue(text.contains("tls-san:\n- \"fd00:10::1\"\nwrite-kubeconfig-mode: \"0600\"\n"), text)
    }

    func testSeveralServersFirstInitialisesEtcdOthersJoinWithTheSameClusterKeys() throws {
        var cluster = ClusterConfig(name: "lab", disable: ["traefik"], k3sVersion: "v1.31.5+k3s1", tlsSAN: ["api.example.org"])
        cluster.flannelIPv6Masq = false
        let inv = try inventory([("s1", .server), ("s2", .server), ("a1", .agent), ("s3", .server)], cluster: cluster)
        let first = try K3sConfigFile.render(K3sConfigFile.server(host: inv.hosts[0], inventory: inv))
        XCTAssertEqual(first, """
            # Written by fleet. Changes here are overwritten on the next run.
            cluster-init: true
            node-name: "s1"
            node-ip: "fd00:10::1"
            cluster-cidr: "fd00:42::/56"
            service-cidr: "fd00:43::/112"
            cluster-dns: "fd00:43::a"
            flannel-ipv6-masq: false
            disable:
            - "traefik"
            tls-san:
            - "fd00:10::1"
            - "api.example.org"
            write-kubeconfig-mode: "0600"

            """)
        let joining = try K3sConfigFile.render(K3sConfigFile.server(host: inv.hosts[3], inventory: inv))
        XCTAssertEqual(joining, """
            # Written by fleet. Changes here are overwritten on the next run.
            server: "https://[fd00:10::1]:6443"
            token-file: "/etc/rancher/k3s/fleet-token"
            node-name: "s3"
            node-ip: "fd00:10::4"
            cluster-cidr: "fd00:42::/56"
            service-cidr: "fd00:43::/112"
            cluster-dns: "fd00:43::a"
            flannel-ipv6-masq: false
            disable:
            - "traefik"
            tls-san:
            - "fd00:10::4"
            - "api.example.org"
            write-kubeconfig-mode: "0600"

            """)
        // The keys K3s compares between servers come out byte for byte the same on every server.
        let keys = Set(K3sConfigFile.clusterWide(inv).map(\.0))
        XCTAssertEqual(keys, ["cluster-cidr", "service-cidr", "cluster-dns", "flannel-ipv6-masq", "disable"])
        func clusterLines(_ text: String) -> [String] {
            var out: [String] = []
            var inList = false
            for line in text.split(separator: "\n").map(String.init) {
                if line.hasPrefix("- ") { if inList { out.append(line) }; continue }
                let key = String(line.split(separator: ":").first ?? "")
                inList = keys.contains(key)
                if inList { out.append(line) }
            }
            return out
        }
        for host in inv.servers {
            let text = try K3sConfigFile.render(K3sConfigFile.server(host: host, inventory: inv))
            XCTAssertEqual(clusterLines(text), clusterLines(first), host.name)
        }
        XCTAssertEqual(clusterLines(first).count, 6)
    }

    func testServerPlanSaysJoinOrClusterInit() throws {
        let inv = try inventory([("s1", .server), ("s2", .server), ("s3", .server)])
        let action = K3sServerAction()
        let first = action.describe(TemplateVariables(host: inv.hosts[0], inventory: inv)).joined(separator: "\n")
        let other = action.describe(TemplateVariables(host: inv.hosts[1], inventory: inv)).joined(separator: "\n")
        XCTAssertTrue(first.contains("cluster-init"), first)
        XCTAssertFalse(first.contains("upload <secret"), first)
        XCTAssertTrue(other.contains("server https://[fd00:10::1]:6443"), other)
        XCTAssertTrue(other.contains("upload <secret token> to /etc/rancher/k3s/fleet-token mode 600"), other)
        let single = try inventory([("s1", .server), ("a1", .agent)])
        XCTAssertFalse(action.describe(TemplateVariables(host: single.hosts[0], inventory: single)).joined().contains("cluster-init"))
    }

    func testAgentsRegisterThroughTheRegistrationAddress() throws {
        var cluster = ClusterConfig(name: "lab", k3sVersion: "v1.31.5+k3s1", tlsSAN: ["k3s.example.org"])
        cluster.registrationAddress = "k3s.example.org"
        let inv = try inventory([("s1", .server), ("s2", .server), ("s3", .server), ("a1", .agent)], cluster: cluster)
        let agent = try K3sConfigFile.render(K3sConfigFile.agent(host: inv.hosts[3], inventory: inv))
        XCTAssertTrue(agent.contains("server: \"https://k3s.example.org:6443\"\n"), agent)
        // Joining servers still join the first server, which is a member already.
        let joining = try K3sConfigFile.render(K3sConfigFile.server(host: inv.hosts[1], inventory: inv))
        XCTAssertTrue(joining.contains("server: \"https://[fd00:10::1]:6443\"\n"), joining)
        let plan = K3sAgentAction().describe(TemplateVariables(host: inv.hosts[3], inventory: inv)).joined(separator: "\n")
        XCTAssertTrue(plan.contains("server https://k3s.example.org:6443"), plan)
    }

    func testAgentConfigBracketsTheServerAndNamesTheTokenFile() throws {
        let inv = try inventory()
        let text = try K3sConfigFile.render(K3sConfigFile.agent(host: inv.hosts[2], inventory: inv))
        XCTAssertEqual(text, """
            # Written by fleet. Changes here are overwritten on the next run.
            server: "https://[fd00:10::1]:6443"
            node-name: "a2"
            node-ip: "fd00:10::3"
            token-file: "/etc/rancher/k3s/fleet-token"

            """)
    }

    func testForwardingValues() {
        XCTAssertEqual(IPv6ForwardingAction.values(uplink: "eth0").map { "\($0.key)=\($0.value)" }, [
            "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.default.forwarding=1",
            "net.ipv6.conf.default.accept_ra=2", "net.ipv6.conf.eth0.accept_ra=2",
        ])
        XCTAssertEqual(IPv6ForwardingAction.values(uplink: "eth0.100").last?.key, "net/ipv6/conf/eth0.100/accept_ra",
                       "a VLAN interface's dot would split the dotted key")
    }

    func playbook() throws -> Playbook {
        try Playbook.load(path: Self.playbookPath, registry: K3sActions.registry)
    }

    func testThePlaybookLoadsWithEveryStepDescribed() throws {
        let book = try playbook()
        XCTAssertEqual(book.steps.map(\.name),
                       ["preflight", "kernel-ipv6", "forwarding", "registries", "server-install", "token", "server-join",
                        "addons", "agent-join", "verify"])
        XCTAssertEqual(book.steps.map(\.actionName),
                       ["k3s_preflight", "sysctl", "ipv6_forwarding", "k3s_registries", "k3s_server", "fetch_secret", "k3s_server",
                        "k3s_addons", "k3s_agent", "k3s_verify"])
        let join = try XCTUnwrap(book.step(named: "server-join"))
        XCTAssertEqual(join.target, .otherServers)
        XCTAssertEqual(join.needs, ["token"])
        XCTAssertEqual(join.serial, 1, "servers join etcd one at a time")
        XCTAssertEqual(book.step(named: "verify")?.after, ["server-join", "agent-join", "addons"])
        XCTAssertEqual(book.step(named: "addons")?.target, .servers, "every server holds the same manifests")
        for step in book.steps { XCTAssertFalse(step.description.isEmpty, step.name) }
        XCTAssertEqual(book.step(named: "agent-join")?.needs, ["token"])
        XCTAssertEqual(book.step(named: "token")?.action.produces, ["token"])
        XCTAssertEqual(book.step(named: "server-install")?.target, .firstServer)
        XCTAssertEqual(book.step(named: "verify")?.target, .firstServer)
        XCTAssertEqual(book.step(named: "agent-join")?.target, .agents)
    }

    func testUnknownParametersAreRefused() {
        XCTAssertThrowsError(try Fixtures.playbook("""
            [[steps]]
            name = "p"
            action = "k3s_preflight"
            allow_dynamic_adress = true
            """, registry: K3sActions.registry)) { error in
            XCTAssertTrue("\(error)".contains("did you mean \"allow_dynamic_address\""), "\(error)")
        }
    }

    func testAddWorkerTouchesOnlyTheNewHostAndTheServer() throws {
        let inv = try inventory([("s1", .server), ("a1", .agent), ("a2", .agent), ("new", .agent)])
        let book = try playbook()
        let runs = AddWorkerVerb.runs(playbook: book, inventory: inv, worker: "new")
        XCTAssertEqual(runs.count, 2)
        let join = Planner.tasks(inventory: inv, playbook: book, limit: runs[0].limit, steps: runs[0].steps)
        XCTAssertEqual(join.map { "\($0.host.name) \($0.step.name)" }, [
            "new preflight", "new kernel-ipv6", "new forwarding", "new registries", "s1 token", "new agent-join",
        ])
        let verify = Planner.tasks(inventory: inv, playbook: book, limit: runs[1].limit, steps: runs[1].steps)
        XCTAssertEqual(verify.map { "\($0.host.name) \($0.step.name)" }, ["s1 verify"])
        XCTAssertEqual(runs[0].command, "add-worker")
    }

    func testPlansNeverContainTheToken() throws {
        let inv = try inventory()
        let book = try playbook()
        for host in inv.hosts {
            let vars = TemplateVariables(host: host, inventory: inv)
            for step in book.steps {
                let text = step.action.describe(vars).joined(separator: "\n")
                XCTAssertFalse(text.contains("K10"), text)
            }
        }
        let agentPlan = book.step(named: "agent-join")!.action.describe(TemplateVariables(host: inv.hosts[1], inventory: inv))
        XCTAssertTrue(agentPlan[0].contains("server https://[fd00:10::1]:6443"), agentPlan[0])
        XCTAssertTrue(agentPlan[1].contains("<secret token>"), agentPlan[1])
    }
}
