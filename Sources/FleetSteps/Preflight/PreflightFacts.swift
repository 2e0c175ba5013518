import FleetCore
import Foundation

/// What preflight reads from a host, in one round trip.
public struct PreflightFacts: Sendable, Equatable {
    /// The `ip` command (iproute2) is installed: without it, addresses and routes are unknown.
    public var ipTool: Bool
    /// `/proc/net/if_inet6` exists: the kernel has IPv6 at all.
    public var ipv6Kernel: Bool
    /// `disable_ipv6` per `conf/` entry: `all`, `default` and each interface.
    public var disableIPv6: [String: String]
    public var addresses: [InterfaceAddress]
    public var defaultRoute: IPOutput.DefaultRoute?
    public var resolvConf: String
    /// `/run/systemd/resolve/resolv.conf`, which K3s uses when resolv.conf names only loopback servers.
    public var resolvedConf: String?
    public var hosts: String
    /// Exit status of `ping -6 -c1 -W2 <probe>`; nil when no probe is set.
    public var probeStatus: Int?
    /// Names looked up for the internet check → their IPv6 addresses (IPv4-mapped ones dropped);
    /// nil when the check is off.
    public var lookups: [String: [IPv6Address]]?

    public init(ipTool: Bool = true, ipv6Kernel: Bool = true, disableIPv6: [String: String] = [:], addresses: [InterfaceAddress] = [],
                defaultRoute: IPOutput.DefaultRoute? = nil, resolvConf: String = "", resolvedConf: String? = nil,
                hosts: String = "", probeStatus: Int? = nil, lookups: [String: [IPv6Address]]? = nil) {
        self.ipTool = ipTool
        self.ipv6Kernel = ipv6Kernel
        self.disableIPv6 = disableIPv6
        self.addresses = addresses
        self.defaultRoute = defaultRoute
        self.resolvConf = resolvConf
        self.resolvedConf = resolvedConf
        self.hosts = hosts
        self.probeStatus = probeStatus
        self.lookups = lookups
    }
}

/// What preflight wants of one host.
public struct PreflightExpectation: Sendable, Encodable {
    public var nodeIP: IPv6Address
    public var probe: IPv6Address?
    public var checkInternet: Bool
    public var source: K3sSource
    /// The air-gap directory has an images tarball: nodes need no registry for K3s's own images.
    public var imagesBundled: Bool
    /// Dynamic addresses (SLAAC/DHCPv6 leases) are warnings instead of failures.
    public var allowDynamicAddress: Bool
    /// Where the cluster pulls images and charts from (checked for AAAA records with the internet check).
    public var imageHosts: [ImageHost] = []
    /// Servers: the inventory's `[cluster] cni`, compared with the installed one (nil on agents).
    public var cni: CNI?

    public init(nodeIP: IPv6Address, probe: IPv6Address? = nil, checkInternet: Bool = false,
                source: K3sSource = .airgap, imagesBundled: Bool = false, allowDynamicAddress: Bool = false) {
        self.nodeIP = nodeIP
        self.probe = probe
        self.checkInternet = checkInternet
        self.source = source
        self.imagesBundled = imagesBundled
        self.allowDynamicAddress = allowDynamicAddress
    }

    /// What the inventory expects of `host`.
    public init(host: FleetCore.Host, inventory inv: Inventory, allowDynamicAddress: Bool = false) {
        self.init(nodeIP: host.nodeIP, probe: inv.preflight.probe, checkInternet: inv.preflight.checkInternet,
                  source: inv.k3s.source, imagesBundled: !AirgapFiles.images(in: inv.k3s.airgapDir).isEmpty,
                  allowDynamicAddress: allowDynamicAddress)
        cni = host.role == .server ? inv.cluster.cni : nil
        imageHosts = ImageHosts.derive(inv, systemImages: !(source == .airgap && imagesBundled))
    }
}
