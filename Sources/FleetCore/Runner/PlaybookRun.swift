import Foundation

/// `fleet up` and friends: plan, then run with a state store, then close the store.
public enum PlaybookRun {
    public struct Options: Sendable {
        public var limit: Set<String>?
        public var steps: Set<String>?
        public var forks: Int?
        public var retryFailed = false
        public var command = "up"
        /// Whether the run is kept in the state file (which also holds the inventory's lock for the
        /// run). Verbs that only read (`check`, `status`, `exec`) leave it alone, so they can run
        /// beside a run that changes hosts.
        public var recordsState = true

        public init(limit: Set<String>? = nil, steps: Set<String>? = nil, forks: Int? = nil,
                    retryFailed: Bool = false, command: String = "up", recordsState: Bool = true) {
            self.limit = limit
            self.steps = steps
            self.forks = forks
            self.retryFailed = retryFailed
            self.command = command
            self.recordsState = recordsState
        }
    }

    /// What `--dry-run` prints: per host and step, the rendered commands and inputs, secrets masked.
    public static func dryRun(inventory: Inventory, playbook: Playbook, options: Options) throws -> String {
        let previous = options.retryFailed ? try RunState.load(path: RunState.path(forInventory: inventory.path)) : nil
        let tasks = Planner.tasks(inventory: inventory, playbook: playbook, limit: options.limit, steps: options.steps,
                                 retryFailed: previous)
        var out = "dry run: \(tasks.count) task(s), nothing is changed\n"
        for t in tasks {
            let vars = TemplateVariables(host: t.host, inventory: inventory)
            out += "\(t.host.name) [\(t.host.address)] \(t.step.name) (\(t.step.actionName))"
            if let skip = t.skipReason { out += ": skip, \(skip)\n"; continue }
            if !t.step.needs.isEmpty { out += " needs \(t.step.needs.joined(separator: ", "))" }
            if let n = t.step.serial { out += ", at most \(n) host(s) at once, in inventory order" }
            if !t.step.after.isEmpty { out += ", after \(t.step.after.joined(separator: ", ")) ended everywhere" }
            out += "\n"
            for line in t.step.action.describe(vars) { out += "    \(line)\n" }
        }
        return out
    }

    /// Runs the playbook. Throws only when the state file cannot be opened, or the inventory is locked
    /// (``InventoryLock/Busy``). `lock`: the inventory's lock when the caller holds it already
    /// (a verb takes it before anything else); without it, the run takes it for its own duration.
    /// `amendState` lets a verb change the state file after its run, under the same lock (`reset`
    /// forgets the hosts it reset).
    public static func run(inventory: Inventory, playbook: Playbook, options: Options, connector: Connector,
                           reporter: Reporter, redactor: Redactor = Redactor(), lock: InventoryLock? = nil,
                           onRunner: (Runner) -> Void = { _ in },
                           amendState: (RunSummary, StateStore) -> Void = { _, _ in }) throws -> RunSummary {
        let statePath = RunState.path(forInventory: inventory.path)
        let store = options.recordsState
            ? try StateStore(path: statePath, inventory: inventory.path, playbook: playbook.path, lock: lock) : nil
        let previous = options.retryFailed ? store?.snapshot : nil
        let tasks = Planner.tasks(inventory: inventory, playbook: playbook, limit: options.limit, steps: options.steps,
                                 retryFailed: previous)
        let runner = Runner(inventory: inventory, tasks: tasks, connector: connector,
                            options: RunOptions(forks: options.forks ?? inventory.ssh.forks, command: options.command),
                            reporter: reporter, state: store, redactor: redactor)
        onRunner(runner)
        let summary = runner.run()
        if let store {
            amendState(summary, store)
            try store.close()
        }
        return summary
    }

    /// Runs a playbook that only reads (`check`, `status`, `exec`): no state file, so no lock, and
    /// nothing to fail on before the run.
    public static func runReadOnly(inventory: Inventory, playbook: Playbook, forks: Int? = nil, command: String,
                                   connector: Connector, reporter: Reporter, redactor: Redactor = Redactor(),
                                   onRunner: (Runner) -> Void = { _ in }) -> RunSummary {
        let tasks = Planner.tasks(inventory: inventory, playbook: playbook)
        let runner = Runner(inventory: inventory, tasks: tasks, connector: connector,
                            options: RunOptions(forks: forks ?? inventory.ssh.forks, command: command),
                            reporter: reporter, state: nil, redactor: redactor)
        onRunner(runner)
        return runner.run()
    }
}
