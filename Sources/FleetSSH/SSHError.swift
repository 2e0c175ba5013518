import Foundation

/// Every failure of the SSH layer. Each case carries enough to tell the user what to do.
public enum SSHError: Error, CustomStringConvertible, Sendable {
    /// Name resolution or TCP connect failed or timed out.
    case connect(host: String, port: Int, reason: String)
    /// The SSH handshake (key exchange) failed.
    case handshake(host: String, reason: String)
    /// The host key is not in known_hosts and the policy is strict.
    case unknownHostKey(host: String, keyType: String, fingerprint: String, knownHosts: String)
    /// The host key differs from the one recorded in known_hosts.
    case changedHostKey(host: String, keyType: String, fingerprint: String, knownHosts: String)
    /// The host key is marked `@revoked` in known_hosts.
    case revokedHostKey(host: String, keyType: String, fingerprint: String, knownHosts: String)
    /// known_hosts could not be read or written.
    case knownHostsFile(path: String, reason: String)
    /// Authentication failed.
    case authentication(user: String, host: String, reason: String)
    /// A key file that libssh2 1.10 cannot use against current OpenSSH servers.
    case unsupportedKey(path: String, reason: String)
    /// A channel-level failure while running a command or moving a file.
    case channel(host: String, operation: String, reason: String)
    /// The connection went away in the middle of an operation.
    case disconnected(host: String, reason: String)

    public var description: String {
        switch self {
        case let .connect(host, port, reason):
            return "cannot connect to \(formatHostPort(host, port)): \(reason)"
        case let .handshake(host, reason):
            return "SSH handshake with \(host) failed: \(reason)"
        case let .unknownHostKey(host, keyType, fingerprint, knownHosts):
            return "host key for \(host) is not known (\(keyType) \(fingerprint)); "
                + "host_key_policy is strict and \(knownHosts) has no entry for it. "
                + "Verify the fingerprint out of band, then add it (ssh-keyscan) or run once with host_key_policy = \"accept-new\""
        case let .changedHostKey(host, keyType, fingerprint, knownHosts):
            return "HOST KEY FOR \(host) HAS CHANGED: the server offered \(keyType) \(fingerprint), which does not match \(knownHosts). "
                + "This may be a man-in-the-middle attack, or the host was reinstalled. Refusing to connect; "
                + "if the change is expected, remove the old entry (ssh-keygen -R \(host) -f \(knownHosts))"
        case let .revokedHostKey(host, keyType, fingerprint, knownHosts):
            return "HOST KEY FOR \(host) IS REVOKED: the server offered \(keyType) \(fingerprint), which \(knownHosts) marks @revoked. "
                + "Refusing to connect"
        case let .knownHostsFile(path, reason):
            return "known_hosts \(path): \(reason)"
        case let .authentication(user, host, reason):
            return "authentication as \(user) on \(host) failed: \(reason)"
        case let .unsupportedKey(path, reason):
            return "key \(path): \(reason)"
        case let .channel(host, operation, reason):
            return "\(operation) on \(host) failed: \(reason)"
        case let .disconnected(host, reason):
            return "connection to \(host) lost: \(reason)"
        }
    }

    /// True when the host could not be reached at all (as opposed to a refusal after reaching it).
    public var isUnreachable: Bool {
        switch self {
        case .connect, .handshake, .disconnected: return true
        default: return false
        }
    }
}

/// `[fd00::1]:22` for IPv6 literals, `host:22` otherwise.
public func formatHostPort(_ host: String, _ port: Int) -> String {
    host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
}
