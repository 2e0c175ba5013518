import FleetCore
import FleetSSH
import Foundation
import Logging

/// The runner's `Connection` over a libssh2 session, with `become = "sudo"` applied.
public final class SSHConnection: Connection, @unchecked Sendable {
    public let session: SSHSession
    public let hostName: String
    public let become: Become
    /// `sudo -n`: never prompts (a password would have to travel somewhere); sudo must be passwordless.
    static let sudo = "sudo -n "

    /// The deadline of an operation given none (the host's `command_timeout`): nothing waits forever.
    public let defaultTimeout: Double

    public init(session: SSHSession, hostName: String, become: Become, defaultTimeout: Double = 600) {
        self.session = session
        self.hostName = hostName
        self.become = become
        self.defaultTimeout = defaultTimeout
    }

    func wrap(_ command: String) -> String {
        become == .sudo ? "\(Self.sudo)-- sh -c \(FleetCore.shellQuote(command))" : command
    }

    static func translate(_ error: Error) -> Error {
        if let e = error as? SSHError { return ConnectionError(e.description, unreachable: e.isUnreachable) }
        if let e = error as? JumpError { return ConnectionError(e.description, unreachable: e.isUnreachable) }
        return error
    }

    public func run(_ command: String, stdin: Data?, timeout: Double?) throws -> CommandResult {
        // Commands never carry a secret (those travel on stdin), so they can be logged as they are.
        logger.debug("\(hostName) $ \(command)", metadata: stdin.map { ["stdin_bytes": "\($0.count)"] })
        do {
            let r = try session.exec(wrap(command), stdin: stdin, timeout: timeout ?? defaultTimeout,
                                     killPrefix: become == .sudo ? Self.sudo : "")
            if become == .sudo, r.exitCode == 1, r.stderrText.contains("sudo: a password is required") {
                throw ConnectionError("sudo on \(hostName) asks for a password: fleet needs passwordless sudo (NOPASSWD) for \(session.target.user)", unreachable: false)
            }
            let result = CommandResult(stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode, exitSignal: r.exitSignal,
                                       timedOut: r.timedOut, duration: r.duration,
                                       stdoutBytes: r.stdoutBytes, stderrBytes: r.stderrBytes)
            logger.debug("\(hostName) \(result.statusText) in \(Int(r.duration * 1000)) ms")
            return result
        } catch {
            throw Self.translate(error)
        }
    }

    public func upload(_ data: Data, to path: String, mode: Int, timeout: Double?) throws {
        do {
            try session.upload(data, to: path, mode: mode, timeout: timeout ?? defaultTimeout, wrap: wrap)
        } catch {
            throw Self.translate(error)
        }
    }

    /// Up to this size, an upload that may find the file as wanted sends the bytes at once and
    /// lets the host compare (one round trip); a larger one asks first, so its bytes travel only
    /// when needed.
    public static let compareOnHostUpTo = 64 * 1024

    public func uploadIfChanged(_ data: Data, to path: String, mode: Int, timeout: Double?) throws -> Bool {
        guard data.count <= Self.compareOnHostUpTo else {
            return try checkThenUpload(data, to: path, mode: mode, timeout: timeout)
        }
        do {
            return try session.upload(data, to: path, mode: mode, timeout: timeout ?? defaultTimeout, wrap: wrap,
                                      unlessSame: true)
        } catch {
            throw Self.translate(error)
        }
    }

    public func timeNoOpCommand() throws -> Double {
        let start = Date()
        _ = try run("true", stdin: nil, timeout: 10)
        return Date().timeIntervalSince(start)
    }

    /// Shuts the socket down (safe from any thread, and more than once): a blocked call on it returns.
    public func close() {
        session.abort()
    }
}

/// Opens SSH connections as the inventory says: address, port, user, key, known_hosts, policy.
public struct SSHConnector: Connector {
    public let passphrase: String?

    public init() {
        passphrase = ProcessInfo.processInfo.environment["FLEET_SSH_PASSPHRASE"]
    }

    public func target(for host: FleetCore.Host) -> SSHTarget {
        SSHTarget(host: host.address, port: host.ssh.port, user: host.ssh.user,
                  credentials: SSHCredentials(identityFile: host.ssh.identity, passphrase: passphrase),
                  knownHosts: host.ssh.knownHosts,
                  hostKeyCheck: host.ssh.hostKeyPolicy == .acceptNew ? .acceptNew : .strict,
                  connectTimeout: host.ssh.connectTimeout, keepaliveInterval: host.ssh.keepaliveInterval)
    }

    /// The jump hosts on the way to `host`, in order, each with its own user, key, known_hosts and policy.
    public func hopTargets(for host: FleetCore.Host) -> [SSHTarget] {
        host.ssh.jumpHops.map { hop in
            SSHTarget(host: hop.host, port: hop.port, user: hop.user,
                      credentials: SSHCredentials(identityFile: hop.identity, passphrase: passphrase),
                      knownHosts: hop.knownHosts, hostKeyCheck: hop.hostKeyPolicy == .acceptNew ? .acceptNew : .strict,
                      connectTimeout: host.ssh.connectTimeout, keepaliveInterval: host.ssh.keepaliveInterval)
        }
    }

    public func connect(to host: FleetCore.Host) throws -> Connection {
        let start = Date()
        do {
            let s = try SSHSession.connect(target(for: host), through: hopTargets(for: host))
            let via = host.ssh.jump.isEmpty ? "" : " via \(host.ssh.jumpHops.map(\.description).joined(separator: ", "))"
            logger.info("\(host.name): connected to \(formatHostPort(host.address, host.ssh.port))\(via) as \(host.ssh.user) in \(Int(Date().timeIntervalSince(start) * 1000)) ms, host key \(s.hostKeyType) \(s.hostKeyFingerprint)")
            return SSHConnection(session: s, hostName: host.name, become: host.ssh.become,
                                 defaultTimeout: host.ssh.commandTimeout)
        } catch {
            logger.info("\(host.name): \(error)")
            throw SSHConnection.translate(error)
        }
    }
}

/// Set the level with `FLEET_LOG=debug` (every command and its exit) or `FLEET_LOG=info` (connections).
let logger = Logger(label: "fleet.ssh")
