import Foundation

/// What fleet remembers of a cluster between runs, beside the inventory
/// (`inventory/.fleet/<name>.state.json`). Never holds a secret.
public struct RunState: Codable, Sendable {
    public struct StepRecord: Codable, Sendable {
        public var status: TaskStatus
        public var at: Date
        public var digest: String
        public var runId: String
        public var message: String
        public var exitCode: Int32?
        public var durationMs: Int

        enum CodingKeys: String, CodingKey {
            case status, at, digest, message
            case runId = "run_id"
            case exitCode = "exit_code"
            case durationMs = "duration_ms"
        }
    }

    public struct RunRecord: Codable, Sendable {
        public var id: String
        public var command: String
        public var startedAt: Date
        public var finishedAt: Date?
        /// `running` (or killed while running), `finished`, `interrupted`.
        public var outcome: String
        public var counts: [String: Int]

        enum CodingKeys: String, CodingKey {
            case id, command, outcome, counts
            case startedAt = "started_at"
            case finishedAt = "finished_at"
        }
    }

    public var version = 1
    public var inventory: String
    public var playbook: String
    public var runs: [RunRecord] = []
    /// host → step → last record.
    public var hosts: [String: [String: StepRecord]] = [:]

    public init(inventory: String, playbook: String) {
        self.inventory = inventory
        self.playbook = playbook
    }

    public func record(host: String, step: String) -> StepRecord? { hosts[host]?[step] }

    public var lastRun: RunRecord? { runs.last }

    /// Where the state of an inventory lives.
    public static func path(forInventory inventory: String) -> String {
        let dir = (inventory as NSString).deletingLastPathComponent
        let base = ((inventory as NSString).lastPathComponent as NSString).deletingPathExtension
        return ((dir as NSString).appendingPathComponent(".fleet") as NSString)
            .appendingPathComponent("\(base).state.json")
    }

    public static func load(path: String) throws -> RunState? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            return try decoder.decode(RunState.self, from: data)
        } catch {
            throw StateError(path: path, message: "cannot be read as a fleet state file (\(error)); move it away to start afresh")
        }
    }

    static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }

    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.sortedKeys]
        return e
    }
}

public struct StateError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
}

/// Keeps the state current during a run: every task result is recorded at once and the file is
/// rewritten atomically (temp file, fsync, rename, fsync of the directory) by a writer thread.
/// The writer coalesces results that arrive close together: it writes at most every
/// `minimumInterval` seconds (rewriting the whole file for each of hundreds of results would cost
/// more CPU than the run itself), and always once more when the run ends. A run killed at any
/// moment leaves either the previous or the new complete file; at most the results of the last
/// interval are missing from it, and a rerun redoes those steps, which check before they change.
public final class StateStore: @unchecked Sendable {
    public let path: String
    public let minimumInterval: Double
    private let cond = NSCondition()
    private var state: RunState
    private var dirty = false
    private var writing = false
    private var closed = false
    private var flushing = false
    private var writeError: Error?
    /// The inventory's lock: the caller's (held for longer than this store), or the store's own.
    private let lock: InventoryLock
    private let ownsLock: Bool

    /// Opens the state for a run. Takes the inventory's lock first (unless the caller holds it and
    /// passes it: `lock`), then loads the file; throws ``InventoryLock/Busy`` when another holder has it.
    public init(path: String, inventory: String, playbook: String, lock: InventoryLock? = nil,
                minimumInterval: Double = 0.1) throws {
        self.path = path
        self.minimumInterval = minimumInterval
        if let lock {
            guard lock.path == path + ".lock", lock.isHeld else {
                throw StateError(path: path, message: "the lock held (\(lock.path)) is not this state file's")
            }
            self.lock = lock
            ownsLock = false
        } else {
            self.lock = try InventoryLock(inventory: inventory, path: path + ".lock")
            ownsLock = true
        }
        state = try RunState.load(path: path) ?? RunState(inventory: inventory, playbook: playbook)
        state.inventory = inventory
        state.playbook = playbook
        let t = Thread { [self] in writerLoop() }
        t.stackSize = 1 << 20
        t.start()
    }

    public var snapshot: RunState {
        cond.lock(); defer { cond.unlock() }
        return state
    }

    public func runStarted(id: String, command: String, at: Date) {
        update {
            $0.runs.append(.init(id: id, command: command, startedAt: at, finishedAt: nil, outcome: "running", counts: [:]))
            if $0.runs.count > 50 { $0.runs.removeFirst($0.runs.count - 50) }
        }
    }

    public func record(_ r: TaskResult, runId: String) {
        update {
            $0.hosts[r.host, default: [:]][r.step] = .init(status: r.status, at: r.startedAt.addingTimeInterval(Double(r.durationMs) / 1000),
                                                          digest: r.digest, runId: runId, message: r.message,
                                                          exitCode: r.exitCode, durationMs: r.durationMs)
        }
    }

    public func runFinished(id: String, summary: RunSummary) {
        update {
            guard let i = $0.runs.lastIndex(where: { $0.id == id }) else { return }
            $0.runs[i].finishedAt = Date()
            $0.runs[i].outcome = summary.interrupted ? "interrupted" : "finished"
            $0.runs[i].counts = Dictionary(uniqueKeysWithValues: summary.counts.map { ($0.key.rawValue, $0.value) })
        }
    }

    /// Marks hosts as reset: their records are dropped.
    public func forget(hosts names: [String]) {
        update { s in for n in names { s.hosts[n] = nil } }
    }

    private func update(_ change: (inout RunState) -> Void) {
        cond.lock()
        change(&state)
        dirty = true
        cond.broadcast()
        cond.unlock()
    }

    /// Waits until everything recorded so far is on disk. Throws the last write error.
    public func flush() throws {
        cond.lock()
        flushing = true
        cond.broadcast()
        while dirty || writing { cond.wait() }
        flushing = false
        let err = writeError
        cond.unlock()
        if let err { throw err }
    }

    /// Flushes, stops the writer and releases the inventory's lock when the store took it itself.
    public func close() throws {
        defer { if ownsLock { lock.release() } }
        try flush()
        cond.lock(); closed = true; cond.broadcast()
        cond.unlock()
    }

    private func writerLoop() {
        var lastWrite = Date.distantPast
        while true {
            cond.lock()
            while !dirty && !closed { cond.wait() }
            // Let results gather for a moment, unless the run is closing.
            let due = lastWrite.addingTimeInterval(minimumInterval)
            while !closed && !flushing && Date() < due { _ = cond.wait(until: due) }
            if !dirty && closed { cond.unlock(); return }
            let snap = state
            dirty = false
            writing = true
            cond.unlock()
            var err: Error?
            do { try StateStore.write(snap, to: path) } catch { err = error }
            lastWrite = Date()
            cond.lock()
            writing = false
            if let err { writeError = err }
            cond.broadcast()
            cond.unlock()
        }
    }

    static func write(_ state: RunState, to path: String) throws {
        let data = try RunState.encoder.encode(state)
        do {
            try AtomicFile.write(data, to: path, mode: 0o600)
        } catch let failure as AtomicFile.Failure {
            throw StateError(path: path, message: "cannot write the state file: \(failure.reason)")
        }
    }
}
