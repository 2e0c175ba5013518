import FleetCore
import Foundation

/// `fleet upgrade`: a new K3s release on a running cluster, one node at a time.
///
/// 1. Facts (``UpgradeFacts``): every host's `k3s --version` and the node list, nothing changed.
/// 2. A pure plan (``UpgradePlan``, ``UpgradeRules``): refused before any host is touched on a
///    downgrade, a skipped minor, servers more than one minor apart, or a new air-gap binary that
///    is not the version asked for.
/// 3. Apply, as a playbook on the runner: `upgrade-snapshot` on the first server (when something is
///    to change), `upgrade-servers` one at a time, `upgrade-agents` in batches, `upgrade-verify`;
///    then `k3s_version` (and `airgap_dir`) rewritten in the inventory.
public enum UpgradeVerb {
    public static let snapshotStep = "upgrade-snapshot"
    public static let serverStep = "upgrade-servers"
    public static let agentStep = "upgrade-agents"
    public static let verifyStep = "upgrade-verify"

    public struct Refused: Error, CustomStringConvertible, Sendable {
        public var problems: [String]
        public var description: String {
            "refusing to upgrade, nothing was changed:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
        }
    }

    /// What was asked: the release, where it comes from, and how agents are taken out.
    public struct Request: Sendable {
        public var target: K3sVersion
        /// Absolute path of the new release's air-gap files, or nil for the install script.
        public var airgapDir: String?
        public var batch: BatchSize
        public var drain: Bool
        public var drainTimeout: Int
        public var drainGrace: Int
        public var wait: Double

        public init(target: K3sVersion, airgapDir: String? = nil, batch: BatchSize = .default, drain: Bool = true,
                    drainTimeout: Int = 300, drainGrace: Int = 120, wait: Double = 300) {
            self.target = target
            self.airgapDir = airgapDir
            self.batch = batch
            self.drain = drain
            self.drainTimeout = drainTimeout
            self.drainGrace = drainGrace
            self.wait = wait
        }

        /// The settings every node's step reads (its digest), with the air-gap files' hashes.
        public func template(_ inventory: Inventory) throws -> NodeUpgrade.Wanted {
            var w = NodeUpgrade.Wanted(role: .server, version: target, airgapDir: airgapDir, drain: drain,
                                       drainGrace: min(drainGrace, drainTimeout), drainTimeout: drainTimeout, wait: wait,
                                       kubectlHost: inventory.firstServer.name)
            if let dir = airgapDir {
                func local(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
                w.binarySHA = try LocalFile.sha256(of: local("k3s"))
                w.installerSHA = try LocalFile.sha256(of: local("install.sh"))
                for name in AirgapFiles.images(in: dir) {
                    w.images[(K3sInstall.imagesDirectory as NSString).appendingPathComponent(name)] =
                        try LocalFile.sha256(of: local(name))
                }
            }
            return w
        }

        /// The playbook: snapshot (when `snapshot`), servers one at a time, agents `batch` at a
        /// time (the first failure stops the agents not yet started), then verify.
        public func playbook(_ inventory: Inventory, snapshot: Bool, retryFailed: Bool, statePlaybook: String) throws -> Playbook {
            let action = NodeUpgradeAction(template: try template(inventory), uncordonLeftover: retryFailed)
            var steps: [Step] = []
            if snapshot {
                steps.append(Step(name: snapshotStep, description: "snapshot the datastore before any restart",
                                  target: .firstServer, actionName: "datastore_snapshot",
                                  action: DatastoreSnapshotAction(name: DatastoreSnapshot.preUpgradeName(target))))
            }
            steps.append(Step(name: serverStep, description: "servers one at a time", target: .servers,
                              actionName: "node_upgrade", action: action, serial: 1,
                              after: snapshot ? [snapshotStep] : []))
            steps.append(Step(name: agentStep, description: "agents in batches, each cordoned and drained first",
                              target: .agents, actionName: "node_upgrade", action: action,
                              serial: batch.size(agents: inventory.agents.count), after: [serverStep]))
            steps.append(Step(name: verifyStep, description: "every node Ready at the new version, then verify",
                              target: .firstServer, actionName: "upgrade_verify",
                              action: UpgradeVerifyAction(target: target), after: [serverStep, agentStep]))
            return Playbook(name: "upgrade", path: statePlaybook, steps: steps)
        }
    }

