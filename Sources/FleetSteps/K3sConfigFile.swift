import FleetCore
import Foundation
import Yams

/// `/etc/rancher/k3s/config.yaml`, built as a YAML node tree and serialised with Yams.
///
/// Every string is written quoted: an unquoted `0600` would be read as a number, and some IPv6
/// addresses (`2001:20:30::1`-like, all-digit groups) as YAML 1.1 base-60 integers.
public enum K3sConfigFile {
    public static let path = "/etc/rancher/k3s/config.yaml"
    /// Where a joining node's token lives (mode 0600); config.yaml names it with `token-file`.
    public static let tokenPath = "/etc/rancher/k3s/fleet-token"

    /// A config value: a string, a boolean or a list of strings.
    public enum Value: Sendable, Equatable {
        case string(String)
        case bool(Bool)
        case list([String])
    }

    /// The settings every server must hold identically: K3s refuses a joining server whose values
    /// differ ("critical configuration value mismatch"), so they come from one place.
    public static func clusterWide(_ inventory: Inventory) -> [(String, Value)] {
        let c = inventory.cluster
        var entries: [(String, Value)] = [
            ("cluster-cidr", .string(c.clusterCIDR.description)),
            ("service-cidr", .string(c.serviceCIDR.description)),
            ("cluster-dns", .string(c.effectiveClusterDNS.description)),
            ("flannel-ipv6-masq", .bool(c.flannelIPv6Masq)),
        ]
        if !c.disable.isEmpty { entries.append(("disable", .list(c.disable))) }
        entries += networkStack(c)
        return entries
    }

    /// The keys `[cluster] cni` and `embedded_registry` set: without flannel, K3s runs no network policy
    /// controller either; Cilium replaces kube-proxy. All must match on every server.
    public static func networkStack(_ c: ClusterConfig) -> [(String, Value)] {
        var entries: [(String, Value)] = []
        if c.cni.replacesFlannel {
            entries.append(("flannel-backend", .string("none")))
            entries.append(("disable-network-policy", .bool(true)))
        }
        if c.cni == .cilium { entries.append(("disable-kube-proxy", .bool(true))) }
        if c.embeddedRegistry { entries.append(("embedded-registry", .bool(true))) }
        return entries
    }

    /// A server's settings, in a fixed order. With several servers the first starts the cluster
    /// with embedded etcd (`cluster-init`) and the others join it with `server` and the token file.
    public static func server(host: FleetCore.Host, inventory: Inventory) -> [(String, Value)] {
        let c = inventory.cluster
        var sans = [host.nodeIP.description]
        for san in c.tlsSAN where !sans.contains(san) && IPv6Address(san).map({ $0 != host.nodeIP }) ?? true {
            sans.append(san)
        }
        var entries: [(String, Value)] = []
        let first = inventory.firstServer
        if host.name != first.name {
            entries.append(("server", .string(serverURL(first.nodeIP))))
            entries.append(("token-file", .string(tokenPath)))
        } else if inventory.servers.count > 1 {
            entries.append(("cluster-init", .bool(true)))
        }
        entries += [
            ("node-name", .string(host.name)),
            ("node-ip", .string(host.nodeIP.description)),
        ]
        entries += clusterWide(inventory)
        entries.append(("tls-san", .list(sans)))
        entries.append(("write-kubeconfig-mode", .string("0600")))
        return entries
    }

    /// An agent's settings: the server URL (bracketed), its node IP and the token file.
    public static func agent(host: FleetCore.Host, inventory: Inventory) -> [(String, Value)] {
        [
            ("server", .string(inventory.registrationURL)),
            ("node-name", .string(host.name)),
            ("node-ip", .string(host.nodeIP.description)),
            ("token-file", .string(tokenPath)),
        ]
    }

    /// The YAML text.
    public static func render(_ entries: [(String, Value)]) throws -> String {
        func str(_ s: String) -> Node { Node(s, Tag(.str), .doubleQuoted) }
        let pairs: [(Node, Node)] = entries.map { key, value in
            let v: Node
            switch value {
            case .string(let s): v = str(s)
            case .bool(let b): v = Node(b ? "true" : "false", Tag(.bool), .plain)
            case .list(let items): v = Node(items.map(str), Tag(.seq), .block)
            }
            return (Node(key, Tag(.str), .plain), v)
        }
        let text = try Yams.serialize(node: Node(pairs, Tag(.map), .block), width: -1)
        return "# Written by fleet. Changes here are overwritten on the next run.\n" + text
    }
}
