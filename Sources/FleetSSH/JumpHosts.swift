import CLibSSH2
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reaching a host through one or more jump hosts (OpenSSH's ProxyJump), with libssh2 1.10,
/// which has no jump API of its own.
///
/// The target's session is an ordinary `SSHSession` whose socket is one end of a local
/// `socketpair(AF_UNIX)`; the other end is pumped to and from a `direct-tcpip` channel opened on
/// the last hop's session (see `JumpPump`). Each hop is itself a session, so its host key is
/// verified under its own name and port, in its own policy, and a second hop runs over a channel
/// of the first. Every target behind the same chain of hops shares one session per hop: sshd's
/// default `MaxStartups 10:30:100` drops logins once ten are pending, so a session per target
/// would lose hosts when fifty are reached at once.
extension SSHSession {
    /// Connects to `target` through `hops` (in order: the first is dialled directly, each next
    /// one through the one before, the target through the last). No hops: a direct connection.
    /// Throws `SSHError` for the target itself and `JumpError` for a hop or its tunnel.
    public static func connect(_ target: SSHTarget, through hops: [SSHTarget],
                               pool: JumpPool = .shared) throws -> SSHSession {
        guard !hops.isEmpty else { return try connect(target) }
        // The hops are set up before the target's turn at the pacer: a target holding a slot
        // while it waits for its bastion could starve the bastion of one.
        let first = try pool.pump(for: hops)
        return try connect(target, dial: { deadline in
            try pool.tunnel(through: hops, first: first, to: target.host, port: target.port, deadline: deadline)
        })
    }
}

/// A failure on the way to a host behind jump hosts. It names the hop and says what went wrong.
public struct JumpError: Error, CustomStringConvertible, Sendable {
    /// `jump host root@[2001:db8::1]:22`.
    public var hop: String
    /// `[2001:db8::5]:22`: where the hop was asked to connect, or nil for a hop's own failure.
    public var destination: String?
    public var reason: String
    /// The host could not be reached (as opposed to a refusal: a changed host key, forwarding disabled).
    public var isUnreachable: Bool

    public var description: String {
        if let destination { return "\(hop) could not open a connection to \(destination): \(reason)" }
        return "\(hop): \(reason)"
    }

    /// How a hop is named in messages.
    static func name(_ hop: SSHTarget, index: Int, of count: Int) -> String {
        let position = count > 1 ? " (hop \(index + 1) of \(count))" : ""
        return "jump host \(hop.user)@\(formatHostPort(hop.host, hop.port))\(position)"
    }
}

/// The shared sessions to jump hosts: one per chain of hops (the same hosts, ports, users, keys,
/// known_hosts and policies), set up on first use, replaced when it dies, kept until the process ends.
public final class JumpPool: @unchecked Sendable {
    public static let shared = JumpPool()

    private let cond = NSCondition()
    private var pumps: [String: JumpPump] = [:]
    private var connecting: Set<String> = []
    /// The failure of the last attempt per chain and when it ended: callers that waited for that
    /// attempt get it too instead of each trying again.
    private var failures: [String: (error: JumpError, at: Date)] = [:]

    public init() {}

    static func key(_ hops: [SSHTarget]) -> String {
        hops.map { h in
            [h.user, h.host, String(h.port), h.credentials.identityFile ?? "", h.knownHosts, h.hostKeyCheck.rawValue]
                .joined(separator: "\u{1}")
        }.joined(separator: "\u{2}")
    }

    /// The pump of the chain's last hop, connecting the chain (each earlier hop through its own
    /// pump) when there is none that takes new tunnels.
    func pump(for hops: [SSHTarget]) throws -> JumpPump {
        let key = Self.key(hops)
        let asked = Date()
        cond.lock()
        while true {
            if let p = pumps[key], p.acceptsTunnels { cond.unlock(); return p }
            if let f = failures[key], f.at >= asked { cond.unlock(); throw f.error }
            if !connecting.contains(key) { break }
            cond.wait()
        }
        connecting.insert(key)
        cond.unlock()

        let result: Result<JumpPump, JumpError>
        do {
            result = .success(try connectLast(of: hops))
        } catch let e as JumpError {
            result = .failure(e)
        } catch {
            result = .failure(JumpError(hop: JumpError.name(hops[hops.count - 1], index: hops.count - 1, of: hops.count),
                                        reason: "\(error)", isUnreachable: true))
        }
        cond.lock()
        connecting.remove(key)
        switch result {
        case .success(let p): pumps[key] = p; failures[key] = nil
        case .failure(let e): failures[key] = (e, Date())
        }
        cond.broadcast()
        cond.unlock()
        return try result.get()
    }

    private func connectLast(of hops: [SSHTarget]) throws -> JumpPump {
        let index = hops.count - 1
        let name = JumpError.name(hops[index], index: index, of: hops.count)
        var hop = hops[index]
        // Hops are few and shared: they skip the pacer, so targets waiting in it never hold them up.
        hop.pacer = nil
        do {
            let session: SSHSession
            if index == 0 {
                // One TCP attempt within connect_timeout (a direct connection tries a silent host
                // twice): a dead jump host makes all its targets unreachable after connect_timeout.
                session = try SSHSession.connect(hop, dial: { deadline in
                    do {
                        return try TCPSocket.connect(host: hop.host, port: hop.port, deadline: deadline)
                    } catch let error as TCPSocket.Failure {
                        let why = error.reason == "timed out" ? "timed out after \(formatSeconds(hop.connectTimeout))" : error.reason
                        throw SSHError.connect(host: hop.host, port: hop.port, reason: why)
                    }
                })
            } else {
                let earlier = Array(hops[..<index])
                let before = try pump(for: earlier)
                session = try SSHSession.connect(hop, dial: { deadline in
                    try self.tunnel(through: earlier, first: before, to: hop.host, port: hop.port, deadline: deadline)
                })
            }
            return JumpPump(session: session, name: name)
        } catch let e as SSHError {
            throw JumpError(hop: name, reason: e.description, isUnreachable: e.isUnreachable)
        }
    }

    /// A socket connected, through the chain's last hop, to `host`:`port`. `first` is the pump to try
    /// first; when it stops taking tunnels (an earlier open to a silent host is stuck on it) the
    /// chain gets a fresh session and the open is tried there, within the same deadline.
    func tunnel(through hops: [SSHTarget], first: JumpPump, to host: String, port: Int, deadline: Date) throws -> Int32 {
        var pump = first
        while true {
            if let fd = try pump.open(host: host, port: port, deadline: deadline) { return fd }
            pump = try self.pump(for: hops)
        }
    }
}
