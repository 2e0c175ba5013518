import CLibSSH2
import Foundation

/// The outcome of one remote command.
public struct ExecResult: Sendable {
    public var stdout: Data
    public var stderr: Data
    /// The exit status; `nil` when the command died of a signal or no status arrived.
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

extension SSHSession {
    /// Runs `command` through the remote user's shell, with `stdin` fed to it.
    ///
    /// stdout and stderr are read together without blocking, so a command flooding one of them
    /// never deadlocks the other. The command runs as sent, with no wrapper process (hosts pay
    /// nothing per command). Past `timeout`, libssh2 1.10 having no way to signal a channel, a
    /// second channel kills the command's whole session: sshd starts every command as the leader
    /// of a session of its own, a child of the connection's sshd process. `killPrefix` (`sudo -n `)
    /// lets that kill reach commands that run as another user.
    public func exec(_ command: String, stdin: Data? = nil, timeout: Double? = nil,
                     killPrefix: String = "") throws -> ExecResult {
        let start = Date()
        let deadline = timeout.map { start.addingTimeInterval($0) }
        // Setting up the channel may take a little past the command's own timeout.
        let setupDeadline = deadline.map { $0.addingTimeInterval(15) }
        let channel = try openChannel(deadline: setupDeadline)
        defer { libssh2_channel_free(channel) }

        let rc = try retry(until: setupDeadline) {
            libssh2_channel_process_startup(channel, "exec", 4, command, UInt32(command.utf8.count))
        }
        guard rc == 0 else {
            throw SSHError.channel(host: target.host, operation: "exec", reason: rc == LibSSH2.eagain ? "timed out" : lastError)
        }

        var io = ChannelIO(stdin: stdin ?? Data())
        var timedOut = false
        if try !io.pump(self, channel, until: deadline) {
            // Past the timeout: kill the command's session, then collect what is left of it.
            timedOut = true
            try killOtherSessions(prefix: killPrefix)
            if try !io.pump(self, channel, until: Date().addingTimeInterval(10)) {
                // The host stopped answering: abandon the channel without waiting for its close.
                return ExecResult(stdout: io.out, stderr: io.err, exitCode: nil, exitSignal: nil, timedOut: true,
                                  duration: Date().timeIntervalSince(start))
            }
        }

        let closeDeadline = Date().addingTimeInterval(10)
        _ = try retry(until: closeDeadline) { libssh2_channel_close(channel) }
        _ = try retry(until: closeDeadline) { libssh2_channel_wait_closed(channel) }
        var exitCode: Int32?
        var exitSignal: String?
        var sig: UnsafeMutablePointer<CChar>?
        var sigLen = 0
        _ = libssh2_channel_get_exit_signal(channel, &sig, &sigLen, nil, nil, nil, nil)
        if let sig, sigLen > 0 {
            exitSignal = String(cString: sig)
            libssh2_free(session, sig)
        } else {
            // libssh2 reports 0 when no status arrived; a channel that closed without one was
            // a lost connection, which the reads above have already thrown for.
            exitCode = libssh2_channel_get_exit_status(channel)
        }
        return ExecResult(stdout: io.out, stderr: io.err, exitCode: timedOut ? nil : exitCode,
                          exitSignal: exitSignal, timedOut: timedOut, duration: Date().timeIntervalSince(start))
    }

    /// Kills, from a new channel, every other command this connection runs (each is the leader of
    /// its own session under the connection's sshd process, which is this shell's parent).
    func killOtherSessions(prefix: String) throws {
        let script = "for p in $(pgrep -P $PPID); do [ \"$p\" = \"$$\" ] || \(prefix)kill -KILL -- -\"$p\" 2>/dev/null; done; true"
        let channel = try openChannel(deadline: Date().addingTimeInterval(10))
        defer { libssh2_channel_free(channel) }
        let deadline = Date().addingTimeInterval(10)
        let rc = try retry(until: deadline) {
            libssh2_channel_process_startup(channel, "exec", 4, script, UInt32(script.utf8.count))
        }
        guard rc == 0 else { return }
        var io = ChannelIO(stdin: Data())
        _ = try io.pump(self, channel, until: deadline)
        _ = try retry(until: deadline) { libssh2_channel_close(channel) }
    }
}

/// Moves stdin in and stdout/stderr out of one channel without blocking on either.
struct ChannelIO {
    let input: Data
    var offset = 0
    var eofSent = false
    var out = Data()
    var err = Data()

    init(stdin: Data) { input = stdin }

    /// Pumps until the remote side closes its output (true) or the deadline passes (false).
    mutating func pump(_ s: SSHSession, _ channel: OpaquePointer, until deadline: Date?) throws -> Bool {
        let bufferSize = 64 * 1024
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: bufferSize)
        defer { buffer.deallocate() }

        func drain(_ stream: Int32, into data: inout Data) throws -> Bool {
            var got = false
            while true {
                let n = libssh2_channel_read_ex(channel, stream, buffer, bufferSize)
                if n > 0 {
                    data.append(UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: n)
                    got = true
                } else if n == 0 || n == Int(LibSSH2.eagain) {
                    return got
                } else {
                    throw SSHError.disconnected(host: s.target.host, reason: s.lastError)
                }
            }
        }

        while true {
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
                throw SSHError.channel(host: target.host, operation: "open channel", reason: "timed out")
            }
        }
    }
}
