import FleetCore
import Foundation

/// What `[cluster]` yielded: the config when everything is valid, and the ranges that parsed (for the checks
/// across hosts, which still run when another key is wrong).
struct ClusterDraft: Sendable, Hashable {
    var config: ClusterConfig?
    var clusterCIDR: IPv6CIDR?
    var serviceCIDR: IPv6CIDR?
}

/// Reads and validates `[cluster]`: one function per key or group of keys that depend on each other.
enum ClusterSection {
    static let keys = [
        "name", "cluster_cidr", "service_cidr", "cluster_dns", "flannel_ipv6_masq", "disable", "k3s_version", "tls_san",
        "registration_address", "cni", "embedded_registry",
    ]
    /// Components K3s can be told not to deploy.
    static let disableable = [
        "traefik", "servicelb", "local-storage", "metrics-server", "coredns", "network-policy", "helm-controller",
    ]
    static let documentationRange = IPv6CIDR(masking: IPv6Address(high: 0x2001_0DB8_0000_0000, low: 0), prefixLength: 32)

    static let section = InventorySection(name: "cluster", keys: keys) { reader, table in read(&reader, table) }

    static func read(_ r: inout InventoryReader, _ t: InventoryTable) {
        let before = r.errorCount
        let name = readName(&r, t)
        var draft = ClusterDraft()
        (draft.clusterCIDR, draft.serviceCIDR) = readRanges(&r, t)
        let clusterDNS = readClusterDNS(&r, t, services: draft.serviceCIDR)
        let masquerade = readMasquerade(&r, t, pods: draft.clusterCIDR)
        let disable = readDisable(&r, t)
        let version = readVersion(&r, t)
        let sans = readTLSSAN(&r, t)
        let registration = readRegistrationAddress(&r, t)
        var cni = CNI.flannel
        if case .present(let value) = r.enumeration(t, "cni", CNI.self) { cni = value }
        let embeddedRegistry = r.boolean(t, "embedded_registry").value ?? false
        if r.errorCount == before, let pods = draft.clusterCIDR, let services = draft.serviceCIDR {
            let config = ClusterConfig(
                name: name, clusterCIDR: pods, serviceCIDR: services, clusterDNS: clusterDNS,
                flannelIPv6Masq: masquerade, disable: disable, k3sVersion: version, tlsSAN: sans,
                registrationAddress: registration, cni: cni, embeddedRegistry: embeddedRegistry
            )
            draft.config = config
            r.sections[ClusterConfig.self] = config
        }
        r.sections[ClusterDraft.self] = draft
    }

    // MARK: - name

    static func readName(_ r: inout InventoryReader, _ t: InventoryTable) -> String {
        var name = ((r.absoluteFile as NSString).lastPathComponent as NSString).deletingPathExtension
        switch r.string(t, "name") {
        case .missing:
            if nameProblem(name) != nil { name = "fleet" }
        case .invalid: break
        case .present(let text):
            if let problem = nameProblem(text) {
                r.fail(t, "name", "\(InventorySyntax.tomlQuoted(text)) \(problem)")
            }
            name = text
        }
        return name
    }

