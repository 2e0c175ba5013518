import Foundation

public struct RunInfo: Sendable {
    public var runId: String
    public var hosts: [String]
    public var steps: [String]
    public var tasks: Int
}

/// Listens to a run. Called from many host threads: implementations synchronise themselves.
public protocol Reporter: AnyObject, Sendable {
    func runStarted(_ info: RunInfo)
    func taskStarted(host: String, step: String)
    func taskFinished(_ result: TaskResult)
    func runFinished(_ summary: RunSummary)
    /// A task that cannot start yet: `reason` says what it waits for (a value, its turn in a serial
    /// step, other steps to end). Called once per wait, only when the task really has to wait.
    func taskWaiting(host: String, step: String, reason: String)
}

extension Reporter {
    public func taskWaiting(host: String, step: String, reason: String) {}
}

/// Where reporters write: stdout by default, a buffer in tests.
public final class OutputSink: @unchecked Sendable {
    private let lock = NSLock()
    private let descriptor: Int32?
    private var buffer = ""
    /// The reader went away (EPIPE) or the file failed: later output is dropped, the run goes on.
    private var broken = false

    public static let stdout = OutputSink(handle: .standardOutput)
    public static let stderr = OutputSink(handle: .standardError)

    public init(handle: FileHandle?) { descriptor = handle?.fileDescriptor }
    /// A sink that keeps what it is given (for tests).
    public static func memory() -> OutputSink { OutputSink(handle: nil) }

    /// Writes all of `text`, or stops writing for good at the first error (a closed pipe: with
    /// SIGPIPE ignored, `fleet up --json | head -1` ends the output, not the run).
    public func write(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        guard let descriptor else { buffer += text; return }
        guard !broken else { return }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { broken = true; return }
            offset += n
        }
    }

    public var text: String {
        lock.lock(); defer { lock.unlock() }
        return buffer
    }
}

/// Plain lines, one per finished task: for logs and pipes.
public final class PlainReporter: Reporter, @unchecked Sendable {
    let out: OutputSink
    let color: Bool

    public init(out: OutputSink = .stdout, color: Bool = false) {
        self.out = out
        self.color = color
    }

    public func runStarted(_ info: RunInfo) {
        out.write("run \(info.runId): \(info.tasks) task(s) on \(info.hosts.count) host(s)\n")
    }

    public func taskStarted(host: String, step: String) {}

    public func taskWaiting(host: String, step: String, reason: String) {
        out.write("\(host) \(step): waiting for \(reason)\n")
    }

    public func taskFinished(_ r: TaskResult) {
        out.write(Style.line(r, color: color) + "\n")
    }

    public func runFinished(_ summary: RunSummary) {
        out.write(Style.summary(summary, color: color))
    }
}

/// A live view on a terminal: one line per host with its current step, redrawn in place; then
/// every failure in full and the summary matrix.
public final class TerminalReporter: Reporter, @unchecked Sendable {
    let out: OutputSink
    private let lock = NSLock()
    private var hosts: [String] = []
    private var current: [String: String] = [:]
    private var waiting: [String: String] = [:]
    private var done: [String: Int] = [:]
    private var failed: [String: String] = [:]
    private var totalSteps = 0
    private var drawn = 0
    private var start = Date()
    private var lastDraw = Date.distantPast

    public init(out: OutputSink = .stdout) { self.out = out }

    public func runStarted(_ info: RunInfo) {
        lock.lock(); defer { lock.unlock() }
        hosts = info.hosts
        totalSteps = info.steps.count
        start = Date()
        out.write("run \(info.runId): \(info.tasks) task(s) on \(info.hosts.count) host(s)\n")
        redraw(force: true)
    }

    public func taskStarted(host: String, step: String) {
        lock.lock(); defer { lock.unlock() }
        current[host] = step
        waiting[host] = nil
        redraw(force: false)
    }

    public func taskWaiting(host: String, step: String, reason: String) {
        lock.lock(); defer { lock.unlock() }
        waiting[host] = "\(step): waiting for \(reason)"
        redraw(force: false)
    }

    public func taskFinished(_ r: TaskResult) {
        lock.lock(); defer { lock.unlock() }
        done[r.host, default: 0] += 1
        current[r.host] = nil
        waiting[r.host] = nil
        if !r.status.succeeded, failed[r.host] == nil { failed[r.host] = "\(r.step): \(r.status.rawValue)" }
        redraw(force: false)
    }

