import CLibSSH2
import Foundation

/// The outcome of one remote command.
public struct ExecResult: Sendable {
    /// What was kept of stdout and stderr: all of it, or its head and tail (see ``OutputLimits``).
    public var stdout: Data
    public var stderr: Data
    /// How many bytes each stream sent in all; more than `stdout.count` when the middle was dropped.
    public var stdoutBytes: Int
    public var stderrBytes: Int
    /// The exit status; `nil` when the command died of a signal, timed out, or no status arrived.
    public var exitCode: Int32?
    /// The signal name (`KILL`, `TERM`, …) when the command died of one.
    public var exitSignal: String?
    /// The command ran past its timeout and was stopped.
    public var timedOut: Bool
    public var duration: Double

    public var succeeded: Bool { exitCode == 0 && !timedOut }
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// How much of each output stream a command keeps in memory: its first `head` bytes and its last
/// `tail` bytes. A command that prints more (`yes`) costs no more memory than that.
public enum OutputLimits {
    public static let head = 1024 * 1024
    public static let tail = 256 * 1024
}

extension SSHSession {
    /// Runs `command` through the remote user's shell, with `stdin` fed to it.
    ///
    /// stdout and stderr are read together without blocking, so a command flooding one of them
    /// never deadlocks the other. The command runs as sent, with no wrapper process (hosts pay
    /// nothing per command). Everything, from opening the channel to the server's close of it,
    /// happens within `timeout`. An exit status counts only once the server has closed the channel
    /// (OpenSSH sends the status, or the signal, first): libssh2 1.10 reads a status that never
    /// came as 0. Past `timeout`, libssh2 1.10 having no way to signal a channel, a second channel
    /// kills the command's whole session: sshd starts every command as the leader of a session of
    /// its own, a child of the connection's sshd process. `killPrefix` (`sudo -n `) lets that kill
    /// reach commands that run as another user. Stopping it takes at most ``killBudget`` seconds
    /// more; a host that does not answer by then is left behind.
    public func exec(_ command: String, stdin: Data? = nil, timeout: Double? = nil,
                     killPrefix: String = "") throws -> ExecResult {
        let start = Date()
        let deadline = timeout.map { start.addingTimeInterval($0) }
        let channel = try openChannel(deadline: deadline)
        var freeChannel = true
        defer { if freeChannel { libssh2_channel_free(channel) } }

        let rc = try retry(until: deadline) {
            libssh2_channel_process_startup(channel, "exec", 4, command, UInt32(command.utf8.count))
        }
        guard rc == 0 else {
            if rc == LibSSH2.eagain {
                throw SSHError.disconnected(host: target.host, reason: "the command could not be started within \(formatSeconds(timeout ?? 0))")
            }
            throw SSHError.channel(host: target.host, operation: "exec", reason: lastError)
        }

        var io = ChannelIO(stdin: stdin ?? Data())
        var closed = false
        if try io.pump(self, channel, until: deadline) {
            closed = try waitClosed(channel, until: deadline)
        }
        if !closed {
            // Past the timeout: kill the command's session, then collect what is left of it, all
            // within the kill budget. A host that stops answering is abandoned, channel and all.
            let killDeadline = Date().addingTimeInterval(SSHSession.killBudget)
            _ = try? killOtherSessions(prefix: killPrefix, until: killDeadline)
            if (try? io.pump(self, channel, until: killDeadline)) == true {
                closed = (try? waitClosed(channel, until: killDeadline)) ?? false
            }
            if !closed { freeChannel = false }
            return io.result(exitCode: nil, exitSignal: nil, timedOut: true, start: start)
        }

        var exitCode: Int32?
        var exitSignal: String?
        var sig: UnsafeMutablePointer<CChar>?
        var sigLen = 0
        _ = libssh2_channel_get_exit_signal(channel, &sig, &sigLen, nil, nil, nil, nil)
        if let sig, sigLen > 0 {
            exitSignal = String(cString: sig)
            libssh2_free(session, sig)
        } else {
            exitCode = libssh2_channel_get_exit_status(channel)
        }
        // The server has closed its side; answer with ours (never waits on the command).
        _ = try? retry(until: Date().addingTimeInterval(1)) { libssh2_channel_close(channel) }
        return io.result(exitCode: exitCode, exitSignal: exitSignal, timedOut: false, start: start)
    }

    /// How long stopping a timed-out command may take, past its timeout.
    public static let killBudget: Double = 4

    /// Waits for the server to close the channel (after the command ended); false at the deadline.
    func waitClosed(_ channel: OpaquePointer, until deadline: Date?) throws -> Bool {
        let rc = try retry(until: deadline) { libssh2_channel_wait_closed(channel) }
        if rc == LibSSH2.eagain { return false }
        if rc != 0 { throw SSHError.disconnected(host: target.host, reason: lastError) }
        return true
    }

