import FleetCore
import Foundation

/// One node's upgrade to a new K3s release: facts → a pure plan → apply.
///
/// A server: replace the binary, restart, wait for `/readyz` and its node `Ready` at the new
/// `kubeletVersion`. An agent: cordon and drain it first (through the first server's kubectl),
/// the same, then uncordon it. A node that fails stays as it is (an agent stays cordoned), so
/// nothing is scheduled onto a half-upgraded node; `fleet upgrade --retry-failed` resumes it.
/// `config.yaml` is never touched: K3s keeps its settings there across upgrades.
public enum NodeUpgrade {
    /// What the node should end with, and how to get there. The step's digest.
    public struct Wanted: Sendable, Equatable, Encodable {
        public var role: K3sInstall.Role
        public var version: K3sVersion
        /// Air-gap: the directory of the new release and the SHA-256 of its files (remote path → hash for images).
        public var airgapDir: String?
        public var binarySHA: String?
        public var installerSHA: String?
        public var images: [String: String]
        /// Agents: evict their pods before the restart.
        public var drain: Bool
        public var drainGrace: Int
        public var drainTimeout: Int
        /// Seconds to wait for the node to be Ready at the new version.
        public var wait: Double
        /// The server whose kubectl cordons, drains and watches agents.
        public var kubectlHost: String

        public init(role: K3sInstall.Role, version: K3sVersion, airgapDir: String? = nil, binarySHA: String? = nil,
                    installerSHA: String? = nil, images: [String: String] = [:], drain: Bool = true,
                    drainGrace: Int = 120, drainTimeout: Int = 300, wait: Double = 300, kubectlHost: String) {
            self.role = role
            self.version = version
            self.airgapDir = airgapDir
            self.binarySHA = binarySHA
            self.installerSHA = installerSHA
            self.images = images
            self.drain = drain
            self.drainGrace = drainGrace
            self.drainTimeout = drainTimeout
            self.wait = wait
            self.kubectlHost = kubectlHost
        }
    }

    /// What is on the node now.
    public struct Facts: Sendable, Equatable {
        /// `k3s --version` of the installed binary.
        public var binaryVersion: K3sVersion?
        public var hashes: [String: String]
        /// The node as the API shows it (nil: not listed).
        public var node: NodeState?

        public init(binaryVersion: K3sVersion?, hashes: [String: String] = [:], node: NodeState?) {
            self.binaryVersion = binaryVersion
            self.hashes = hashes
            self.node = node
        }
    }

    public enum Change: Sendable, Equatable, CustomStringConvertible {
        case cordon, drain, uploadBinary, uploadInstaller, uploadImage(String), runInstaller, restart, waitReady, uncordon

        public var description: String {
            switch self {
            case .cordon: return "cordon"
            case .drain: return "drain"
            case .uploadBinary: return "replace k3s"
            case .uploadInstaller: return "upload install.sh"
            case .uploadImage(let p): return "upload \((p as NSString).lastPathComponent)"
            case .runInstaller: return "run the installer"
            case .restart: return "restart"
            case .waitReady: return "wait until Ready"
            case .uncordon: return "uncordon"
            }
        }
    }

    /// Pure: the changes from `f` to `w`; empty when the node already runs the new release.
    /// `uncordonLeftover`: an agent found at the new version but cordoned is uncordoned (a failed
    /// upgrade left it so; only under `--retry-failed`, so a node cordoned by hand stays cordoned).
    public static func plan(_ f: Facts, _ w: Wanted, uncordonLeftover: Bool = false) -> [Change] {
        let binaryCurrent = f.binaryVersion == w.version
        let running = f.node?.upgraded(to: w.version) ?? false
        if binaryCurrent && running {
            return w.role == .agent && uncordonLeftover && f.node?.unschedulable == true ? [.uncordon] : []
        }
        var c: [Change] = []
        if w.role == .agent {
            c.append(.cordon)
            if w.drain { c.append(.drain) }
        }
        if !binaryCurrent {
            if w.airgapDir != nil {
                c.append(.uploadBinary)
                if let sha = w.installerSHA, f.hashes[K3sInstall.installerPath] != sha { c.append(.uploadInstaller) }
                for (path, sha) in w.images.sorted(by: { $0.key < $1.key }) where f.hashes[path] != sha {
                    c.append(.uploadImage(path))
                }
            }
            c.append(.runInstaller)
        }
        c += [.restart, .waitReady]
        if w.role == .agent { c.append(.uncordon) }
        return c
    }

    static func factScript(_ w: Wanted) -> FactScript {
        var s = FactScript()
        let paths = [K3sInstall.binaryPath, K3sInstall.installerPath] + w.images.keys.sorted()
        s.add("version", "\(K3sInstall.binaryPath) --version </dev/null | head -n 1")
        s.add("sha", "sha256sum -- " + paths.map(shellQuote).joined(separator: " "))
        return s
    }

