import CLibSSH2
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One jump host's session and the thread that makes every libssh2 call on it.
///
/// A session is used by one thread at a time, and libssh2 1.10 keeps the state of a channel
/// open in the session, so one open runs at a time. The pump thread therefore owns the session:
/// other threads hand it requests (`open`), it opens `direct-tcpip` channels one after another and
/// moves bytes between each channel and its local socket, non-blocking, re-polling every channel
/// before it sleeps on the sockets. Keepalives go out while it waits; the session's
/// `TCP_USER_TIMEOUT` notices a jump host that went silent, and then every tunnel is closed, so
/// the targets' sessions see their connection lost.
final class JumpPump: @unchecked Sendable {
    let name: String
    private let session: SSHSession
    private let cond = NSCondition()
    /// Requests not yet taken by the pump thread.
    private var queued: [OpenRequest] = []
    /// Set when the session died; every later request fails with it.
    private var deadReason: String?
    /// False once an open stayed unanswered past its deadline: new tunnels go to a fresh session.
    private var accepting = true
    /// A pipe that wakes the pump thread when a request arrives: [read end, write end].
    private let wake: [Int32]

    init(session: SSHSession, name: String) {
        self.session = session
        self.name = name
        var ends: [Int32] = [-1, -1]
        _ = pipe(&ends)
        for fd in ends {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wake = ends
        let thread = Thread { [self] in run() }
        thread.name = "fleet jump \(name)"
        thread.stackSize = 512 * 1024
        thread.start()
    }

    deinit {
        Glibc.close(wake[0])
        Glibc.close(wake[1])
    }

    var acceptsTunnels: Bool {
        cond.lock(); defer { cond.unlock() }
        return accepting && deadReason == nil
    }

    final class OpenRequest {
        let host: String
        let port: Int
        let deadline: Date
        let local: Int32
        let remote: Int32
        var result: Result<Int32, JumpError>?
        /// The pump should hand this request to another session (this one stopped taking tunnels).
        var moveOn = false
        /// The caller gave up waiting: a channel that opens later is closed at once.
        var abandoned = false

        init(host: String, port: Int, deadline: Date, local: Int32, remote: Int32) {
            self.host = host
            self.port = port
            self.deadline = deadline
            self.local = local
            self.remote = remote
        }
    }

    /// Opens a tunnel to `host`:`port` and returns the local socket its target session uses,
    /// nil when this pump stopped taking tunnels (ask the pool for another), or throws.
    func open(host: String, port: Int, deadline: Date) throws -> Int32? {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw JumpError(hop: name, destination: formatHostPort(host, port),
                            reason: "socketpair: \(String(cString: strerror(errno)))", isUnreachable: false)
        }
        for fd in pair { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        let request = OpenRequest(host: host, port: port, deadline: deadline, local: pair[0], remote: pair[1])
        cond.lock()
        if let dead = deadReason {
            cond.unlock()
            Glibc.close(pair[0]); Glibc.close(pair[1])
            throw JumpError(hop: name, reason: dead, isUnreachable: true)
        }
        if !accepting {
            cond.unlock()
            Glibc.close(pair[0]); Glibc.close(pair[1])
            return nil
        }
        queued.append(request)
        cond.unlock()
        signalPump()

        cond.lock()
        while request.result == nil, !request.moveOn {
            if !cond.wait(until: deadline) && request.result == nil && !request.moveOn {
                request.abandoned = true
                break
            }
        }
        let result = request.result
        let moveOn = request.moveOn
        cond.unlock()
        if let result {
            if case .failure = result { Glibc.close(pair[0]) }
            return try result.get()
        }
        // The pump closes the remote end; the local end is never handed out.
        Glibc.close(pair[0])
        if moveOn { return nil }
        throw JumpError(hop: name, destination: formatHostPort(host, port),
                        reason: "no answer within connect_timeout (\(formatSeconds(session.target.connectTimeout)))",
                        isUnreachable: true)
    }

    private func signalPump() {
        var one: UInt8 = 1
        _ = write(wake[1], &one, 1)
    }

    // MARK: - The pump thread

    /// One open channel and its local socket, with what is read from one side and not yet written
    /// to the other (at most one buffer each way: a full side stops the other from reading).
    final class Tunnel {
        let channel: OpaquePointer
        let fd: Int32
        var toLocal: [UInt8] = []
        var toChannel: [UInt8] = []
        var channelEOF = false
        var localEOF = false
        var localShut = false
        var eofSent = false
        var closing = false
        var closed = false

        init(channel: OpaquePointer, fd: Int32) {
            self.channel = channel
            self.fd = fd
        }
    }

    private var tunnels: [Tunnel] = []
    private var pending: [OpenRequest] = []
    private var buffer = [UInt8](repeating: 0, count: 32768)

    private func run() {
        var deathReason: String?
        while deathReason == nil {
            cond.lock()
            pending += queued
            queued.removeAll()
            cond.unlock()
            do {
                if stalled != nil {
                    if try !retryStalled() { try waitForWork(); continue }
                }
                var progress = try openNext()
                for t in tunnels where stalled == nil { progress = try pump(t) || progress }
                tunnels.removeAll { $0.closed }
                if retired { deathReason = "retired"; break }
                if !progress || stalled != nil { try waitForWork() }
            } catch let reason as PumpDeath {
                deathReason = reason.text
            } catch {
                deathReason = "\(error)"
            }
        }
        die(deathReason ?? "connection lost")
    }

    struct PumpDeath: Error { var text: String }

    /// Errors that mean the session itself is gone, not one channel.
    private func isSessionError(_ rc: Int32) -> Bool {
        // SOCKET_SEND, SOCKET_DISCONNECT, SOCKET_RECV, SOCKET_TIMEOUT, TIMEOUT
        [-7, -13, -43, -30, -9].contains(rc)
    }

    private func sessionDeath() -> PumpDeath {
        PumpDeath(text: "connection lost: \(session.lastErrno == -13 ? "the jump host closed the connection" : session.lastError)")
    }

    /// Works on the oldest request: libssh2 keeps one channel open in progress per session.
    private func openNext() throws -> Bool {
        guard let request = pending.first else { return false }
        cond.lock()
        let abandoned = request.abandoned
        cond.unlock()
        if abandoned, !openStarted {
            // Never started: nothing to finish.
            pending.removeFirst()
            Glibc.close(request.remote)
            return true
        }
        openStarted = true
        let raw = libssh2_channel_direct_tcpip_ex(session.session, request.host, Int32(request.port), "::1", 22)
        if let channel = raw {
            openStarted = false
            pending.removeFirst()
            cond.lock()
            let wanted = !request.abandoned
            if wanted { request.result = .success(request.local) }
            cond.broadcast()
            cond.unlock()
            let t = Tunnel(channel: channel, fd: request.remote)
            if !wanted { t.localEOF = true }
            tunnels.append(t)
            return true
        }
        let rc = session.lastErrno
        if rc == LibSSH2.eagain {
            if Date() > request.deadline { stopAccepting() }
            _ = stalls(.open, nil)
            return false
        }
        openStarted = false
        if isSessionError(rc) { throw sessionDeath() }
        pending.removeFirst()
        Glibc.close(request.remote)
        let failure = describeOpenFailure(session.lastError, destination: formatHostPort(request.host, request.port))
        cond.lock()
        request.result = .failure(failure)
        cond.broadcast()
        cond.unlock()
        return true
    }

    private var openStarted = false

    /// A session that takes no new tunnels and has none left ends.
    private var retired: Bool {
        cond.lock(); defer { cond.unlock() }
        return !accepting && tunnels.isEmpty && pending.isEmpty && queued.isEmpty
    }

    func describeOpenFailure(_ text: String, destination: String) -> JumpError {
        Self.openFailure(text, hop: name, destination: destination)
    }

    /// libssh2's "Channel open failure (…)" as the cause the user can act on.
    static func openFailure(_ text: String, hop name: String, destination: String) -> JumpError {
        if text.contains("administratively prohibited") {
            return JumpError(hop: name, destination: destination,
                             reason: "\(text): the jump host does not allow TCP forwarding (sshd_config AllowTcpForwarding, DisableForwarding or PermitOpen)",
                             isUnreachable: false)
        }
        if text.contains("connect failed") {
            return JumpError(hop: name, destination: destination,
                             reason: "\(text): the jump host cannot reach it (host down, sshd not listening, or no route from the jump host)",
                             isUnreachable: true)
        }
        return JumpError(hop: name, destination: destination, reason: text, isUnreachable: true)
    }

    /// An open stuck past its caller's deadline (the jump host's own connect to a silent host can
    /// take minutes) would hold every later open: this session takes no new ones, and those
    /// waiting move on to a fresh session. Its open tunnels keep working.
    private func stopAccepting() {
        cond.lock()
        guard accepting else { cond.unlock(); return }
        accepting = false
        let waiting = pending.dropFirst() + queued
        queued.removeAll()
        for r in waiting {
            r.moveOn = true
            Glibc.close(r.remote)
        }
        pending = Array(pending.prefix(1))
        cond.broadcast()
        cond.unlock()
    }

    /// A libssh2 call that answered EAGAIN with part of a packet unsent: libssh2 wants that same
    /// call repeated before any other that sends, so the pump retries only it until it is done.
    enum Step { case open, read, write, eof, close }
    private var stalled: (step: Step, tunnel: Tunnel?)?

    /// After a call answered EAGAIN: true (and the step recorded) when it left a packet half sent.
    private func stalls(_ step: Step, _ t: Tunnel?) -> Bool {
        guard libssh2_session_block_directions(session.session) & LibSSH2.blockOutbound != 0 else { return false }
        stalled = (step, t)
        return true
    }

    /// Repeats the stalled call. True when it is done (the pump may go on with the others).
    private func retryStalled() throws -> Bool {
        guard let (step, t) = stalled else { return true }
        stalled = nil
        switch step {
        case .open: _ = try openNext()
        case .read: _ = try readChannel(t!)
        case .write: _ = try writeChannel(t!)
        case .eof, .close: _ = try finishClose(t!)
        }
        return stalled == nil
    }

    /// Moves what it can between one channel and its socket. True when anything moved or changed.
    private func pump(_ t: Tunnel) throws -> Bool {
        if t.closing { return try finishClose(t) }
        var progress = try readChannel(t)
        if stalled != nil { return progress }
        if !t.toLocal.isEmpty {
            let n = t.toLocal.withUnsafeBytes { send(t.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                t.toLocal.removeFirst(n)
                progress = true
            } else if n < 0 && errno != EAGAIN && errno != EINTR {
                // The target's session closed its end.
                t.toLocal.removeAll()
                t.localEOF = true
                progress = true
            }
        }
        if t.channelEOF && t.toLocal.isEmpty && !t.localShut {
            _ = shutdown(t.fd, Int32(SHUT_WR))
            t.localShut = true
            progress = true
        }
        // Local socket -> channel.
        if t.toChannel.isEmpty && !t.localEOF {
            let n = buffer.withUnsafeMutableBytes { recv(t.fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                t.toChannel = Array(buffer[0..<n])
                progress = true
            } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                t.localEOF = true
                progress = true
            }
        }
        progress = try writeChannel(t) || progress
        if stalled != nil { return progress }
        // The target's session is done with it: it closed its socket.
        if t.localEOF && t.toChannel.isEmpty {
            t.closing = true
            progress = true
        }
        return progress
    }

    /// Channel -> buffer, when the buffer is empty.
    private func readChannel(_ t: Tunnel) throws -> Bool {
        guard t.toLocal.isEmpty && !t.channelEOF else { return false }
        let n = buffer.withUnsafeMutableBytes { b in
            libssh2_channel_read_ex(t.channel, 0, b.baseAddress!.assumingMemoryBound(to: CChar.self), b.count)
        }
        if n > 0 {
            t.toLocal = Array(buffer[0..<n])
            return true
        }
        if n == Int(LibSSH2.eagain) && stalls(.read, t) { return false }
        if n == Int(LibSSH2.eagain) || n == 0 {
            if libssh2_channel_eof(t.channel) == 1 { t.channelEOF = true; return true }
            return false
        }
        if isSessionError(Int32(n)) { throw sessionDeath() }
        t.channelEOF = true
        return true
    }

    /// Buffer -> channel, when there is something to write.
    private func writeChannel(_ t: Tunnel) throws -> Bool {
        guard !t.toChannel.isEmpty else { return false }
        let n = t.toChannel.withUnsafeBytes { b in
            libssh2_channel_write_ex(t.channel, 0, b.baseAddress!.assumingMemoryBound(to: CChar.self), b.count)
        }
        if n > 0 {
            t.toChannel.removeFirst(n)
            return true
        }
        if n == Int(LibSSH2.eagain) {
            _ = stalls(.write, t)
            return false
        }
        if isSessionError(Int32(n)) { throw sessionDeath() }
        t.toChannel.removeAll()
        t.channelEOF = true
        t.localEOF = true
        return true
    }

    /// EOF, close and free, each repeated while libssh2 answers EAGAIN.
    private func finishClose(_ t: Tunnel) throws -> Bool {
        if !t.eofSent {
            let rc = libssh2_channel_send_eof(t.channel)
            if rc == LibSSH2.eagain { _ = stalls(.eof, t); return false }
            t.eofSent = true
        }
        let rc = libssh2_channel_close(t.channel)
        if rc == LibSSH2.eagain { _ = stalls(.close, t); return false }
        if isSessionError(rc) { throw sessionDeath() }
        while libssh2_channel_free(t.channel) == LibSSH2.eagain {
            var pfd = pollfd(fd: session.socket, events: Int16(POLLIN | POLLOUT), revents: 0)
            _ = poll(&pfd, 1, 100)
        }
        Glibc.close(t.fd)
        t.closed = true
        return true
    }

    /// Sleeps until the jump host's socket, a local socket or a new request needs the pump (or a
    /// second passes: keepalives and deadlines).
    private func waitForWork() throws {
        session.keepaliveTick()
        var fds: [pollfd] = []
        let dirs = libssh2_session_block_directions(session.session)
        var events = Int16(POLLIN)
        if dirs & LibSSH2.blockOutbound != 0 { events |= Int16(POLLOUT) }
        fds.append(pollfd(fd: session.socket, events: events, revents: 0))
        fds.append(pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0))
        for t in tunnels where !t.closing {
            var e: Int16 = 0
            if t.toChannel.isEmpty && !t.localEOF { e |= Int16(POLLIN) }
            if !t.toLocal.isEmpty { e |= Int16(POLLOUT) }
            fds.append(pollfd(fd: t.fd, events: e, revents: 0))
        }
        var ms: Int32 = 1000
        if let first = pending.first { ms = min(ms, max(0, Int32(first.deadline.timeIntervalSinceNow * 1000) + 1)) }
        let rc = poll(&fds, nfds_t(fds.count), ms)
        if rc < 0 && errno != EINTR { throw PumpDeath(text: "poll: \(String(cString: strerror(errno)))") }
        if fds[0].revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 {
            throw PumpDeath(text: "connection lost: \(session.socketErrorText)")
        }
        if fds[1].revents & Int16(POLLIN) != 0 {
            var drain = [UInt8](repeating: 0, count: 64)
            while read(wake[0], &drain, 64) > 0 {}
        }
    }

    /// The session is gone: every request fails with `reason` and every tunnel is closed, so the
    /// targets' sessions see their connection lost.
    private func die(_ reason: String) {
        cond.lock()
        deadReason = reason
        let waiting = pending + queued
        pending.removeAll()
        queued.removeAll()
        for r in waiting where r.result == nil {
            r.result = .failure(JumpError(hop: name, destination: formatHostPort(r.host, r.port), reason: reason,
                                          isUnreachable: true))
            Glibc.close(r.remote)
        }
        cond.broadcast()
        cond.unlock()
        for t in tunnels where !t.closed {
            Glibc.close(t.fd)
        }
        tunnels.removeAll()
        session.abort()
        session.close()
        // The wake pipe stays open until deinit: another thread may still signal it.
    }
}
