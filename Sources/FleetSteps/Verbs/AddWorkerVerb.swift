import FleetCore
import Foundation

/// `fleet add-worker`: append an agent to the inventory file, then run only what it needs.
///
/// Two runs: the playbook limited to the new host (the planner adds the token fetch on the first
/// server, which produces what the join needs), then the playbook's verify step(s) on the first
/// server. No other host is touched. Running it again changes nothing; it also finishes a host that
/// is in the inventory but never joined.
public enum AddWorkerVerb {
    public struct Request: Sendable {
        public var inventoryPath: String
        public var name: String
        public var address: String
        public var user: String?
        public var port: Int?
        public var identity: String?
        public var nodeIP: String?

        public init(inventoryPath: String, name: String, address: String, user: String? = nil, port: Int? = nil,
                    identity: String? = nil, nodeIP: String? = nil) {
            self.inventoryPath = inventoryPath
            self.name = name
            self.address = address
            self.user = user
            self.port = port
            self.identity = identity
            self.nodeIP = nodeIP
        }
    }

    /// Adds the host to the file (unless it is already there with this address). `lock` is the
    /// inventory's lock, held by the caller from before the file is read until the runs end.
    /// - Returns: the inventory the file now holds, and whether the file changed.
    public static func append(_ r: Request, lock: InventoryLock) throws -> (inventory: Inventory, added: Bool) {
        guard lock.isHeld, lock.path == InventoryLock.path(forInventory: r.inventoryPath) else {
            throw TaskFailure("\(r.inventoryPath): add-worker needs the inventory's lock (\(lock.path) is another's)")
        }
        return try Inventory.appendHost(toFile: r.inventoryPath, name: r.name, address: r.address, role: .agent,
                                 user: r.user, port: r.port, identity: r.identity, nodeIP: r.nodeIP)
    }

    /// The runs that bring `worker` in: its own steps (plus the producers they need), then verify
    /// on the first server. Verify steps are those whose action is `k3s_verify`.
    public static func runs(playbook: Playbook, inventory: Inventory, worker: String) -> [PlaybookRun.Options] {
        let verifySteps = playbook.steps.filter { $0.actionName == "k3s_verify" }.map(\.name)
        let joinSteps = playbook.steps.filter { $0.actionName != "k3s_verify" }.map(\.name)
        var runs = [PlaybookRun.Options(limit: [worker], steps: Set(joinSteps), command: "add-worker")]
        if !verifySteps.isEmpty {
            runs.append(PlaybookRun.Options(limit: [inventory.firstServer.name], steps: Set(verifySteps),
                                            command: "add-worker"))
        }
        return runs
    }

    /// Runs the join, then (when it succeeded) verify. Returns each run's summary.
    public static func run(inventory: Inventory, playbook: Playbook, worker: String, connector: Connector,
                           reporter: Reporter, lock: InventoryLock? = nil,
                           onRunner: (Runner) -> Void = { _ in }) throws -> [RunSummary] {
        guard let host = inventory.host(named: worker) else {
            throw TaskFailure("\(worker) is not in \(inventory.path)")
        }
        guard host.name != inventory.firstServer.name else {
            throw TaskFailure("\(worker) is the first server, not a worker: use fleet up")
        }
        var summaries: [RunSummary] = []
        for options in runs(playbook: playbook, inventory: inventory, worker: worker) {
            let summary = try PlaybookRun.run(inventory: inventory, playbook: playbook, options: options,
                                              connector: connector, reporter: reporter, lock: lock,
                                              onRunner: onRunner)
            summaries.append(summary)
            if !summary.succeeded { break }
        }
        return summaries
    }
}
