import FleetCore
import Foundation

/// The chart values that make a CNI work on an IPv6-only K3s cluster; an add-on's own `values` are laid over them.
public enum CNIValues {
    /// Cilium tunnels over an IPv6 underlay from 1.18 on; before, only native routing works on IPv6-only nodes.
    public static let firstIPv6Tunnel = (major: 1, minor: 18)

    /// `MAJOR.MINOR` of a chart version such as `1.18.2` or `v1.16.5`.
    public static func majorMinor(_ version: String) -> (Int, Int)? {
        let parts = version.drop { $0 == "v" }.split(separator: ".")
        guard parts.count >= 2, let major = Int(parts[0]), let minor = Int(parts[1].prefix { $0.isNumber }) else { return nil }
        return (major, minor)
    }

    /// Cilium: IPv6 only, K3s's pod ranges (kubernetes IPAM), kube-proxy replacement, the API through K3s's
    /// local load balancer on `[::1]:6444`. `k8sServiceHost` is an unbracketed literal: Cilium's client adds the
    /// brackets itself. Native routing with masquerade by default; `routingMode = "tunnel"` in the values tunnels
    /// over the IPv6 underlay (Cilium ≥ 1.18).
    public static func cilium(clusterCIDR: IPv6CIDR, tunnel: Bool) -> InventoryValue {
        var v: [String: InventoryValue] = [
            "ipv4": .table(["enabled": .bool(false)]),
            "ipv6": .table(["enabled": .bool(true)]),
            "ipam": .table(["mode": .string("kubernetes")]),
            "k8s": .table(["requireIPv6PodCIDR": .bool(true)]),
            "k8sServiceHost": .string("::1"),
            "k8sServicePort": .integer(6444),
            "kubeProxyReplacement": .bool(true),
            "enableIPv6Masquerade": .bool(true),
        ]
        if tunnel {
            v["routingMode"] = .string("tunnel")
            v["tunnelProtocol"] = .string("vxlan")
            v["underlayProtocol"] = .string("ipv6")
        } else {
            v["routingMode"] = .string("native")
            v["autoDirectNodeRoutes"] = .bool(true)
            v["ipv6NativeRoutingCIDR"] = .string(clusterCIDR.description)
        }
        return .table(v)
    }

    /// The Tigera operator's Installation: one IPv6 pool over cluster_cidr (immutable after install), no
    /// encapsulation, outgoing NAT, node addresses from the Kubernetes node (K3s's node-ip), and IP forwarding in
    /// containers as K3s needs.
    public static func calico(clusterCIDR: IPv6CIDR) -> InventoryValue {
        .table([
            "installation": .table([
                "enabled": .bool(true),
                "cni": .table(["type": .string("Calico")]),
                "calicoNetwork": .table([
                    "bgp": .string("Enabled"),
                    "containerIPForwarding": .string("Enabled"),
                    "nodeAddressAutodetectionV6": .table(["kubernetes": .string("NodeInternalIP")]),
                    "ipPools": .array([.table([
                        "cidr": .string(clusterCIDR.description),
                        "blockSize": .integer(122),
                        "natOutgoing": .string("Enabled"),
                        "encapsulation": .string("None"),
                        "nodeSelector": .string("all()"),
                    ])]),
                ]),
            ]),
        ])
    }
}