    /// Kills, from a new channel, every other command this connection runs (each is the leader of
    /// its own session under the connection's sshd process, which is this shell's parent).
    func killOtherSessions(prefix: String, until deadline: Date) throws {
        let script = "for p in $(pgrep -P $PPID); do [ \"$p\" = \"$$\" ] || \(prefix)kill -KILL -- -\"$p\" 2>/dev/null; done; true"
        let channel = try openChannel(deadline: deadline)
        defer { libssh2_channel_free(channel) }
        let rc = try retry(until: deadline) {
            libssh2_channel_process_startup(channel, "exec", 4, script, UInt32(script.utf8.count))
        }
        guard rc == 0 else { return }
        var io = ChannelIO(stdin: Data())
        if try io.pump(self, channel, until: deadline) {
            _ = try waitClosed(channel, until: deadline)
        }
        _ = try retry(until: deadline) { libssh2_channel_close(channel) }
    }
}

/// One output stream as kept in memory: its first bytes and its last bytes, and how many in all.
struct BoundedOutput {
    let headLimit: Int
    let tailLimit: Int
    private(set) var head = Data()
    private var tail = Data()
    private(set) var total = 0

    init(head: Int = OutputLimits.head, tail: Int = OutputLimits.tail) {
        headLimit = head
        tailLimit = tail
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        total += bytes.count
        var rest = bytes[...]
        if head.count < headLimit {
            let n = min(headLimit - head.count, rest.count)
            head.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest.prefix(n)))
            rest = rest.dropFirst(n)
        }
        guard !rest.isEmpty else { return }
        tail.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest))
        // Trimmed in batches: copying the tail on every read would cost more than it keeps.
        if tail.count > 2 * tailLimit { tail = Data(tail.suffix(tailLimit)) }
    }

    /// The head, then the last `tailLimit` bytes (everything when nothing was dropped).
    var kept: Data { head + Data(tail.suffix(tailLimit)) }
}

/// Moves stdin in and stdout/stderr out of one channel without blocking on either.
struct ChannelIO {
    let input: Data
    var offset = 0
    var eofSent = false
    var out = BoundedOutput()
    var err = BoundedOutput()

    init(stdin: Data) { input = stdin }

    func result(exitCode: Int32?, exitSignal: String?, timedOut: Bool, start: Date) -> ExecResult {
        ExecResult(stdout: out.kept, stderr: err.kept, stdoutBytes: out.total, stderrBytes: err.total,
                   exitCode: exitCode, exitSignal: exitSignal, timedOut: timedOut,
                   duration: Date().timeIntervalSince(start))
    }

    /// Pumps until the remote side closes its output (true) or the deadline passes (false).
    mutating func pump(_ s: SSHSession, _ channel: OpaquePointer, until deadline: Date?) throws -> Bool {
        let bufferSize = 64 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 1)
        defer { buffer.deallocate() }
        func expired() -> Bool { deadline.map { Date() >= $0 } ?? false }

        /// Reads what is there (stopping at the deadline: a flood never ends on its own).
        func drain(_ stream: Int32, into data: inout BoundedOutput) throws -> Bool {
            var got = false
            while !expired() {
                let n = libssh2_channel_read_ex(channel, stream, buffer.assumingMemoryBound(to: CChar.self), bufferSize)
                if n > 0 {
                    data.append(UnsafeRawBufferPointer(start: buffer, count: n))
                    got = true
                } else if n == 0 || n == Int(LibSSH2.eagain) {
                    return got
                } else {
                    throw SSHError.disconnected(host: s.target.host, reason: s.lastError)
                }
            }
            return got
        }

        while true {
            if expired() { return false }
            var progressed = false
            if offset < input.count {
                let n = input.withUnsafeBytes { raw -> Int in
                    let base = raw.baseAddress!.advanced(by: offset).assumingMemoryBound(to: CChar.self)
                    return libssh2_channel_write_ex(channel, 0, base, min(input.count - offset, 32 * 1024))
                }
                if n > 0 {
                    offset += n
                    progressed = true
                } else if n == Int(LibSSH2.eagain) {
                    // A packet half sent must be finished by this same call before any other send.
                    if libssh2_session_block_directions(s.session) & LibSSH2.blockOutbound != 0 {
                        guard try s.waitSocket(until: deadline) else { return false }
                        continue
                    }
                } else if n < 0 {
                    // The command exited without reading all of its input: keep its output.
                    offset = input.count
                }
            } else if !eofSent {
                let r = libssh2_channel_send_eof(channel)
                if r == LibSSH2.eagain {
                    if libssh2_session_block_directions(s.session) & LibSSH2.blockOutbound != 0 {
                        guard try s.waitSocket(until: deadline) else { return false }
                        continue
                    }
                } else {
                    eofSent = true
                    progressed = true
                }
            }
            if try drain(0, into: &out) { progressed = true }
            if try drain(LibSSH2.stderrStream, into: &err) { progressed = true }
            if libssh2_channel_eof(channel) != 0 {
                _ = try drain(0, into: &out)
                _ = try drain(LibSSH2.stderrStream, into: &err)
                return true
            }
            if !progressed {
                guard try s.waitSocket(until: deadline) else { return false }
            }
        }
    }
}

extension SSHSession {
    func openChannel(deadline: Date?) throws -> OpaquePointer {
        while true {
            if let ch = libssh2_channel_open_ex(session, "session", 7, 2 * 1024 * 1024, 32768, nil, 0) {
                return ch
            }
            let code = lastErrno
            guard code == LibSSH2.eagain else {
                throw SSHError.channel(host: target.host, operation: "open channel", reason: lastError)
            }
            guard try waitSocket(until: deadline) else {
                throw SSHError.disconnected(host: target.host, reason: "no channel opened within the command's timeout")
            }
        }
    }
}
