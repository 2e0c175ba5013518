import CLibSSH2
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What to do with a host key that known_hosts does not hold.
public enum HostKeyCheck: String, Sendable {
    /// Unknown or changed keys are refused (the default).
    case strict
    /// Trust on first use: an unknown key is appended; a changed key is still refused.
    case acceptNew = "accept-new"
}

/// Where the client's identity comes from.
public struct SSHCredentials: Sendable {
    /// A private key file (ed25519 or ECDSA). `nil`: try ssh-agent, then the default key files.
    public var identityFile: String?
    /// Passphrase for the key file, if it has one. Never logged.
    public var passphrase: String?
    /// Use `SSH_AUTH_SOCK` when no key file is given (or when the key file fails).
    public var useAgent: Bool

    public init(identityFile: String? = nil, passphrase: String? = nil, useAgent: Bool = true) {
        self.identityFile = identityFile
        self.passphrase = passphrase
        self.useAgent = useAgent
    }
}

public struct SSHTarget: Sendable {
    public var host: String
    public var port: Int
    public var user: String
    public var credentials: SSHCredentials
    public var knownHosts: String
    public var hostKeyCheck: HostKeyCheck
    /// One deadline, from the connection's turn (see `pacer`), for TCP connect, handshake and auth.
    public var connectTimeout: Double
    /// Where known_hosts files are parsed: once per process by default.
    public var knownHostsStore: KnownHostsStore
    /// Bounds connections being set up at once; nil: no bound.
    public var pacer: ConnectPacer?
    /// Seconds between keepalives while waiting on the host; a silent host is noticed within
    /// about three of them (see Keepalive.swift). 0 turns keepalives off.
    public var keepaliveInterval: Double

    public init(host: String, port: Int = 22, user: String, credentials: SSHCredentials,
                knownHosts: String, hostKeyCheck: HostKeyCheck = .strict, connectTimeout: Double = 10,
                knownHostsStore: KnownHostsStore = .shared, pacer: ConnectPacer? = .shared,
                keepaliveInterval: Double = 10) {
        self.host = host
        self.port = port
        self.user = user
        self.credentials = credentials
        self.knownHosts = knownHosts
        self.hostKeyCheck = hostKeyCheck
        self.connectTimeout = connectTimeout
        self.knownHostsStore = knownHostsStore
        self.pacer = pacer
        self.keepaliveInterval = keepaliveInterval
    }
}

/// One authenticated SSH connection to one host, driven through non-blocking libssh2 calls.
///
/// A session (and its channels) is used by one thread at a time: callers give each host its own
/// thread. Nothing here runs on Swift's cooperative pool.
public final class SSHSession: @unchecked Sendable {
    public let target: SSHTarget
    /// The host key type and fingerprint that was verified.
    public private(set) var hostKeyType = ""
    public private(set) var hostKeyFingerprint = ""

    let session: OpaquePointer
    let socket: Int32
    private var closed = false
    var keepaliveOn = false

    /// Connects, verifies the host key and authenticates, all before one deadline that starts
    /// when the pacer gives the connection its turn. A TCP connect whose SYN went unanswered, or
    /// that failed with "no route to host", is tried once more with a fresh deadline. Throws `SSHError`.
    public static func connect(_ target: SSHTarget) throws -> SSHSession {
        try connect(target, dial: nil)
    }

    /// Gives the session a connected stream instead of a TCP connect to `target.host`: called with
    /// the connect deadline, it returns a socket the session then owns (a jump host's tunnel,
    /// JumpHosts.swift). Host key check and authentication are the same as for a direct connection.
    typealias Dialer = (_ deadline: Date) throws -> Int32

    static func connect(_ target: SSHTarget, dial: Dialer?) throws -> SSHSession {
        LibSSH2.ensureInitialised()
        guard let pacer = target.pacer else { return try setUp(target, dial: dial) }
        return try pacer.paced(timeout: target.connectTimeout) { try setUp(target, dial: dial) }
    }

