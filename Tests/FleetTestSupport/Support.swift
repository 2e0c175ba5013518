import FleetCore
import FleetSteps
import Foundation

/// Inventories and playbooks for tests, built from values.
public enum Fixtures {
    /// Where fixture inventories pretend to live unless a test gives a real path.
    public static let inventoryPath = "/nonexistent/fleet-tests/inventory/test.toml"

    /// An inventory with the given hosts in order; host N (from 1) has address and node IP `fd00:10::N`.
    /// At least one host must be a server.
    public static func inventory(_ hosts: [(String, HostRole)], path: String = inventoryPath,
                                 clusterName: String = "test") -> Inventory {
        let list = hosts.enumerated().map { i, h in
            let ip = IPv6Address("fd00:10::\(String(i + 1, radix: 16))")!
            return Host(name: h.0, address: ip.description, role: h.1, nodeIP: ip)
        }
        do {
            return try Inventory(path: path, cluster: ClusterConfig(name: clusterName, k3sVersion: "v1.31.5+k3s1"),
                                 hosts: list)
        } catch {
            preconditionFailure("fixture inventory is invalid: \(error)")
        }
    }

    /// One record of a state file: (host, step) ended with `status` at `at`, with `digest`.
    public struct StateRecord {
        public var host, step: String
        public var status: TaskStatus
        public var digest: String
        public var message: String

        public init(_ host: String, _ step: String, _ status: TaskStatus, digest: String = "", message: String = "") {
            self.host = host
            self.step = step
            self.status = status
            self.digest = digest
            self.message = message
        }
    }

    /// A state file's content, decoded from JSON the way fleet reads it; every record at
    /// 2025-03-01T10:00:00Z in run `20250301T100000Z-1`.
    public static func runState(_ records: [StateRecord], inventory: Inventory) throws -> RunState {
        var hosts: [String: [String: Any]] = [:]
        for r in records {
            hosts[r.host, default: [:]][r.step] = [
                "status": r.status.rawValue, "at": "2025-03-01T10:00:00Z", "digest": r.digest,
                "run_id": "20250301T100000Z-1", "message": r.message, "duration_ms": 12,
            ]
        }
        let json: [String: Any] = ["version": 1, "inventory": inventory.path, "playbook": "p.toml", "runs": [], "hosts": hosts]
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(RunState.self, from: JSONSerialization.data(withJSONObject: json))
    }

    /// The built-in actions, with the K3s template variables (`cluster.name`, `server_url`, …).
    public static var builtIn: ActionRegistry {
        var registry = ActionRegistry.builtIn
        registry.variables = K3sActions.templateVariables
        return registry
    }

    /// Parses a playbook with the built-in actions.
    public static func playbook(_ toml: String, path: String = "/nonexistent/fleet-tests/playbooks/test.toml",
                                registry: ActionRegistry = Fixtures.builtIn) throws -> Playbook {
        try Playbook.parse(toml: toml, path: path, registry: registry)
    }
}

/// A fresh directory under the system temporary directory; call `remove()` when done.
public final class ScratchDirectory: @unchecked Sendable {
    public let path: String

    public init() throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("fleet-tests-" + UUID().uuidString)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    @discardableResult
    public func write(_ name: String, _ text: String) throws -> String {
        let f = file(name)
        try FileManager.default.createDirectory(atPath: (f as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: f))
        return f
    }

