import FleetCore
import Foundation

/// Checks across `[cluster]` and the hosts: node IPs, where agents register, the number of servers,
/// and room in the pod range.
enum ClusterChecks {
    static let all = [
        InventoryCheck { reader, entries in nodeIPs(&reader, entries) },
        InventoryCheck { reader, entries in registrationAddress(&reader, entries) },
        InventoryCheck { reader, entries in serverCount(&reader, entries) },
        InventoryCheck { reader, entries in podRangeCapacity(&reader, entries) },
    ]

    static func nodeIP(_ entry: HostEntry) -> IPv6Address? { entry.values[NodeSettings.self]?.nodeIP }

    /// Node IPs are unique, and outside the pod and service ranges.
    static func nodeIPs(_ r: inout InventoryReader, _ entries: [HostEntry]) {
        let draft = r.sections[ClusterDraft.self]
        var seen: [IPv6Address: HostEntry] = [:]
        for entry in entries {
            guard let ip = nodeIP(entry) else { continue }
            if let first = seen[ip] {
                r.fail(entry.table, "node_ip", "\"\(ip)\" is also the node IP of \(first.label); node IPs must be unique")
            } else {
                seen[ip] = entry
            }
            if let pods = draft?.clusterCIDR, pods.contains(ip) {
                r.fail(entry.table, "node_ip", "\"\(ip)\" is inside cluster_cidr \"\(pods)\"; node addresses must be outside the pod range")
            }
            if let services = draft?.serviceCIDR, services.contains(ip) {
                r.fail(entry.table, "node_ip", "\"\(ip)\" is inside service_cidr \"\(services)\"; node addresses must be outside the service range")
            }
        }
    }

    /// Agents register through registration_address: it must be a server, or a name or floating address
    /// the API certificate carries (tls_san), or TLS fails.
    static func registrationAddress(_ r: inout InventoryReader, _ entries: [HostEntry]) {
        guard let config = r.sections[ClusterDraft.self]?.config, let address = config.registrationAddress,
            entries.allSatisfy(\.roleUsable) else { return }
        let ip = IPv6Address(address)
        let inSAN = config.tlsSAN.contains { $0 == address || (ip != nil && IPv6Address($0) == ip) }
        let owner = ip.flatMap { ip in entries.first { nodeIP($0) == ip } }
        if let owner, owner.role == .agent {
            r.fail(.section("cluster"), "registration_address", "\"\(address)\" is the node_ip of agent \(owner.label); agents register with a server")
        } else if owner == nil, !inSAN {
            r.fail(.section("cluster"), "registration_address", """
                "\(address)" is neither a server's node_ip nor in tls_san; the API certificate would not name it: \
                add it to tls_san
                """)
        }
    }

    /// An even number of servers is an even number of etcd members.
    static func serverCount(_ r: inout InventoryReader, _ entries: [HostEntry]) {
        guard !entries.isEmpty, entries.allSatisfy(\.roleUsable) else { return }
        let servers = entries.filter { $0.role == .server }.count
        if servers > 0, servers % 2 == 0 {
            r.warn(key: "hosts", """
                \(servers) servers make an even number of etcd members, which tolerates no more failures than \
                \(servers - 1); an odd number is recommended
                """)
        }
    }

    /// Each node takes a /64 of cluster_cidr.
    static func podRangeCapacity(_ r: inout InventoryReader, _ entries: [HostEntry]) {
        guard let pods = r.sections[ClusterDraft.self]?.clusterCIDR, let capacity = pods.subnetCount(prefixLength: 64),
            UInt64(entries.count) > capacity else { return }
        r.fail(.section("cluster"), "cluster_cidr", """
            "\(pods)" has room for \(capacity) nodes (one /64 each) but the inventory lists \(entries.count) hosts; \
            use a shorter prefix
            """)
    }
}