    private static func setUp(_ target: SSHTarget, dial: Dialer?) throws -> SSHSession {
        var deadline = Date().addingTimeInterval(target.connectTimeout)
        let fd = try dial.map { try $0(deadline) } ?? connectTCP(target, deadline: &deadline)
        guard let raw = libssh2_session_init_ex(nil, nil, nil, nil) else {
            Glibc.close(fd)
            throw SSHError.handshake(host: target.host, reason: "libssh2 could not allocate a session")
        }
        let s = SSHSession(target: target, session: raw, socket: fd)
        s.connectDeadline = deadline
        do {
            try s.handshake()
            try s.verifyHostKey()
            try s.authenticate()
            s.startKeepalive()
        } catch {
            s.close()
            throw error
        }
        return s
    }

    /// The direct TCP connect, tried once more with a fresh deadline (which `deadline` then holds)
    /// when the first attempt's SYN went unanswered or found no route.
    private static func connectTCP(_ target: SSHTarget, deadline: inout Date) throws -> Int32 {
        do {
            return try TCPSocket.connect(host: target.host, port: target.port, deadline: deadline)
        } catch let first where first.retryable {
            deadline = Date().addingTimeInterval(target.connectTimeout)
            do {
                return try TCPSocket.connect(host: target.host, port: target.port, deadline: deadline)
            } catch {
                throw SSHError.connect(host: target.host, port: target.port, reason: describe(error, target, retried: first))
            }
        } catch {
            throw SSHError.connect(host: target.host, port: target.port, reason: describe(error, target, retried: nil))
        }
    }

    private static func describe(_ f: TCPSocket.Failure, _ target: SSHTarget, retried first: TCPSocket.Failure?) -> String {
        var text = f.reason == "timed out" ? "timed out after \(formatSeconds(target.connectTimeout))" : f.reason
        if first != nil { text += " (tried twice)" }
        return text
    }

    private init(target: SSHTarget, session: OpaquePointer, socket: Int32) {
        self.target = target
        self.session = session
        self.socket = socket
        libssh2_session_set_blocking(session, 0)
    }

    deinit { close() }

    public func close() {
        guard !closed else { return }
        closed = true
        let deadline = Date().addingTimeInterval(1)
        while libssh2_session_disconnect_ex(session, 11, "fleet done", "") == LibSSH2.eagain, Date() < deadline {
            try? waitSocket(until: deadline)
        }
        libssh2_session_free(session)
        Glibc.close(socket)
    }

    // MARK: - Non-blocking plumbing

    /// The session's last error message.
    var lastError: String {
        var msg: UnsafeMutablePointer<CChar>?
        var len: Int32 = 0
        let code = libssh2_session_last_error(session, &msg, &len, 0)
        let text = msg.map { String(cString: $0) } ?? ""
        return text.isEmpty ? "libssh2 error \(code)" : text
    }

    var lastErrno: Int32 { libssh2_session_last_errno(session) }

    /// Waits until the socket is ready in the direction libssh2 is blocked on, or the deadline (at
    /// most a second at a time). Returns false, without waiting, when the deadline has passed.
    @discardableResult
    func waitSocket(until deadline: Date?) throws -> Bool {
        if let deadline, Date() >= deadline { return false }
        keepaliveTick()
        let dirs = libssh2_session_block_directions(session)
        var events: Int16 = 0
        if dirs & LibSSH2.blockInbound != 0 { events |= Int16(POLLIN) }
        if dirs & LibSSH2.blockOutbound != 0 { events |= Int16(POLLOUT) }
        if events == 0 { events = Int16(POLLIN) }
        var pfd = pollfd(fd: socket, events: events, revents: 0)
        var ms: Int32 = 1000
        if let deadline {
            ms = Int32(max(0, min(1000, deadline.timeIntervalSinceNow * 1000)))
        }
        let rc = poll(&pfd, 1, ms)
        if rc < 0 && errno != EINTR {
            throw SSHError.disconnected(host: target.host, reason: String(cString: strerror(errno)))
        }
        if rc > 0 && pfd.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 {
            throw SSHError.disconnected(host: target.host, reason: socketErrorText)
        }
        return true
    }