    /// Removes the directory and everything in it.
    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A reporter that keeps every call, each stamped from a clock (share a `FakeFleet`'s clock to order
/// reporter events against commands).
public final class RecordingReporter: Reporter, @unchecked Sendable {
    public enum Entry: Sendable {
        case runStarted(RunInfo)
        case taskStarted(host: String, step: String)
        case taskFinished(TaskResult)
        case runFinished(RunSummary)
        case taskWaiting(host: String, step: String, reason: String)
    }

    public struct Stamped: Sendable {
        public var seq: Int
        public var entry: Entry
    }

    private let lock = NSLock()
    private var entries: [Stamped] = []
    public let clock: EventClock

    public init(clock: EventClock = EventClock()) { self.clock = clock }

    private func add(_ e: Entry) {
        lock.lock(); defer { lock.unlock() }
        entries.append(Stamped(seq: clock.tick(), entry: e))
    }

    public func runStarted(_ info: RunInfo) { add(.runStarted(info)) }
    public func taskStarted(host: String, step: String) { add(.taskStarted(host: host, step: step)) }
    public func taskFinished(_ result: TaskResult) { add(.taskFinished(result)) }
    public func runFinished(_ summary: RunSummary) { add(.runFinished(summary)) }
    public func taskWaiting(host: String, step: String, reason: String) {
        add(.taskWaiting(host: host, step: step, reason: reason))
    }

    /// Every waiting report, as `host/step: reason`.
    public var waits: [String] {
        all.compactMap {
            if case .taskWaiting(let h, let s, let r) = $0.entry { return "\(h)/\(s): \(r)" }
            return nil
        }
    }

    public var all: [Stamped] {
        lock.lock(); defer { lock.unlock() }
        return entries
    }

    /// The seq at which (host, step) was reported started, if it was.
    public func startSeq(host: String, step: String) -> Int? {
        all.first {
            if case .taskStarted(host, step) = $0.entry { return true }
            return false
        }?.seq
    }

    /// The seq at which (host, step) was reported finished, if it was.
    public func finishSeq(host: String, step: String) -> Int? {
        all.first {
            if case .taskFinished(let r) = $0.entry, r.host == host, r.step == step { return true }
            return false
        }?.seq
    }

    public var finished: [TaskResult] {
        all.compactMap {
            if case .taskFinished(let r) = $0.entry { return r }
            return nil
        }
    }

    public var runFinishedCount: Int {
        all.filter {
            if case .runFinished = $0.entry { return true }
            return false
        }.count
    }
}

/// Runs plans with the real `Runner` against a `FakeFleet`.
public enum FakeRun {
    /// Plans and runs `playbook` to the end.
    public static func run(_ playbook: Playbook, inventory: Inventory, fleet: FakeFleet, forks: Int = 10,
                           limit: Set<String>? = nil, previous: RunState? = nil, state: StateStore? = nil,
                           reporter: Reporter? = nil, redactor: Redactor = Redactor()) -> RunSummary {
        let tasks = Planner.tasks(inventory: inventory, playbook: playbook, limit: limit, retryFailed: previous)
        let runner = Runner(inventory: inventory, tasks: tasks, connector: fleet, options: RunOptions(forks: forks),
                            reporter: reporter ?? RecordingReporter(clock: fleet.clock), state: state, redactor: redactor)
        return runner.run()
    }

    /// A run on a thread of its own, for tests that act while it runs.
    public final class Background: @unchecked Sendable {
        public let runner: Runner
        private let done = DispatchSemaphore(value: 0)
        private let lock = NSLock()
        private var summaryValue: RunSummary?

        init(runner: Runner) {
            self.runner = runner
            let t = Thread { [self] in
                let s = runner.run()
                lock.lock(); summaryValue = s; lock.unlock()
                done.signal()
            }
            t.start()
        }

        /// The summary, or nil when the run has not ended within `limit` seconds.
        public func wait(limit: Double = 30) -> RunSummary? {
            guard done.wait(timeout: .now() + limit) == .success else { return nil }
            done.signal()
            lock.lock(); defer { lock.unlock() }
            return summaryValue
        }
    }

    public static func start(_ playbook: Playbook, inventory: Inventory, fleet: FakeFleet, forks: Int = 10,
                             reporter: Reporter? = nil, redactor: Redactor = Redactor()) -> Background {
        let tasks = Planner.tasks(inventory: inventory, playbook: playbook)
        let runner = Runner(inventory: inventory, tasks: tasks, connector: fleet, options: RunOptions(forks: forks),
                            reporter: reporter ?? RecordingReporter(clock: fleet.clock), state: nil, redactor: redactor)
        return Background(runner: runner)
    }
}

extension RunSummary {
    /// The status of (host, step), or nil when the run has no such task.
    public func status(_ host: String, _ step: String) -> TaskStatus? { result(host: host, step: step)?.status }
}