    /// The connection kubectl runs on: the node itself for a server, else the first server.
    static func kubectlConnection(_ w: Wanted, _ ctx: TaskContext) throws -> Connection {
        if w.role == .server { return ctx.connection }
        guard let host = ctx.inventory.host(named: w.kubectlHost) else {
            throw TaskFailure("no host \(w.kubectlHost) in the inventory to run kubectl on")
        }
        return try ctx.connection(to: host)
    }

    static func nodeState(_ name: String, on c: Connection, timeout: Double) -> NodeState? {
        guard let r = try? c.run(NodeCommands.get(name), stdin: nil, timeout: timeout), r.succeeded else { return nil }
        return NodeState.parse(r.stdoutText)?[name]
    }

    /// Runs the upgrade on one node.
    static func run(_ w: Wanted, uncordonLeftover: Bool, _ ctx: TaskContext) throws -> ActionOutcome {
        let name = ctx.host.name
        let r = try ctx.run(factScript(w).command)
        guard r.succeeded else { throw TaskFailure("gathering facts: \(r.statusText)", result: r) }
        let sections = FactScript.sections(r.stdoutText)
        let kubectl = try kubectlConnection(w, ctx)
        let facts = Facts(binaryVersion: K3sVersion(versionOutput: sections["version"] ?? ""),
                          hashes: K3sInstall.parseHashes(sections["sha"] ?? ""),
                          node: nodeState(name, on: kubectl, timeout: 30))
        let changes = plan(facts, w, uncordonLeftover: uncordonLeftover)
        if changes.isEmpty { return .ok("k3s \(w.version) running, node Ready at \(w.version)") }
        let from = facts.binaryVersion?.description ?? "an unknown version"
        var waited = ""
        for change in changes {
            switch change {
            case .cordon:
                try check(kubectl.run(NodeCommands.cordon(name), stdin: nil, timeout: ctx.commandTimeout), "cordoning \(name)")
            case .drain:
                let d = try kubectl.run(NodeCommands.drain(name, grace: w.drainGrace, timeout: w.drainTimeout), stdin: nil,
                                        timeout: Double(w.drainTimeout + w.drainGrace + 60))
                if !d.succeeded {
                    throw TaskFailure(drainFailure(name, w, d), result: d)
                }
            case .uploadBinary:
                try installBinary(w, ctx)
            case .uploadInstaller:
                try ctx.upload(try LocalFile.contents(of: local(w, "install.sh")), to: K3sInstall.installerPath, mode: 0o755)
            case .uploadImage(let path):
                let file = (path as NSString).lastPathComponent
                try ctx.upload(try LocalFile.contents(of: local(w, file)), to: path, mode: 0o644)
            case .runInstaller:
                try ctx.runChecked(K3sInstall.installerCommand(w.role, source: w.airgapDir != nil ? .airgap : .script,
                                                               version: w.version), "the K3s installer failed")
            case .restart:
                try ctx.runChecked(K3sInstall.startCommand(w.role, stopFirst: true), "restarting \(w.role.service)")
            case .waitReady:
                waited = try waitReady(w, kubectl, ctx)
            case .uncordon:
                try check(kubectl.run(NodeCommands.uncordon(name), stdin: nil, timeout: ctx.commandTimeout),
                          "uncordoning \(name)")
            }
        }
        if changes == [.uncordon] { return .changed("at \(w.version) already; uncordoned") }
        return .changed("\(from) → \(w.version): " + changes.map(\.description).joined(separator: ", ")
            + (waited.isEmpty ? "" : "; \(waited)"))
    }

    static func check(_ r: CommandResult, _ what: String) throws {
        if !r.succeeded { throw TaskFailure("\(what) failed: \(r.failureText)", result: r) }
    }

    static func drainFailure(_ name: String, _ w: Wanted, _ r: CommandResult) -> String {
        let lines = r.stderrText.split(separator: "\n").map(String.init)
        let why = lines.last { $0.contains("error") || $0.contains("timeout") } ?? lines.last ?? r.statusText
        return "draining \(name) did not finish within \(w.drainTimeout) s (\(why)); the node stays cordoned and "
            + "keeps \(w.version) unapplied: clear what blocks the eviction (a disruption budget, a stuck pod), "
            + "then run fleet upgrade --retry-failed"
    }

    static func local(_ w: Wanted, _ file: String) -> String {
        ((w.airgapDir ?? "") as NSString).appendingPathComponent(file)
    }

