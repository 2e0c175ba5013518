import Foundation

/// How a (host, step) task ended.
public enum TaskStatus: String, Codable, Sendable, CaseIterable {
    /// Already as wanted: nothing changed.
    case ok
    /// Something was changed.
    case changed
    /// Not applicable, or not needed this run (`--retry-failed` and the inputs are unchanged).
    case skipped
    /// The step ran and failed.
    case failed
    /// The step declined before changing anything: what it was asked for needs another verb.
    case refused
    /// The host could not be reached.
    case unreachable
    /// Something it needs failed (an earlier step on this host, or a value from another host).
    case blocked
    /// The run was stopped (Ctrl-C) while it ran or before it could.
    case interrupted

    public var succeeded: Bool { self == .ok || self == .changed || self == .skipped }
}

/// The structured end of one task. Feeds the terminal view, JSON Lines and the state file.
public struct TaskResult: Codable, Sendable {
    public var host: String
    public var step: String
    public var status: TaskStatus
    public var exitCode: Int32?
    public var startedAt: Date
    public var durationMs: Int
    public var stdoutTail: String
    public var stderrTail: String
    public var message: String
    /// SHA-256 of the step's rendered inputs for this host (secrets excluded).
    public var digest: String
    /// The whole output of the task's last command (redacted), for verbs that print it (`exec`):
    /// kept only when the action asks for it (`Action.keepsOutput`); never in the state file or JSON
    /// events, which keep the tails.
    public var output: CommandOutput? = nil

    public init(host: String, step: String, status: TaskStatus, exitCode: Int32? = nil, startedAt: Date = Date(),
                durationMs: Int = 0, stdoutTail: String = "", stderrTail: String = "", message: String = "",
                digest: String = "") {
        self.host = host
        self.step = step
        self.status = status
        self.exitCode = exitCode
        self.startedAt = startedAt
        self.durationMs = durationMs
        self.stdoutTail = stdoutTail
        self.stderrTail = stderrTail
        self.message = message
        self.digest = digest
    }

    enum CodingKeys: String, CodingKey {
        case host, step, status, message, digest
        case exitCode = "exit_code"
        case startedAt = "started_at"
        case durationMs = "duration_ms"
        case stdoutTail = "stdout_tail"
        case stderrTail = "stderr_tail"
    }
}

/// A command's whole stdout and stderr as text.
public struct CommandOutput: Sendable, Equatable {
    public var stdout: String
    public var stderr: String
    /// Bytes each stream sent in all: more than the text holds when only its head and tail were kept.
    public var stdoutBytes: Int
    public var stderrBytes: Int

    public init(stdout: String, stderr: String, stdoutBytes: Int? = nil, stderrBytes: Int? = nil) {
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutBytes = stdoutBytes ?? stdout.utf8.count
        self.stderrBytes = stderrBytes ?? stderr.utf8.count
    }
}

/// The last `maxLines` lines (and at most `maxBytes` bytes) of some output.
public func tail(_ text: String, maxLines: Int = 20, maxBytes: Int = 4096) -> String {
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    if lines.last == "" { lines.removeLast() }
    var out = lines.suffix(maxLines).joined(separator: "\n")
    if out.utf8.count > maxBytes {
        out = String(decoding: out.utf8.suffix(maxBytes), as: UTF8.self)
    }
    return out
}