    public func runFinished(_ summary: RunSummary) {
        lock.lock(); defer { lock.unlock() }
        redraw(force: true)
        out.write("\n" + Style.failures(summary, color: true) + Style.summary(summary, color: true))
    }

    /// At most ~20 redraws a second; the view shows at most a screenful of hosts.
    private func redraw(force: Bool) {
        let now = Date()
        if !force && now.timeIntervalSince(lastDraw) < 0.05 { return }
        lastDraw = now
        var text = drawn > 0 ? "\u{1B}[\(drawn)A" : ""
        let shown = hosts.prefix(40)
        let width = max(8, shown.map(\.count).max() ?? 8)
        for h in shown {
            let n = done[h] ?? 0
            let state: String
            if let f = failed[h] { state = Style.paint("✗ " + f, .red, true) }
            else if let s = current[h] { state = Style.paint("… " + s, .yellow, true) }
            else if let w = waiting[h] { state = "⏸ " + w }
            else if n >= totalSteps { state = Style.paint("✓ done", .green, true) }
            else { state = n == 0 ? "waiting" : "…" }
            text += "\u{1B}[2K  \(h.padding(toLength: width, withPad: " ", startingAt: 0))  [\(n)/\(totalSteps)] \(state)\n"
        }
        if hosts.count > shown.count {
            let finished = hosts.filter { (done[$0] ?? 0) >= totalSteps }.count
            text += "\u{1B}[2K  … and \(hosts.count - shown.count) more host(s); \(finished)/\(hosts.count) finished\n"
        }
        text += "\u{1B}[2K  \(String(format: "%.1f", now.timeIntervalSince(start))) s\n"
        drawn = shown.count + (hosts.count > shown.count ? 1 : 0) + 1
        out.write(text)
    }
}

/// JSON Lines events: `task_started`, `task_finished`, `run_finished` (schema in README).
public final class JSONLinesReporter: Reporter, @unchecked Sendable {
    let out: OutputSink
    private let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    public init(out: OutputSink = .stdout) { self.out = out }

    private func emit<T: Encodable>(_ value: T) {
        guard let data = try? encoder.encode(value) else { return }
        out.write(String(decoding: data, as: UTF8.self) + "\n")
    }

    struct Started: Encodable {
        var event = "run_started"
        var run_id: String
        var hosts: [String]
        var steps: [String]
        var tasks: Int
    }

    struct TaskStartedEvent: Encodable {
        var event = "task_started"
        var host: String
        var step: String
        var time: Date
    }

    struct TaskWaitingEvent: Encodable {
        var event = "task_waiting"
        var host: String
        var step: String
        var reason: String
        var time: Date
    }

    struct TaskFinishedEvent: Encodable {
        var event = "task_finished"
        var result: TaskResult
        func encode(to encoder: Encoder) throws {
            try result.encode(to: encoder)
            var c = encoder.container(keyedBy: K.self)
            try c.encode(event, forKey: .event)
            // A fixed schema: `exit_code` is null, not absent, when no command ran.
            if result.exitCode == nil { try c.encodeNil(forKey: .exit_code) }
        }
        enum K: String, CodingKey { case event, exit_code }
    }

    struct Finished: Encodable {
        var event = "run_finished"
        var run_id: String
        var status: String
        var duration_ms: Int
        var counts: [String: Int]
        var failed_hosts: [String]
    }

    public func runStarted(_ info: RunInfo) {
        emit(Started(run_id: info.runId, hosts: info.hosts, steps: info.steps, tasks: info.tasks))
    }

    public func taskStarted(host: String, step: String) {
        emit(TaskStartedEvent(host: host, step: step, time: Date()))
    }

    public func taskWaiting(host: String, step: String, reason: String) {
        emit(TaskWaitingEvent(host: host, step: step, reason: reason, time: Date()))
    }

    public func taskFinished(_ r: TaskResult) {
        emit(TaskFinishedEvent(result: r))
    }

    public func runFinished(_ s: RunSummary) {
        var counts: [String: Int] = [:]
        for st in TaskStatus.allCases { counts[st.rawValue] = s.counts[st] ?? 0 }
        let failedHosts = s.hosts.filter { h in s.results.contains { $0.host == h && !$0.status.succeeded } }
        emit(Finished(run_id: s.runId, status: s.interrupted ? "interrupted" : (s.succeeded ? "ok" : "failed"),
                      duration_ms: Seconds.milliseconds(s.duration), counts: counts, failed_hosts: failedHosts))
    }
}