    /// Repeats a libssh2 call while it answers EAGAIN, waiting on the socket in between.
    @discardableResult
    func retry(until deadline: Date?, _ call: () -> Int32) throws -> Int32 {
        while true {
            let rc = call()
            if rc != LibSSH2.eagain { return rc }
            guard try waitSocket(until: deadline) else { return LibSSH2.eagain }
        }
    }

    /// Set once TCP is connected: handshake and authentication share what is left of it.
    private var connectDeadline = Date.distantFuture

    private var timedOut: String { "connect_timeout (\(formatSeconds(target.connectTimeout))) passed" }

    // MARK: - Handshake and host key

    private func handshake() throws {
        // curve25519 first: cheap and what OpenSSH offers.
        _ = libssh2_session_method_pref(session, LibSSH2.methodKex,
            "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512")
        // Ask for a host key type that known_hosts holds for this host: libssh2 1.10 would
        // otherwise negotiate ECDSA before ed25519 and a recorded ed25519 key would look absent.
        let supported = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"]
        let known = try target.knownHostsStore.keyTypes(path: target.knownHosts, host: target.host, port: target.port)
            .filter { supported.contains($0) }
        let order = known + supported.filter { !known.contains($0) }
        _ = libssh2_session_method_pref(session, LibSSH2.methodHostKey, order.joined(separator: ","))

        let deadline = connectDeadline
        let rc = try retry(until: deadline) { libssh2_session_handshake(session, socket) }
        if rc == LibSSH2.eagain {
            throw SSHError.handshake(host: target.host, reason: timedOut)
        }
        if rc != 0 { throw SSHError.handshake(host: target.host, reason: lastError) }
    }

    private func verifyHostKey() throws {
        var len = 0
        var type: Int32 = 0
        guard let keyPtr = libssh2_session_hostkey(session, &len, &type), len > 0 else {
            throw SSHError.handshake(host: target.host, reason: "server sent no host key")
        }
        let blob = Data(bytes: keyPtr, count: len)
        hostKeyType = LibSSH2.keyTypeName(hostKeyType: type)
        hostKeyFingerprint = KnownHosts.fingerprint(keyBlob: blob)

        let verdict = try target.knownHostsStore.check(path: target.knownHosts, host: target.host, port: target.port,
                                                       keyType: hostKeyType, key: blob,
                                                       acceptNew: target.hostKeyCheck == .acceptNew)
        let name = KnownHosts.entryName(host: target.host, port: target.port)
        switch verdict {
        case .known:
            return
        case .revoked:
            throw SSHError.revokedHostKey(host: name, keyType: hostKeyType, fingerprint: hostKeyFingerprint,
                                          knownHosts: target.knownHosts)
        case .changed:
            throw SSHError.changedHostKey(host: name, keyType: hostKeyType, fingerprint: hostKeyFingerprint,
                                          knownHosts: target.knownHosts)
        case .unknown:
            throw SSHError.unknownHostKey(host: name, keyType: hostKeyType, fingerprint: hostKeyFingerprint,
                                          knownHosts: target.knownHosts)
        }
    }

    // MARK: - Authentication

    private func authenticate() throws {
        let user = target.user
        let creds = target.credentials
        var attempts: [String] = []

        if let file = creds.identityFile {
            let path = expandTilde(file)
            try KeyFile.checkUsable(path: path)
            if try authenticate(keyFile: path, passphrase: creds.passphrase, attempts: &attempts) { return }
        }
        if creds.useAgent, let sock = ProcessInfo.processInfo.environment["SSH_AUTH_SOCK"], !sock.isEmpty {
            if try authenticateWithAgent(socketPath: sock, attempts: &attempts) { return }
        }
        if creds.identityFile == nil {
            for name in ["id_ed25519", "id_ecdsa"] {
                let path = expandTilde("~/.ssh/\(name)")
                guard FileManager.default.fileExists(atPath: path) else { continue }
                if try authenticate(keyFile: path, passphrase: creds.passphrase, attempts: &attempts) { return }
            }
        }
        if attempts.isEmpty {
            attempts.append("no identity given, no ssh-agent (SSH_AUTH_SOCK) and no ~/.ssh/id_ed25519 or id_ecdsa")
        }
        throw SSHError.authentication(user: user, host: target.host, reason: attempts.joined(separator: "; "))
    }