    static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.utf8.count > 63 { return "is longer than 63 characters" }
        let allowed = name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
        if !allowed || name.hasPrefix(".") || name.hasPrefix("-") {
            return "is not a valid cluster name: use letters, digits, '-', '_' and '.', starting with a letter or digit"
        }
        return nil
    }

    // MARK: - cluster_cidr, service_cidr

    /// The pod and service ranges, each nil when invalid; also checks they are disjoint.
    static func readRanges(_ r: inout InventoryReader, _ t: InventoryTable) -> (IPv6CIDR?, IPv6CIDR?) {
        let pods = cidr(&r, t, "cluster_cidr", default: ClusterConfig.defaultClusterCIDR).flatMap { podRange(&r, t, $0) }
        let services = cidr(&r, t, "service_cidr", default: ClusterConfig.defaultServiceCIDR).flatMap { serviceRange(&r, t, $0) }
        if let pods, let services, pods.overlaps(services) {
            r.fail(t, "service_cidr", "\"\(services)\" overlaps cluster_cidr \"\(pods)\"; pod and service ranges must be disjoint")
        }
        for (key, range) in [("cluster_cidr", pods), ("service_cidr", services)] {
            if let range, range.overlaps(documentationRange) {
                r.warn(t, key, "\"\(range)\" is in 2001:db8::/32, a range reserved for documentation; real networks never route it")
            }
        }
        return (pods, services)
    }

    static func podRange(_ r: inout InventoryReader, _ t: InventoryTable, _ range: IPv6CIDR) -> IPv6CIDR? {
        guard range.prefixLength >= 48, range.prefixLength <= 64 else {
            r.fail(t, "cluster_cidr", """
                "\(range)" has a /\(range.prefixLength) prefix; cluster_cidr must be between /48 and /64: each node \
                takes a /64 of it, and the controller refuses a node mask more than 16 bits longer than the \
                cluster's (/56 gives 256 nodes)
                """)
            return nil
        }
        return range
    }

    static func serviceRange(_ r: inout InventoryReader, _ t: InventoryTable, _ range: IPv6CIDR) -> IPv6CIDR? {
        guard range.prefixLength >= 108 else {
            r.fail(t, "service_cidr", """
                "\(range)" is too large: kube-apiserver refuses more than 20 host bits ("for 128-bit addresses, \
                the mask must be >= 108"); use /112, the largest size K3s documents
                """)
            return nil
        }
        if range.prefixLength < 112 {
            r.warn(t, "service_cidr", """
                "\(range)" is larger than /112; the service allocator uses at most 16 bits, so K3s documents \
                /112 as the largest useful size
                """)
        }
        return range
    }

    /// Reads a CIDR key; returns the default when absent, nil when invalid (the error is recorded).
    static func cidr(_ r: inout InventoryReader, _ t: InventoryTable, _ key: String, default defaultValue: IPv6CIDR) -> IPv6CIDR? {
        switch r.string(t, key) {
        case .missing: return defaultValue
        case .invalid: return nil
        case .present(let text):
            do {
                return try IPv6CIDR(parsing: text)
            } catch let error as IPv6CIDRParseError {
                r.fail(t, key, error.description)
            } catch {
                r.fail(t, key, "\(InventorySyntax.tomlQuoted(text)) is not an IPv6 CIDR")
            }
            return nil
        }
    }

    // MARK: - cluster_dns

    static func readClusterDNS(_ r: inout InventoryReader, _ t: InventoryTable, services: IPv6CIDR?) -> IPv6Address? {
        var clusterDNS: IPv6Address?
        switch r.string(t, "cluster_dns") {
        case .missing: break
        case .invalid: return nil
        case .present(let text):
            guard let address = IPv6Address(text) else {
                r.fail(t, "cluster_dns", "\(InventorySyntax.tomlQuoted(text)) is not an IPv6 address\(ipv4Hint(text))")
                return nil
            }
            clusterDNS = address
        }
        guard let services else { return clusterDNS }
        if let clusterDNS {
            if !services.contains(clusterDNS) {
                r.fail(t, "cluster_dns", """
                    "\(clusterDNS)" is outside service_cidr "\(services)"; the DNS service address must be inside it
                    """)
            } else if clusterDNS == services.address || Optional(clusterDNS) == services.address.adding(1) {
                r.fail(t, "cluster_dns", """
                    "\(clusterDNS)" is reserved: the first address of service_cidr "\(services)" is the network and \
                    the next one is the kubernetes API service
                    """)
            }
        } else if services.address(at: 10) == nil {
            r.fail(t, "service_cidr", """
                "\(services)" is too small for the default cluster DNS address (the 10th address of the range); \
                use a larger range such as /112 or set cluster_dns
                """)
        }
        return clusterDNS
    }

    // MARK: - flannel_ipv6_masq, disable

    static func readMasquerade(_ r: inout InventoryReader, _ t: InventoryTable, pods: IPv6CIDR?) -> Bool {
        var masquerade = true
        if case .present(let flag) = r.boolean(t, "flannel_ipv6_masq") { masquerade = flag }
        if !masquerade, let pods, pods.address.isULA {
            r.warn(t, "flannel_ipv6_masq", """
                false with a unique-local cluster_cidr "\(pods)": pods cannot reach the internet unless that range is \
                routed to the nodes
                """)
        }
        return masquerade
    }

    static func readDisable(_ r: inout InventoryReader, _ t: InventoryTable) -> [String] {
        guard case .present(let list) = r.strings(t, "disable") else { return [] }
        for item in list where !disableable.contains(item) {
            var message = "\(InventorySyntax.tomlQuoted(item)) is not a component K3s knows how to disable"
            if let suggestion = InventorySyntax.suggestion(for: item, among: disableable) {
                message += "; did you mean \"\(suggestion)\"?"
            } else {
                message += " (known: \(disableable.joined(separator: ", ")))"
            }
            r.warn(t, "disable", message)
        }
        return list
    }

    // MARK: - k3s_version

    static func readVersion(_ r: inout InventoryReader, _ t: InventoryTable) -> String {
        switch r.string(t, "k3s_version") {
        case .missing:
            r.fail(t, "k3s_version", "is required: pin the exact K3s release, e.g. k3s_version = \"v1.31.5+k3s1\"")
            return ""
        case .invalid:
            return ""
        case .present(let text):
            if let problem = versionProblem(text) {
                r.fail(t, "k3s_version", "\(InventorySyntax.tomlQuoted(text)) \(problem)")
            }
            return text
        }
    }

    static func versionProblem(_ text: String) -> String? {
        if ["latest", "stable", "testing"].contains(text.lowercased()) {
            return "is a channel, not a version: pin an exact release such as \"v1.31.5+k3s1\" so every node runs the same K3s"
        }
        guard let version = K3sVersion(text) else {
            return "is not a K3s version: expected vMAJOR.MINOR.PATCH+k3sN, e.g. \"v1.31.5+k3s1\""
        }
        let first = K3sVersion.firstIPv6Only  // any +k3sN of that release will do
        if (version.major, version.minor, version.patch) < (first.major, first.minor, first.patch) {
            return "is too old: K3s runs IPv6-only (single-stack) clusters from v1.22.9+k3s1 on"
        }
        return nil
    }

    // MARK: - tls_san, registration_address

    static func readTLSSAN(_ r: inout InventoryReader, _ t: InventoryTable) -> [String] {
        guard case .present(let list) = r.strings(t, "tls_san") else { return [] }
        for entry in list {
            let name = entry.hasPrefix("*.") ? String(entry.dropFirst(2)) : entry
            if IPv6Address(name) != nil || InventorySyntax.isIPv4Literal(name) || InventorySyntax.isDNSName(name) { continue }
            r.fail(t, "tls_san", "\(InventorySyntax.tomlQuoted(entry)) is not an IP address or DNS name (write IPv6 addresses without brackets)")
        }
        return list
    }

    static func readRegistrationAddress(_ r: inout InventoryReader, _ t: InventoryTable) -> String? {
        guard case .present(let text) = r.string(t, "registration_address") else { return nil }
        if let parsed = IPv6Address(text) { return parsed.description }
        if text.hasPrefix("["), IPv6Address(String(text.dropFirst().dropLast())) != nil {
            r.fail(t, "registration_address", "\(InventorySyntax.tomlQuoted(text)): write the IPv6 address without brackets")
        } else if InventorySyntax.isIPv4Literal(text) {
            r.fail(t, "registration_address", "\(InventorySyntax.tomlQuoted(text)) is IPv4; an IPv6-only cluster registers over IPv6")
        } else if InventorySyntax.isDNSName(text) {
            return text
        } else {
            r.fail(t, "registration_address", "\(InventorySyntax.tomlQuoted(text)) is not an IPv6 address or DNS name")
        }
        return nil
    }
}

/// ` (it is IPv4; this cluster is IPv6-only)` when `text` is an IPv4 literal: appended to "is not an IPv6 address".
func ipv4Hint(_ text: String) -> String {
    InventorySyntax.isIPv4Literal(text) ? " (it is IPv4; this cluster is IPv6-only)" : ""
}