    /// Checks the new air-gap files on this machine before any host: present, and `k3s --version`
    /// says the target (when the binary runs here; each node checks it again before using it).
    /// Returns a note when it could not be run here.
    public static func checkAirgap(_ dir: String, target: K3sVersion) throws -> String? {
        var problems: [String] = []
        for name in ["k3s", "install.sh"] {
            let path = (dir as NSString).appendingPathComponent(name)
            if !FileManager.default.isReadableFile(atPath: path) { problems.append("--airgap-dir \(dir): no readable \(name)") }
        }
        if !problems.isEmpty { throw Refused(problems: problems) }
        // Within a deadline: a binary that hangs here must not hang the upgrade.
        let r = LocalCommand.run([(dir as NSString).appendingPathComponent("k3s"), "--version"], timeout: 30)
        if r.status == 127 || r.timedOut {
            let why = r.timedOut ? "did not answer --version within 30 s" : r.stderrText
            return "\(dir)/k3s does not run on this machine (\(why)): each node checks its version before using it"
        }
        let got = K3sVersion(versionOutput: r.stdoutText)
        if got != target {
            throw Refused(problems: ["\(dir)/k3s --version says \(got?.description ?? "nothing readable"), not \(target)"])
        }
        return nil
    }

    /// Facts, then the plan; throws ``Refused`` when the upgrade must not start.
    public static func plan(inventory: Inventory, request: Request, connector: Connector) throws -> UpgradePlan {
        let facts = UpgradeFacts.gather(inventory: inventory, connector: connector)
        let plan = UpgradePlan.make(hosts: inventory.hosts.map { .init(name: $0.name, server: $0.role == .server) },
                                    facts: facts, target: request.target)
        if !plan.problems.isEmpty { throw Refused(problems: plan.problems) }
        return plan
    }

    /// What `--dry-run` prints (after the facts were read and the plan allowed it).
    public static func dryRun(inventory: Inventory, request: Request, plan: UpgradePlan, retryFailed: Bool) throws -> String {
        let book = try request.playbook(inventory, snapshot: plan.snapshot, retryFailed: retryFailed,
                                        statePlaybook: ResetVerb.statePlaybook(inventory, default: "playbooks/k3s-ipv6.toml"))
        let head = plan.pending.isEmpty ? "every node runs \(request.target) already\n"
            : "to upgrade to \(request.target): \(plan.pending.joined(separator: ", "))\n"
        return head + (try PlaybookRun.dryRun(inventory: inventory, playbook: book,
                                              options: .init(retryFailed: retryFailed, command: "upgrade")))
    }

    /// Runs the upgrade; on success rewrites `k3s_version` (and `airgap_dir` for an air-gap
    /// inventory given `--airgap-dir`) in the inventory file. Returns the summary and whether the
    /// inventory was rewritten.
    public static func run(inventory: Inventory, request: Request, plan: UpgradePlan, retryFailed: Bool,
                           connector: Connector, reporter: Reporter, lock: InventoryLock?,
                           onRunner: (Runner) -> Void = { _ in }) throws -> (summary: RunSummary, rewrote: Bool) {
        let book = try request.playbook(inventory, snapshot: plan.snapshot, retryFailed: retryFailed,
                                        statePlaybook: ResetVerb.statePlaybook(inventory, default: "playbooks/k3s-ipv6.toml"))
        let summary = try PlaybookRun.run(inventory: inventory, playbook: book,
                                          options: .init(retryFailed: retryFailed, command: "upgrade"),
                                          connector: connector, reporter: reporter, lock: lock, onRunner: onRunner)
        guard summary.succeeded else { return (summary, false) }
        var changes = [(table: "cluster", key: "k3s_version", value: request.target.description)]
        if let dir = request.airgapDir, inventory.k3s.source == .airgap {
            changes.append((table: "k3s", key: "airgap_dir", value: dir))
        }
        let (_, rewrote) = try Inventory.setStrings(inFile: inventory.path, changes, schema: K3sInventory.schema)
        return (summary, rewrote)
    }
}

/// The last step of an upgrade: waits until every inventory host is a Ready node at the new
/// version, then runs `k3s_verify`'s checks.
struct UpgradeVerifyAction: Action {
    let target: K3sVersion

    func inputs(host: FleetCore.Host, inventory: Inventory) -> [String: String] { ["version": target.description] }

    func describe(_ vars: TemplateVariables) -> [String] {
        ["wait until every host is a Ready node at kubeletVersion \(target)", "then verify the cluster (as up's verify step)"]
    }

    func run(_ ctx: TaskContext) throws -> ActionOutcome {
        let start = Date()
        let names = ctx.inventory.hosts.map(\.name)
        var behind: [String] = names
        while true {
            let r = try ctx.run(NodeCommands.list, timeout: 30)
            let nodes = r.succeeded ? NodeState.parse(r.stdoutText) ?? [:] : [:]
            behind = names.filter { !(nodes[$0]?.upgraded(to: target) ?? false) }
            if behind.isEmpty { break }
            if Date().timeIntervalSince(start) > 120 || ctx.cancelled {
                throw TaskFailure("not Ready at \(target): " + behind.map { n in
                    nodes[n].map { "\(n) (\($0.ready ? "Ready" : "not Ready") at \($0.kubeletVersion))" } ?? "\(n) (not listed)"
                }.joined(separator: ", "), result: r)
            }
            Thread.sleep(forTimeInterval: 1)
        }
        let verified = try K3sVerifyAction().run(ctx)
        return .ok("every node Ready at \(target); " + verified.message)
    }
}