    /// True on success; false (with a reason in `attempts`) when the server refused the key.
    private func authenticate(keyFile path: String, passphrase: String?, attempts: inout [String]) throws -> Bool {
        let user = target.user
        let deadline = connectDeadline
        let rc = try retry(until: deadline) {
            libssh2_userauth_publickey_fromfile_ex(session, user, UInt32(user.utf8.count), nil, path, passphrase)
        }
        switch rc {
        case 0:
            return true
        case LibSSH2.eagain:
            throw SSHError.handshake(host: target.host, reason: "authentication not done when \(timedOut)")
        case -16: // LIBSSH2_ERROR_FILE
            let why = passphrase == nil
                ? "cannot read key \(path): it may need a passphrase (set FLEET_SSH_PASSPHRASE or use ssh-agent)"
                : "cannot read key \(path): wrong passphrase or unreadable file"
            throw SSHError.authentication(user: user, host: target.host, reason: why)
        case -18, -19:
            attempts.append("the server refused key \(path) (is its public key in ~\(user)/.ssh/authorized_keys?)")
            return false
        default:
            attempts.append("key \(path): \(lastError)")
            return false
        }
    }

    /// Agent auth through fleet's own agent client, so every agent read and write ends by the
    /// connect deadline (libssh2's agent code blocks on the agent without one).
    private func authenticateWithAgent(socketPath: String, attempts: inout [String]) throws -> Bool {
        let deadline = connectDeadline
        let agent: AgentClient
        let keys: [Data]
        do {
            agent = try AgentClient.connect(path: socketPath, deadline: deadline)
            keys = try agent.identities()
        } catch {
            attempts.append("ssh-agent at SSH_AUTH_SOCK: \(error.reason)")
            return false
        }
        var tried = 0, skippedRSA = 0
        let user = target.user
        for blob in keys {
            if KeyFile.blobType(blob) == "ssh-rsa" { skippedRSA += 1; continue }
            tried += 1
            let signing = AgentSigning(agent: agent, blob: blob)
            var abstract: UnsafeMutableRawPointer? = Unmanaged.passUnretained(signing).toOpaque()
            let rc = try withExtendedLifetime(signing) {
                try retry(until: deadline) {
                    blob.withUnsafeBytes { key in
                        libssh2_userauth_publickey(session, user, key.bindMemory(to: UInt8.self).baseAddress, key.count,
                                                   AgentSigning.callback, &abstract)
                    }
                }
            }
            if rc == 0 { return true }
            if rc == LibSSH2.eagain {
                throw SSHError.handshake(host: target.host, reason: "authentication not done when \(timedOut)")
            }
            if let why = signing.failure {
                attempts.append("ssh-agent: \(why)")
                return false
            }
        }
        var why = "ssh-agent: the server accepted none of its \(tried) key(s)"
        if skippedRSA > 0 { why += "; \(skippedRSA) RSA key(s) skipped (\(KeyFile.rsaAdvice))" }
        attempts.append(why)
        return false
    }
}

func expandTilde(_ path: String) -> String {
    guard path.hasPrefix("~") else { return path }
    return (path as NSString).expandingTildeInPath
}

extension SSHSession {
    /// Shuts the socket down so a call blocked on it in another thread returns with an error.
    /// Thread-safe; the session is freed later by its owner.
    public func abort() {
        _ = Glibc.shutdown(socket, Int32(SHUT_RDWR))
    }
}
