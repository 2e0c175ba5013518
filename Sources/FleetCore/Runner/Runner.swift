import Foundation

public struct RunOptions: Sendable {
    public var forks: Int
    public var runId: String
    /// `up`, `add-worker`, … recorded in the state file.
    public var command: String

    public init(forks: Int, runId: String = Runner.newRunId(), command: String = "up") {
        self.forks = forks
        self.runId = runId
        self.command = command
    }
}

/// The end of a run.
public struct RunSummary: Sendable {
    public var runId: String
    public var results: [TaskResult]
    public var hosts: [String]
    public var steps: [String]
    public var duration: Double
    public var interrupted: Bool

    public var counts: [TaskStatus: Int] {
        results.reduce(into: [:]) { $0[$1.status, default: 0] += 1 }
    }

    public var succeeded: Bool { !interrupted && results.allSatisfy { $0.status.succeeded } }

    /// Some task declined to act (`up` asked for a version change): the run's request, not a host, was wrong.
    public var refused: Bool { results.contains { $0.status == .refused } }

    public func result(host: String, step: String) -> TaskResult? {
        results.first { $0.host == host && $0.step == step }
    }
}

/// Runs planned tasks: one thread and one connection per host, at most `forks` hosts working at
/// once, no barrier between steps. A step waits only for the values it `needs`; a failure stops
/// its host and whatever needs it, nothing else.
public final class Runner: @unchecked Sendable {
    let inventory: Inventory
    let tasks: [PlannedTask]
    let connector: Connector
    let options: RunOptions
    let reporter: Reporter
    let state: StateStore?
    let redactor: Redactor

    private let lock = NSCondition()
    private var results: [TaskResult] = []
    private var values: [String: Secret] = [:]
    /// Producer tasks still to finish, per value name.
    private var pendingProducers: [String: Int] = [:]
    private var failedValues: [String: String] = [:]
    private var connections: [String: Connection] = [:]
    private var stopped = false
    private var serialGate: SerialGate
    /// Tasks still to end, per step name (for `after`), and the first failure of each step.
    private var pendingSteps: [String: Int] = [:]
    private var failedSteps: [String: String] = [:]
    private let forks: DispatchSemaphore
    /// Connections tasks open to other hosts (`TaskContext.connection(to:)`).
    private let pool: ConnectionPool

    public init(inventory: Inventory, tasks: [PlannedTask], connector: Connector, options: RunOptions,
                reporter: Reporter, state: StateStore?, redactor: Redactor) {
        self.inventory = inventory
        self.tasks = tasks
        self.connector = connector
        self.options = options
        self.reporter = reporter
        self.state = state
        self.redactor = redactor
        self.forks = DispatchSemaphore(value: max(1, options.forks))
        self.pool = ConnectionPool(connector: connector)
        let running = tasks.filter { $0.skipReason == nil }
        for t in running {
            for v in t.step.action.produces { pendingProducers[v, default: 0] += 1 }
            pendingSteps[t.step.name, default: 0] += 1
        }
        serialGate = SerialGate(tasks: running)
    }

