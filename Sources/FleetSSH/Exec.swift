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
    /// never deadlocks the other. With a `timeout`, the command runs under coreutils `timeout`
    /// (libssh2 1.10 cannot signal a channel), which stops the whole process group; the client
    /// also gives up on the channel a little later should the host stop answering.
    public func exec(_ command: String, stdin: Data? = nil, timeout: Double? = nil) throws -> ExecResult {
        let start = Date()
        var remote = command
        var clientDeadline: Date?
        if let timeout {
            let seconds = max(1, Int(timeout.rounded(.up)))
            remote = "timeout -k 5 \(seconds) sh -c \(shellQuote(command))"
            clientDeadline = start.addingTimeInterval(Double(seconds) + 15)
        }

        let channel = try openChannel(deadline: clientDeadline)
        var freed = false
        defer { if !freed { libssh2_channel_free(channel) } }

        let rc = try retry(until: clientDeadline) {
            libssh2_channel_process_startup(channel, "exec", 4, remote, UInt32(remote.utf8.count))
        }
        guard rc == 0 else {
            throw SSHError.channel(host: target.host, operation: "exec", reason: rc == LibSSH2.eagain ? "timed out" : lastError)
        }

        var out = Data(), err = Data()
        let input = stdin ?? Data()
        var inputOffset = 0
        var eofSent = false
        var timedOut = false
        let bufferSize = 64 * 1024
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: bufferSize)
        defer { buffer.deallocate() }

        /// Reads what is available on one stream. Returns true when something arrived.
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
                    throw SSHError.disconnected(host: target.host, reason: lastError)
                }
            }
        }

        while true {
            var progressed = false
            if inputOffset < input.count {
                let n = input.withUnsafeBytes { raw -> Int in
                    let base = raw.baseAddress!.advanced(by: inputOffset).assumingMemoryBound(to: CChar.self)
                    return libssh2_channel_write_ex(channel, 0, base, min(input.count - inputOffset, 32 * 1024))
                }
                if n > 0 {
                    inputOffset += n
                    progressed = true
                } else if n == Int(LibSSH2.eagain) {
                    // A packet half sent must be finished by this same call before any other send.
                    if libssh2_session_block_directions(session) & LibSSH2.blockOutbound != 0 {
                        try waitSocket(until: clientDeadline)
                        if let d = clientDeadline, Date() >= d { timedOut = true; break }
                        continue
                    }
                } else if n < 0 {
                    // The command exited without reading all of its input: keep its output.
                    inputOffset = input.count
                }
            } else if !eofSent {
                let r = libssh2_channel_send_eof(channel)
                if r == LibSSH2.eagain {
                    if libssh2_session_block_directions(session) & LibSSH2.blockOutbound != 0 {
                        try waitSocket(until: clientDeadline)
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
                break
            }
            if !progressed {
                if let d = clientDeadline, Date() >= d { timedOut = true; break }
                try waitSocket(until: clientDeadline)
            }
        }

        var exitCode: Int32?
        var exitSignal: String?
        if timedOut {
            // The host stopped answering: abandon the channel without waiting for its close.
            libssh2_channel_free(channel)
            freed = true
        } else {
            let closeDeadline = Date().addingTimeInterval(10)
            _ = try retry(until: closeDeadline) { libssh2_channel_close(channel) }
            _ = try retry(until: closeDeadline) { libssh2_channel_wait_closed(channel) }
            var sig: UnsafeMutablePointer<CChar>?
            var sigLen = 0
            _ = libssh2_channel_get_exit_signal(channel, &sig, &sigLen, nil, nil, nil, nil)
            if let sig, sigLen > 0 {
                exitSignal = String(cString: sig)
                libssh2_free(session, sig)
            } else {
                // libssh2 reports 0 when no status arrived; a closed channel with neither a
                // status nor a signal has been handled above as a lost connection.
                exitCode = libssh2_channel_get_exit_status(channel)
            }
            libssh2_channel_free(channel)
            freed = true
        }

        let duration = Date().timeIntervalSince(start)
        if let timeout, !timedOut, duration >= timeout * 0.98,
           exitCode == 124 || exitCode == 137 || exitSignal == "KILL" {
            timedOut = true
        }
        return ExecResult(stdout: out, stderr: err, exitCode: timedOut ? nil : exitCode,
                          exitSignal: exitSignal, timedOut: timedOut, duration: duration)
    }

    func openChannel(deadline: Date?) throws -> OpaquePointer {
        while true {
            if let ch = libssh2_channel_open_ex(session, "session", 7, 2 * 1024 * 1024, 32768, nil, 0) {
                return ch
            }
            let code = lastErrno
            guard code == LibSSH2.eagain else {
                throw SSHError.channel(host: target.host, operation: "open channel", reason: lastError)
            }
            if let deadline, Date() >= deadline {
                throw SSHError.channel(host: target.host, operation: "open channel", reason: "timed out")
            }
            try waitSocket(until: deadline)
        }
    }
}

/// Quotes a string for POSIX sh: `'…'` with embedded quotes as `'\''`. Safe for every byte.
func shellQuote(_ s: String) -> String {
    if !s.isEmpty, s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_./=:@,+%".contains($0)) }) {
        return s
    }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
