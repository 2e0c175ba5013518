import Foundation

/// What a host runs: a K3s server (control plane and etcd member) or an agent (worker).
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

/// Where K3s comes from: the install script downloading from GitHub, or files copied from the control machine.
public enum K3sSource: String, Sendable, Codable, CaseIterable {
    case script, airgap
}

/// The `[cluster]` table: settings shared by every node.
public struct ClusterConfig: Sendable, Hashable {
    /// The default pod range K3s uses on an IPv6-only node.
    public static let defaultClusterCIDR = IPv6CIDR(masking: IPv6Address(high: 0xFD00_0042_0000_0000, low: 0), prefixLength: 56)
    /// The default service range K3s uses on an IPv6-only node.
    public static let defaultServiceCIDR = IPv6CIDR(masking: IPv6Address(high: 0xFD00_0043_0000_0000, low: 0), prefixLength: 112)

    /// A short name for the cluster (state directory, kubeconfig context). Defaults to the inventory file's name.
    public var name: String
    /// Pod addresses; each node gets a /64 of it.
    public var clusterCIDR: IPv6CIDR
    /// Service (ClusterIP) addresses.
    public var serviceCIDR: IPv6CIDR
    /// The CoreDNS service address; nil means the K3s default, see ``effectiveClusterDNS``.
    public var clusterDNS: IPv6Address?
    /// Masquerade pod traffic leaving the cluster (needed when pod addresses are ULA).
    public var flannelIPv6Masq: Bool
    /// Packaged components K3s should not deploy (`traefik`, `servicelb`, …).
    public var disable: [String]
    /// The exact K3s release, e.g. `v1.31.5+k3s1`.
    public var k3sVersion: String
    /// Extra names and addresses for the API server certificate.
    public var tlsSAN: [String]
    /// Where agents register: a server's node_ip, or a DNS name or floating IPv6 address in front of
    /// the servers (listed in `tlsSAN`). Nil: the first server's node_ip.
    public var registrationAddress: String?

    public init(
        name: String,
        clusterCIDR: IPv6CIDR = ClusterConfig.defaultClusterCIDR,
        serviceCIDR: IPv6CIDR = ClusterConfig.defaultServiceCIDR,
        clusterDNS: IPv6Address? = nil,
        flannelIPv6Masq: Bool = true,
        disable: [String] = [],
        k3sVersion: String,
        tlsSAN: [String] = [],
        registrationAddress: String? = nil
    ) {
        self.name = name
        self.clusterCIDR = clusterCIDR
        self.serviceCIDR = serviceCIDR
        self.clusterDNS = clusterDNS
        self.flannelIPv6Masq = flannelIPv6Masq
        self.disable = disable
        self.k3sVersion = k3sVersion
        self.tlsSAN = tlsSAN
        self.registrationAddress = registrationAddress
    }

    /// `clusterDNS`, or the 10th address of the service range (`fd00:43::a` for the default range), as K3s does.
    public var effectiveClusterDNS: IPv6Address {
        if let clusterDNS { return clusterDNS }
        return serviceCIDR.address.adding(10) ?? serviceCIDR.address
    }
}

/// The `[k3s]` table: how K3s gets onto the nodes.
public struct K3sConfig: Sendable, Hashable {
    public var source: K3sSource
    /// For `airgap`: an absolute directory holding `k3s`, `install.sh` and ideally `k3s-airgap-images-<arch>.tar.zst`.
    public var airgapDir: String?

    public init(source: K3sSource = .script, airgapDir: String? = nil) {
        self.source = source
        self.airgapDir = airgapDir
    }
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
    /// How many hosts are worked on at once.
    public var forks: Int
    public var become: Become

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

/// The `[preflight]` table.
public struct PreflightConfig: Sendable, Hashable {
    /// An IPv6 address every node must reach (e.g. a router or a public resolver); nil skips the probe.
    public var probe: IPv6Address?
    /// Check that nodes can reach the internet over IPv6 (GitHub, registries).
    public var checkInternet: Bool

    public init(probe: IPv6Address? = nil, checkInternet: Bool = true) {
        self.probe = probe
        self.checkInternet = checkInternet
    }
}

/// One `[[hosts]]` entry, with its SSH settings already merged with `[ssh]`.
public struct Host: Sendable, Hashable {
    /// The Kubernetes node name.
    public var name: String
    /// Where SSH connects: an IPv6 literal (without brackets), an IPv4 literal or a DNS name.
    public var address: String
    public var role: HostRole
    /// The node's IPv6 address inside the cluster (K3s `node-ip`).
    public var nodeIP: IPv6Address
    /// The interface that must keep accepting Router Advertisements once forwarding is on.
    public var raInterface: String?
    /// Effective SSH settings: `[ssh]` with this host's `user`, `port`, `identity` and `become` applied.
    public var ssh: SSHSettings

    public init(
        name: String, address: String, role: HostRole, nodeIP: IPv6Address, raInterface: String? = nil,
        ssh: SSHSettings = SSHSettings()
    ) {
        self.name = name
        self.address = address
        self.role = role
        self.nodeIP = nodeIP
        self.raInterface = raInterface
        self.ssh = ssh
    }

    /// The address parsed as IPv6, when it is an IPv6 literal.
    public var ipv6Address: IPv6Address? { IPv6Address(address) }
}

/// A loaded, validated inventory.
public struct Inventory: Sendable {
    /// The inventory file, absolute.
    public let path: String
    public var cluster: ClusterConfig
    public var k3s: K3sConfig
    /// The `[ssh]` defaults (each host's effective settings are in `Host.ssh`).
    public var ssh: SSHSettings
    public var preflight: PreflightConfig
    /// Hosts in file order.
    public let hosts: [Host]
    /// Things that work but are probably not what was meant.
    public var warnings: [InventoryWarning]

    private let firstServerIndex: Int

    /// Builds an inventory from values. Throws ``InventoryErrors`` when `hosts` has no server; the other rules are
    /// checked only by ``load(path:)`` and ``parse(toml:path:)``.
    public init(
        path: String, cluster: ClusterConfig, k3s: K3sConfig = K3sConfig(), ssh: SSHSettings = SSHSettings(),
        preflight: PreflightConfig = PreflightConfig(), hosts: [Host], warnings: [InventoryWarning] = []
    ) throws {
        guard let index = hosts.firstIndex(where: { $0.role == .server }) else {
            throw InventoryErrors(errors: [
                InventoryError(file: path, key: "hosts", message: "at least one host needs role = \"server\""),
            ])
        }
        self.path = path
        self.cluster = cluster
        self.k3s = k3s
        self.ssh = ssh
        self.preflight = preflight
        self.hosts = hosts
        self.warnings = warnings
        self.firstServerIndex = index
    }

    public var servers: [Host] { hosts.filter { $0.role == .server } }
    public var agents: [Host] { hosts.filter { $0.role == .agent } }
    /// The first host with role server in file order: it initialises the cluster, the others join it.
    public var firstServer: Host { hosts[firstServerIndex] }

    /// The URL agents register with: `[cluster] registration_address`, else the first server
    /// (`https://[node_ip]:6443`; IPv6 literals are bracketed).
    public var registrationURL: String {
        guard let address = cluster.registrationAddress else { return serverURL(firstServer.nodeIP) }
        return IPv6Address(address).map { serverURL($0) } ?? "https://\(address):6443"
    }

    public func host(named name: String) -> Host? { hosts.first { $0.name == name } }

    /// The directory holding the inventory file.
    public var directory: String { (path as NSString).deletingLastPathComponent }
}