    public static func newRunId() -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: Date()) + "-" + String(UInt32.random(in: 0...0xffff), radix: 16)
    }

    /// Stops the run: tasks not started end `interrupted`; running ones are aborted and end
    /// `interrupted`. Safe from any thread (a signal handler's queue).
    public func interrupt() {
        lock.lock()
        stopped = true
        let open = Array(connections.values)
        lock.broadcast()
        lock.unlock()
        for c in open { c.close() }
        pool.closeAll()
    }

    var isStopped: Bool {
        lock.lock(); defer { lock.unlock() }
        return stopped
    }

    public func run() -> RunSummary {
        let start = Date()
        // Tasks come from the planner in step order, and within a step in inventory order.
        let byHost = Dictionary(grouping: tasks, by: \.host.name)
        let hostOrder = inventory.hosts.map(\.name).filter { byHost[$0] != nil }
        var seen = Set<String>()
        let stepOrder = tasks.map(\.step.name).filter { seen.insert($0).inserted }
        state?.runStarted(id: options.runId, command: options.command, at: start)
        reporter.runStarted(RunInfo(runId: options.runId, hosts: hostOrder, steps: stepOrder, tasks: tasks.count))

        parallelEach(hostOrder, limit: hostOrder.count) { [self] name in runHost(byHost[name]!) }
        pool.closeAll()

        lock.lock()
        let all = results
        let wasStopped = stopped
        lock.unlock()
        let summary = RunSummary(runId: options.runId, results: all, hosts: hostOrder, steps: stepOrder,
                                 duration: Date().timeIntervalSince(start), interrupted: wasStopped)
        state?.runFinished(id: options.runId, summary: summary)
        reporter.runFinished(summary)
        return summary
    }

    // MARK: - One host

    private func runHost(_ hostTasks: [PlannedTask]) {
        forks.wait()
        var holding = true
        var connection: Connection?
        var stopReason: (TaskStatus, String)?
        defer {
            if holding { forks.signal() }
            if let connection {
                lock.lock(); connections[connection.hostName] = nil; lock.unlock()
                connection.close()
            }
        }
        for task in hostTasks {
            if isStopped {
                finish(task, .interrupted, "not started: the run was interrupted")
                continue
            }
            if let (status, why) = stopReason {
                finish(task, status, why)
                continue
            }
            if let reason = task.skipReason {
                // Not rerun; its last record in the state stays as it was.
                let r = TaskResult(host: task.host.name, step: task.step.name, status: .skipped, message: reason, digest: task.digest)
                lock.lock(); results.append(r); lock.unlock()
                reporter.taskFinished(r)
                continue
            }
            // Wait for needed values, and for this host's turn in a serial step, without holding a fork slot.
            var needed: [String: Secret] = [:]
            let serial = task.step.serial != nil
            if !task.step.needs.isEmpty || serial || !task.step.after.isEmpty {
                forks.signal(); holding = false
                let why = (task.step.needs.isEmpty ? nil : waitForValues(task.step.needs, task, into: &needed))
                    ?? (task.step.after.isEmpty ? nil : waitForSteps(task.step.after, task))
                    ?? (serial ? waitForTurn(task) : nil)
                forks.wait(); holding = true
                if let why {
                    finish(task, isStopped ? .interrupted : .blocked, why)
                    if !isStopped { stopReason = (.blocked, "not run: an earlier step on this host was blocked (\(task.step.name))") }
                    continue
                }
            }
            reporter.taskStarted(host: task.host.name, step: task.step.name)
            let started = Date()
            if connection == nil {
                do {
                    let c = try connector.connect(to: task.host)
                    lock.lock()
                    connections[task.host.name] = c
                    let stoppedNow = stopped
                    lock.unlock()
                    connection = c
                    if stoppedNow { c.close() }
                } catch {
                    let message = redactor.redact(String(describing: error))
                    let unreachable = (error as? ConnectionError)?.unreachable ?? true
                    let status: TaskStatus = isStopped ? .interrupted : (unreachable ? .unreachable : .failed)
                    finish(task, status, message, started: started)
                    stopReason = unreachable
                        ? (.unreachable, "not run: host unreachable (\(message))")
                        : (.blocked, "not run: could not log in (\(message))")
                    continue
                }
            }
            let ctx = TaskContext(host: task.host, inventory: inventory, step: task.step, connection: connection!,
                                  values: needed, redactor: redactor,
                                  commandTimeout: task.step.timeout ?? task.host.ssh.commandTimeout, pool: pool,
                                  isCancelled: { [weak self] in self?.isStopped ?? true })
            var status: TaskStatus
            var message: String
            var output: CommandResult?
            do {
                let outcome = try task.step.action.run(ctx)
                switch outcome.status {
                case .ok: status = .ok
                case .changed: status = .changed
                case .skipped: status = .skipped
                }
                message = outcome.message
                output = ctx.lastResult
            } catch let f as TaskFailure {
                status = f.refused ? .refused : .failed
                message = f.message
                output = f.result ?? ctx.lastResult
            } catch let e as ConnectionError {
                status = e.unreachable ? .unreachable : .failed
                message = e.message
                output = ctx.lastResult
            } catch {
                status = .failed
                message = String(describing: error)
                output = ctx.lastResult
            }
            if isStopped && !status.succeeded { status = .interrupted; message = "interrupted: " + message }
            finish(task, status, message, started: started, output: output, produced: ctx.produced)
            switch status {
            case .failed: stopReason = (.blocked, "not run: step \(task.step.name) failed on this host")
            case .refused: stopReason = (.blocked, "not run: step \(task.step.name) refused on this host")
            case .unreachable: stopReason = (.unreachable, "not run: host unreachable")
            case .interrupted: stopReason = (.interrupted, "not started: the run was interrupted")
            default: break
            }
        }
    }

    /// What a waiting task's condition says each time it is checked (under the lock).
    private enum Wait {
        case go
        case stop(String)
        /// Not yet; the reason is reported once, the first time.
        case wait(reason: () -> String)
    }

    /// Blocks until `check` says go or stop, or the run is stopped; returns why not to run, or nil.
    /// The first time the task has to wait, the reporter is told why.
    private func waitUntil(_ task: PlannedTask, _ check: () -> Wait) -> String? {
        lock.lock()
        defer { lock.unlock() }
        var announced = false
        while true {
            if stopped { return "not started: the run was interrupted" }
            switch check() {
            case .go: return nil
            case .stop(let why): return why
            case .wait(let reason):
                if announced {
                    lock.wait()
                } else {
                    // Reported without holding the lock; the condition is checked again after.
                    announced = true
                    let text = reason()
                    lock.unlock()
                    reporter.taskWaiting(host: task.host.name, step: task.step.name, reason: text)
                    lock.lock()
                }
            }
        }
    }

    /// Waits until every value in `names` exists; puts them in `needed`.
    private func waitForValues(_ names: [String], _ task: PlannedTask, into needed: inout [String: Secret]) -> String? {
        var found: [String: Secret] = [:]
        let why = waitUntil(task) {
            if let bad = names.first(where: { failedValues[$0] != nil }) {
                return .stop("blocked: needs \"\(bad)\", but \(failedValues[bad]!)")
            }
            if names.allSatisfy({ values[$0] != nil }) {
                found = Dictionary(uniqueKeysWithValues: names.map { ($0, values[$0]!) })
                return .go
            }
            if let missing = names.first(where: { values[$0] == nil && (pendingProducers[$0] ?? 0) == 0 }) {
                return .stop("blocked: needs \"\(missing)\", which no step in this run produces")
            }
            return .wait { names.filter { self.values[$0] == nil }.joined(separator: ", ") }
        }
        needed = found
        return why
    }

    /// Waits until every task of the named steps has ended; blocked when one of them did not succeed.
    private func waitForSteps(_ names: [String], _ task: PlannedTask) -> String? {
        waitUntil(task) {
            if let bad = names.first(where: { failedSteps[$0] != nil }) {
                return .stop("blocked: runs after \"\(bad)\", which \(failedSteps[bad]!)")
            }
            if names.allSatisfy({ (pendingSteps[$0] ?? 0) <= 0 }) { return .go }
            return .wait { names.filter { (self.pendingSteps[$0] ?? 0) > 0 }.joined(separator: ", ") + " to end on every host" }
        }
    }

    /// Waits for the host's turn in its serial step; stops when an earlier host failed it.
    private func waitForTurn(_ task: PlannedTask) -> String? {
        waitUntil(task) {
            switch serialGate.decide(stepIndex: task.stepIndex, host: task.host.name) {
            case .start:
                serialGate.started(stepIndex: task.stepIndex, host: task.host.name)
                // With serial > 1 the next host in order may start now too.
                lock.broadcast()
                return .go
            case .stop(let why): return .stop(why)
            case .wait: return .wait { "its turn (serial = \(task.step.serial ?? 1), in inventory order)" }
            }
        }
    }

    private func finish(_ task: PlannedTask, _ status: TaskStatus, _ message: String, started: Date = Date(),
                        output: CommandResult? = nil, produced: [String: Secret] = [:]) {
        var result = TaskResult(
            host: task.host.name, step: task.step.name, status: status,
            exitCode: output?.exitCode, startedAt: started,
            durationMs: Seconds.milliseconds(Date().timeIntervalSince(started)),
            // Redacted whole, then cut: a cut first could leave a piece of a secret the redactor
            // no longer recognises.
            stdoutTail: tail(redactor.redact(output?.stdoutText ?? "")),
            stderrTail: tail(redactor.redact(output?.stderrText ?? "")),
            message: redactor.redact(message), digest: task.digest)
        if task.step.action.keepsOutput, let output {
            result.output = CommandOutput(stdout: redactor.redact(output.stdoutText), stderr: redactor.redact(output.stderrText),
                                          stdoutBytes: output.stdoutBytes, stderrBytes: output.stderrBytes)
        }
        // Recorded and reported before its values are published and waiting tasks are woken, so that no
        // task that needs them is seen to start before this one is seen to finish.
        state?.record(result, runId: options.runId)
        reporter.taskFinished(result)
        lock.lock()
        results.append(result)
        serialGate.ended(stepIndex: task.stepIndex, stepName: task.step.name, host: task.host.name, status: status)
        pendingSteps[task.step.name, default: 1] -= 1
        // Waiting tasks wait for values, for a step to end everywhere, or for a serial turn: only
        // such an event wakes them (waking every waiting host on every result costs O(hosts²)).
        var wake = task.step.serial != nil || !task.step.action.produces.isEmpty
            || (pendingSteps[task.step.name] ?? 0) <= 0
        if !status.succeeded, failedSteps[task.step.name] == nil {
            failedSteps[task.step.name] = "ended \(status.rawValue) on \(task.host.name)"
            wake = true
        }
        for (name, secret) in produced { values[name] = secret }
        for v in task.step.action.produces {
            pendingProducers[v, default: 1] -= 1
            // Every producer has ended and none produced it: whoever needs it is blocked.
            if (pendingProducers[v] ?? 0) <= 0, values[v] == nil {
                failedValues[v] = "step \(task.step.name) on \(task.host.name) ended \(status.rawValue)"
            }
        }
        if wake { lock.broadcast() }
        lock.unlock()
    }
}
