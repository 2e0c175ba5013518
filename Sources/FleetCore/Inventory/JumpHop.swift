import Foundation

/// One jump host on the way to a host (OpenSSH's ProxyJump hop), with every setting resolved:
/// what the hop does not say is the host's own `user`, `identity`, `known_hosts` and
/// `host_key_policy`; the port is 22.
public struct JumpHop: Sendable, Hashable {
    public var user: String
    /// An address literal (IPv6 without brackets) or a DNS name.
    public var host: String
    public var port: Int
    public var identity: String?
    public var knownHosts: String
    public var hostKeyPolicy: HostKeyPolicy

    public init(user: String, host: String, port: Int = 22, identity: String? = nil,
                knownHosts: String = SSHSettings.defaultKnownHosts, hostKeyPolicy: HostKeyPolicy = .strict) {
        self.user = user
        self.host = host
        self.port = port
        self.identity = identity
        self.knownHosts = knownHosts
        self.hostKeyPolicy = hostKeyPolicy
    }

    /// `user@[2001:db8::1]:22`.
    public var description: String {
        "\(user)@\(host.contains(":") ? "[\(host)]" : host):\(port)"
    }
}

/// A hop as written in the inventory (or an ssh config file): what it says, the rest left to the host.
public struct JumpSpec: Sendable, Hashable {
    public var user: String?
    public var host: String
    public var port: Int?
    public var identity: String?
    public var knownHosts: String?
    public var hostKeyPolicy: HostKeyPolicy?

    public init(user: String? = nil, host: String, port: Int? = nil, identity: String? = nil,
                knownHosts: String? = nil, hostKeyPolicy: HostKeyPolicy? = nil) {
        self.user = user
        self.host = host
        self.port = port
        self.identity = identity
        self.knownHosts = knownHosts
        self.hostKeyPolicy = hostKeyPolicy
    }

    /// The hop with the host's settings filling what it leaves unset.
    public func resolved(for ssh: SSHSettings) -> JumpHop {
        JumpHop(user: user ?? ssh.user, host: host, port: port ?? 22, identity: identity ?? ssh.identity,
                knownHosts: knownHosts ?? ssh.knownHosts, hostKeyPolicy: hostKeyPolicy ?? ssh.hostKeyPolicy)
    }

    /// Parses `[user@]host[:port]`: `user@bastion.example:2222`, `user@[2001:db8::1]:2222`,
    /// `[2001:db8::1]`, or a bare IPv6 literal (no port then). Returns the problem as text.
    public static func parse(_ text: String) -> Result<JumpSpec, JumpSpecProblem> {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        guard !rest.isEmpty else { return .failure(JumpSpecProblem("is empty: write [user@]host[:port]")) }
        var user: String?
        if let at = rest.lastIndex(of: "@") {
            let name = String(rest[..<at])
            if let problem = InventorySyntax.userNameProblem(name) {
                return .failure(JumpSpecProblem("user \(InventorySyntax.tomlQuoted(name)) \(problem)"))
            }
            user = name
            rest = rest[rest.index(after: at)...]
        }
        var host: String
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                return .failure(JumpSpecProblem("has an unbalanced '['"))
            }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    return .failure(JumpSpecProblem("has \"\(after)\" after ']': write [address]:port"))
                }
                portText = after.dropFirst()
            }
            guard IPv6Address(host) != nil else {
                return .failure(JumpSpecProblem("brackets are only for IPv6 addresses, and \"\(host)\" is not one"))
            }
        } else if rest.filter({ $0 == ":" }).count > 1 {
            // A bare IPv6 literal: no port can follow without brackets.
            host = String(rest)
        } else if let colon = rest.firstIndex(of: ":") {
            host = String(rest[..<colon])
            portText = rest[rest.index(after: colon)...]
        } else {
            host = String(rest)
        }
        var port: Int?
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else {
                return .failure(JumpSpecProblem("port \"\(portText)\" is not a number from 1 to 65535"))
            }
            port = p
        }
        if case .failure(let problem) = InventorySyntax.classifyAddress(host) {
            return .failure(JumpSpecProblem("host \"\(host)\" \(problem.reason)"))
        }
        return .success(JumpSpec(user: user, host: host, port: port))
    }

    /// OpenSSH's ProxyJump list: hops separated by commas; `none` is no hop.
    public static func parseList(_ text: String) -> Result<[JumpSpec], JumpSpecProblem> {
        if text.trimmingCharacters(in: .whitespaces).lowercased() == "none" { return .success([]) }
        var hops: [JumpSpec] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            switch parse(String(part)) {
            case .success(let hop): hops.append(hop)
            case .failure(let problem): return .failure(problem)
            }
        }
        return .success(hops)
    }
}

public struct JumpSpecProblem: Error, Sendable, Equatable {
    public var reason: String
    init(_ reason: String) { self.reason = reason }
}
