import Foundation

/// What one remote command gave back.
public struct CommandResult: Sendable {
    public var stdout: Data
    public var stderr: Data
    public var exitCode: Int32?
    public var exitSignal: String?
    public var timedOut: Bool
    public var duration: Double
    /// How many bytes each stream sent in all: more than `stdout.count` when only its head and
    /// tail were kept (a command that floods its output costs bounded memory).
    public var stdoutBytes: Int
    public var stderrBytes: Int

    public init(stdout: Data = Data(), stderr: Data = Data(), exitCode: Int32? = 0, exitSignal: String? = nil,
                timedOut: Bool = false, duration: Double = 0, stdoutBytes: Int? = nil, stderrBytes: Int? = nil) {
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutBytes = stdoutBytes ?? stdout.count
        self.stderrBytes = stderrBytes ?? stderr.count
        self.exitCode = exitCode
        self.exitSignal = exitSignal
        self.timedOut = timedOut
        self.duration = duration
    }

    public var succeeded: Bool { exitCode == 0 && !timedOut }
    public var stdoutTruncated: Bool { stdoutBytes > stdout.count }
    public var stderrTruncated: Bool { stderrBytes > stderr.count }
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    /// `exit 3`, `signal KILL` or `timed out`.
    public var statusText: String {
        if timedOut { return "timed out" }
        if let s = exitSignal { return "killed by signal \(s)" }
        return exitCode.map { "exit \($0)" } ?? "no exit status"
    }

    /// `statusText`, then `: ` and the last line of stderr when there is one (`exit 1: disk full`).
    public var failureText: String {
        let last = stderrText.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last
        return statusText + (last.map { ": \($0)" } ?? "")
    }
}

/// A failure to reach or talk to a host (as opposed to a command that ran and failed).
public struct ConnectionError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The host could not be reached at all: its tasks end `unreachable`, not `failed`.
    public var unreachable: Bool

    public init(_ message: String, unreachable: Bool) {
        self.message = message
        self.unreachable = unreachable
    }

    public var description: String { message }
}

/// A live connection to one host. Steps see only this: never an SSH session.
///
/// Used by one thread at a time. Commands run with the inventory's privilege (`become`).
public protocol Connection: AnyObject {
    var hostName: String { get }
    /// Runs a shell command. Throws `ConnectionError` only when the host cannot be talked to.
    func run(_ command: String, stdin: Data?, timeout: Double?) throws -> CommandResult
    /// Writes a file atomically with `mode`, content over stdin, within `timeout` seconds.
    func upload(_ data: Data, to path: String, mode: Int, timeout: Double?) throws
    /// Writes the file unless it already has this content and mode; true when it wrote. The
    /// default asks first (``checkThenUpload``); a connection may do both in one round trip.
    func uploadIfChanged(_ data: Data, to path: String, mode: Int, timeout: Double?) throws -> Bool
    /// Seconds a whole no-op command (`true`) takes: a channel opened, the command run, its exit
    /// status back. What `status` shows for a host that answers.
    func timeNoOpCommand() throws -> Double
    /// Closes the connection. Safe to call from another thread to abort a blocked call.
    func close()
}

extension Connection {
    public func run(_ command: String) throws -> CommandResult {
        try run(command, stdin: nil, timeout: nil)
    }

    public func upload(_ data: Data, to path: String, mode: Int) throws {
        try upload(data, to: path, mode: mode, timeout: nil)
    }

    public func uploadIfChanged(_ data: Data, to path: String, mode: Int, timeout: Double?) throws -> Bool {
        try checkThenUpload(data, to: path, mode: mode, timeout: timeout)
    }

    /// Two round trips: compares the remote file with `data` (its digest goes in over stdin and only
    /// "same" or "differs" comes out, so the digest of a secret is never printed), then uploads when
    /// it differs. What large files want: their bytes travel only when needed.
    public func checkThenUpload(_ data: Data, to path: String, mode: Int, timeout: Double?) throws -> Bool {
        try RemotePath.check(path, file: true, host: hostName)
        let q = shellQuote(path)
        let r = try run("if [ -f \(q) ]; then stat -c %a -- \(q); "
                            + "if sha256sum -c --status >/dev/null 2>&1; then echo same; else echo differs; fi; fi",
                        stdin: Data(sha256CheckLine(digest: sha256Hex(data), path: path).utf8), timeout: timeout)
        if r.timedOut {
            throw ConnectionError("comparing \(path) on \(hostName) timed out", unreachable: false)
        }
        let facts = r.stdoutText.split(separator: "\n").map(String.init)
        if facts.count == 2, Int(facts[0], radix: 8) == mode, facts[1] == "same" { return false }
        try upload(data, to: path, mode: mode, timeout: timeout)
        return true
    }

    /// Reads a remote file within `timeout` seconds; `nil` when it does not exist.
    public func read(_ path: String, timeout: Double? = nil) throws -> Data? {
        try RemotePath.check(path, file: false, host: hostName)
        let q = shellQuote(path)
        let r = try run("if [ -e \(q) ]; then cat -- \(q); else exit 44; fi", stdin: nil, timeout: timeout)
        if r.timedOut {
            throw ConnectionError("reading \(path) on \(hostName) timed out", unreachable: false)
        }
        if r.exitCode == 44 { return nil }
        if r.stdoutTruncated {
            throw ConnectionError("\(path) on \(hostName) is larger than fleet reads (\(r.stdoutBytes) bytes)", unreachable: false)
        }
        guard r.succeeded else {
            throw ConnectionError("cannot read \(path) on \(hostName): \(r.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))", unreachable: false)
        }
        return r.stdout
    }
}

/// A `sha256sum -c` line for `path`; a path with a backslash or newline is escaped as GNU
/// sha256sum reads it (a leading backslash, then `\\` and `\n`).
func sha256CheckLine(digest: String, path: String) -> String {
    guard path.contains("\\") || path.contains("\n") else { return "\(digest)  \(path)\n" }
    let escaped = path.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    return "\\\(digest)  \(escaped)\n"
}

/// Opens connections for the runner. The fleet executable provides the SSH one; tests a fake.
public protocol Connector: Sendable {
    func connect(to host: Host) throws -> Connection
}

/// Quotes a string for POSIX sh: bare when it is plainly safe, else `'…'` with `'\''` for quotes.
public func shellQuote(_ s: String) -> String {
    if !s.isEmpty, s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_./=:@,+%".contains($0)) }) {
        return s
    }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