    /// Uploads the new binary beside the installed one, checks its version, then moves it in place
    /// (the running K3s keeps its old file until it restarts).
    static func installBinary(_ w: Wanted, _ ctx: TaskContext) throws {
        let staged = K3sInstall.binaryPath + ".fleet-new"
        try ctx.upload(try LocalFile.contents(of: local(w, "k3s")), to: staged, mode: 0o755)
        let v = try ctx.runChecked("\(staged) --version </dev/null | head -n 1", "running the uploaded k3s")
        let got = K3sVersion(versionOutput: v.stdoutText)
        guard got == w.version else {
            _ = try? ctx.run("rm -f \(staged)")
            throw TaskFailure("the k3s in \(w.airgapDir ?? "the air-gap directory") is \(got?.description ?? "an unknown version"), "
                + "not \(w.version)", result: v)
        }
        try ctx.runChecked("mv -f \(staged) \(K3sInstall.binaryPath)", "installing the k3s binary")
    }

    /// Polls until the node is Ready at the new version (a server also answers `/readyz`). Fails
    /// when the service fails or the wait runs out; never returns early on an old Ready.
    static func waitReady(_ w: Wanted, _ kubectl: Connection, _ ctx: TaskContext) throws -> String {
        let start = Date()
        var last = "no answer yet"
        while true {
            var s = FactScript()
            s.add("show", K3sInstall.showCommand(w.role))
            if w.role == .server { s.add("readyz", "\(K3sInstall.binaryPath) kubectl get --raw /readyz </dev/null") }
            let r = try ctx.run(s.command, timeout: 30)
            let sec = FactScript.sections(r.stdoutText)
            let show = K3sInstall.parseShow(sec["show"] ?? "")
            let active = show["ActiveState"] ?? "unknown"
            let readyz = w.role == .agent
                || (sec["readyz"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines) == "ok"
            let node = nodeState(ctx.host.name, on: kubectl, timeout: 30)
            let elapsed = Date().timeIntervalSince(start)
            if active == "active", readyz, let node, node.upgraded(to: w.version) {
                return "Ready at \(w.version) after \(String(format: "%.1f", elapsed)) s"
            }
            last = "service \(active)" + (w.role == .server ? ", /readyz \(readyz ? "ok" : "not ok")" : "")
                + ", node " + (node.map { "\($0.ready ? "Ready" : "not Ready") at \($0.kubeletVersion)" } ?? "not listed")
            if active == "failed" {
                throw TaskFailure("\(w.role.service) failed after the upgrade: \(last)", result: r)
            }
            if elapsed + 1 > w.wait || ctx.cancelled {
                throw TaskFailure("not Ready at \(w.version) after \(Int(elapsed)) s: \(last)", result: r)
            }
            Thread.sleep(forTimeInterval: 1)
        }
    }
}

/// One node's upgrade as a step (built by `fleet upgrade`, not named by playbooks). `template`
/// holds everything but the role, which each host brings.
public struct NodeUpgradeAction: Action {
    public var template: NodeUpgrade.Wanted
    public var uncordonLeftover: Bool

    public init(template: NodeUpgrade.Wanted, uncordonLeftover: Bool) {
        self.template = template
        self.uncordonLeftover = uncordonLeftover
    }

    func wanted(agent: Bool) -> NodeUpgrade.Wanted {
        var w = template
        w.role = agent ? .agent : .server
        return w
    }

    public func inputs(host: FleetCore.Host, inventory: Inventory) -> NodeUpgrade.Wanted { wanted(agent: host.role == .agent) }

    public func describe(_ vars: TemplateVariables) -> [String] {
        let agent = vars["host.role"] == HostRole.agent.rawValue
        let w = wanted(agent: agent)
        var lines: [String] = []
        if agent {
            lines.append("cordon through \(w.kubectlHost)" + (w.drain
                ? ", then kubectl drain --ignore-daemonsets --delete-emptydir-data --grace-period=\(w.drainGrace) "
                    + "--timeout=\(w.drainTimeout)s" : " (no drain)"))
        }
        lines.append(w.airgapDir.map { "upload \($0)/k3s (checked to be \(w.version)), run install.sh with INSTALL_K3S_SKIP_DOWNLOAD" }
            ?? "run the K3s install script with INSTALL_K3S_VERSION=\(w.version)")
        lines.append("restart \(w.role.service); wait ≤ \(Int(w.wait)) s for " + (agent ? "" : "/readyz and ")
            + "the node Ready at kubeletVersion \(w.version)" + (agent ? "; uncordon" : ""))
        lines.append("nothing when k3s --version and the node already say \(w.version)")
        return lines
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        try NodeUpgrade.run(wanted(agent: ctx.host.role == .agent), uncordonLeftover: uncordonLeftover, ctx)
    }
}
