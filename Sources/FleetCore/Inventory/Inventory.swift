import Foundation

/// A host's part in the fleet: a `server` (the control plane; playbook targets `servers`,
/// `first-server`, `other-servers`) or an `agent` (a worker; target `agents`).
public enum HostRole: String, Sendable, Codable, CaseIterable {
    case server, agent
}

/// How an unknown SSH host key is treated: `strict` refuses it, `accept-new` records it on first contact.
/// A changed key is refused either way.
public enum HostKeyPolicy: String, Sendable, Codable, CaseIterable {
    case strict
    case acceptNew = "accept-new"
}

/// How commands gain root: directly (`none`, the SSH user is root) or through `sudo` without a password.
public enum Become: String, Sendable, Codable, CaseIterable {
    case none, sudo
}

/// SSH connection settings: the `[ssh]` defaults, or a host's effective settings after its own overrides.
public struct SSHSettings: Sendable, Hashable {
    public var user: String
    public var port: Int
    /// An absolute private key path; nil means: try ssh-agent, then `~/.ssh/id_ed25519`, then `~/.ssh/id_ecdsa`.
    public var identity: String?
    /// An absolute path to the known_hosts file.
    public var knownHosts: String
    public var hostKeyPolicy: HostKeyPolicy
    /// Seconds allowed for TCP connect plus SSH handshake.
    public var connectTimeout: Double
    /// Seconds allowed for one remote command.
    public var commandTimeout: Double
    /// Seconds between SSH keepalives; a silent host is noticed within about three of them.
    public var keepaliveInterval: Double = 10
    /// How many hosts are worked on at once.
    public var forks: Int
    public var become: Become
    /// Where each connection setting came from, by inventory key (`address`, `user`, `port`, `identity`,
    /// `known_hosts`, `host_key_policy`, `connect_timeout`, `jump`): `[ssh]`, `[[hosts]]`, or
    /// `ssh config FILE:LINE`; a key not listed has fleet's default. Not part of the settings' value:
    /// two settings that differ only in where they came from are equal.
    public var origins = SettingOrigins()
    /// Jump hosts on the way, in order (empty: a direct connection), as written; `jumpHops` resolves them.
    public var jump: [JumpSpec] = []

    /// The jump hosts with this host's settings filling what each hop leaves unset.
    public var jumpHops: [JumpHop] { jump.map { $0.resolved(for: self) } }

    /// The default known_hosts file, with `~` expanded.
    public static var defaultKnownHosts: String { InventoryPaths.expandHome("~/.ssh/known_hosts") ?? "/root/.ssh/known_hosts" }

    public init(
        user: String = "root",
        port: Int = 22,
        identity: String? = nil,
        knownHosts: String = SSHSettings.defaultKnownHosts,
        hostKeyPolicy: HostKeyPolicy = .strict,
        connectTimeout: Double = 10,
        commandTimeout: Double = 600,
        forks: Int = 50,
        become: Become = .none
    ) {
        self.user = user
        self.port = port
        self.identity = identity
        self.knownHosts = knownHosts
        self.hostKeyPolicy = hostKeyPolicy
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.forks = forks
        self.become = become
    }
}

/// Where each of a host's connection settings came from (see ``SSHSettings/origins``). Equal to any
/// other: it describes a value, it is not part of it.
public struct SettingOrigins: Sendable, Hashable {
    public var map: [String: String] = [:]
    public init() {}
    public subscript(key: String) -> String? {
        get { map[key] }
        set { map[key] = newValue }
    }
    public static func == (_: SettingOrigins, _: SettingOrigins) -> Bool { true }
    public func hash(into hasher: inout Hasher) {}
}

/// One `[[hosts]]` entry, with its SSH settings already merged with `[ssh]`.
public struct Host: Sendable, Hashable {
    /// The host's name (a module may give it more meaning: FleetSteps makes it the Kubernetes node name).
    public var name: String
    /// Where SSH connects: an IPv6 literal (without brackets), an IPv4 literal or a DNS name.
    public var address: String
    public var role: HostRole
    /// Effective SSH settings: `[ssh]` with this host's `user`, `port`, `identity` and `become` applied.
    public var ssh: SSHSettings
    /// What the modules' host keys yielded for this host (see ``InventoryHostKeys``).
    public var values: SectionValues

    public init(name: String, address: String, role: HostRole, ssh: SSHSettings = SSHSettings(),
                values: SectionValues = SectionValues()) {
        self.name = name
        self.address = address
        self.role = role
        self.ssh = ssh
        self.values = values
    }

    /// The address parsed as IPv6, when it is an IPv6 literal.
    public var ipv6Address: IPv6Address? { IPv6Address(address) }
}

/// A loaded, validated inventory: the engine's hosts and `[ssh]`, and what the modules' sections yielded.
public struct Inventory: Sendable {
    /// The inventory file, absolute.
    public let path: String
    /// The `[ssh]` defaults (each host's effective settings are in `Host.ssh`).
    public var ssh: SSHSettings
    /// Hosts in file order.
    public let hosts: [Host]
    /// What the modules' sections yielded (see ``InventorySection``).
    public var sections: SectionValues
    /// Things that work but are probably not what was meant.
    public var warnings: [InventoryWarning]
    /// The schema it was read with: its template variables are this inventory's.
    public let schema: InventorySchema

    private let firstServerIndex: Int

    /// Builds an inventory from values. Throws ``InventoryErrors`` when `hosts` has no server; the other rules are
    /// checked only by ``load(path:schema:)`` and ``parse(toml:path:schema:)``.
    public init(
        path: String, ssh: SSHSettings = SSHSettings(), hosts: [Host], sections: SectionValues = SectionValues(),
        warnings: [InventoryWarning] = [], schema: InventorySchema = .engine
    ) throws {
        guard let index = hosts.firstIndex(where: { $0.role == .server }) else {
            throw InventoryErrors(errors: [
                InventoryError(file: path, key: "hosts", message: "at least one host needs role = \"server\""),
            ])
        }
        self.path = path
        self.ssh = ssh
        self.hosts = hosts
        self.sections = sections
        self.warnings = warnings
        self.schema = schema
        self.firstServerIndex = index
    }

    public var servers: [Host] { hosts.filter { $0.role == .server } }
    public var agents: [Host] { hosts.filter { $0.role == .agent } }
    /// The first host with role server in file order.
    public var firstServer: Host { hosts[firstServerIndex] }

    public func host(named name: String) -> Host? { hosts.first { $0.name == name } }

    /// The directory holding the inventory file.
    public var directory: String { (path as NSString).deletingLastPathComponent }
}
