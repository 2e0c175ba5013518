import FleetCore
import Foundation

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
    /// The exact K3s release, e.g. `v1.31.5+k3s1` (a valid ``K3sVersion`` once loaded).
    public var k3sVersion: String
    /// Extra names and addresses for the API server certificate.
    public var tlsSAN: [String]
    /// Where agents register: a server's node_ip, or a DNS name or floating IPv6 address in front of
    /// the servers (listed in `tlsSAN`). Nil: the first server's node_ip.
    public var registrationAddress: String?
    /// The pod network (`flannel`, `none`, `cilium`, `calico`); fixed at creation.
    public var cni: CNI
    /// K3s's embedded registry mirror (Spegel): `embedded-registry: true` on every server.
    public var embeddedRegistry: Bool

    public init(
        name: String,
        clusterCIDR: IPv6CIDR = ClusterConfig.defaultClusterCIDR,
        serviceCIDR: IPv6CIDR = ClusterConfig.defaultServiceCIDR,
        clusterDNS: IPv6Address? = nil,
        flannelIPv6Masq: Bool = true,
        disable: [String] = [],
        k3sVersion: String,
        tlsSAN: [String] = [],
        registrationAddress: String? = nil,
        cni: CNI = .flannel,
        embeddedRegistry: Bool = false
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
        self.cni = cni
        self.embeddedRegistry = embeddedRegistry
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

/// Where K3s comes from: the install script downloading from GitHub, or files copied from the control machine.
public enum K3sSource: String, Sendable, Codable, CaseIterable {
    case script, airgap
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

/// A host's K3s keys: `node_ip` and `ra_interface`.
public struct NodeSettings: Sendable, Hashable {
    /// The node's IPv6 address inside the cluster (K3s `node-ip`).
    public var nodeIP: IPv6Address
    /// The interface that must keep accepting Router Advertisements once forwarding is on.
    public var raInterface: String?

    public init(nodeIP: IPv6Address, raInterface: String? = nil) {
        self.nodeIP = nodeIP
        self.raInterface = raInterface
    }
}
