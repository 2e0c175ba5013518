import Foundation
import TOMLKit

/// What `[cluster]` yielded: the config when everything is valid, and the ranges that parsed (for host checks).
struct ClusterDraft {
    var config: ClusterConfig?
    var clusterCIDR: IPv6CIDR?
    var serviceCIDR: IPv6CIDR?
}

extension InventoryLoader {
    static let documentationRange = IPv6CIDR(masking: IPv6Address(high: 0x2001_0DB8_0000_0000, low: 0), prefixLength: 32)
    /// K3s runs a single-stack IPv6 cluster from this release on.
    static let minimumK3sVersion = [1, 22, 9]

    // MARK: - [cluster]

    mutating func readCluster(_ context: InventoryTableContext) -> ClusterDraft {
        checkKeys(context, allowed: InventoryKeys.cluster)
        var valid = true
        var draft = ClusterDraft()

        var name = ((absoluteFile as NSString).lastPathComponent as NSString).deletingPathExtension
        switch string(context, "name") {
        case .missing:
            if clusterNameProblem(name) != nil { name = "fleet" }
        case .invalid: valid = false
        case .present(let text):
            if let problem = clusterNameProblem(text) {
                fail(context, "name", "\(InventorySyntax.tomlQuoted(text)) \(problem)")
                valid = false
            }
            name = text
        }

        let clusterCIDR = cidr(context, "cluster_cidr", default: ClusterConfig.defaultClusterCIDR)
        let serviceCIDR = cidr(context, "service_cidr", default: ClusterConfig.defaultServiceCIDR)
        if let range = clusterCIDR {
            if range.prefixLength < 48 || range.prefixLength > 64 {
                fail(context, "cluster_cidr", """
                    "\(range)" has a /\(range.prefixLength) prefix; cluster_cidr must be between /48 and /64: each node \
                    takes a /64 of it, and the controller refuses a node mask more than 16 bits longer than the \
                    cluster's (/56 gives 256 nodes)
                    """)
                draft.clusterCIDR = nil
                valid = false
            } else {
                draft.clusterCIDR = range
            }
        } else {
            valid = false
        }
        if let range = serviceCIDR {
            if range.prefixLength < 108 {
                fail(context, "service_cidr", """
                    "\(range)" is too large: kube-apiserver refuses more than 20 host bits ("for 128-bit addresses, \
                    the mask must be >= 108"); use /112, the largest size K3s documents
                    """)
                valid = false
            } else {
                draft.serviceCIDR = range
                if range.prefixLength < 112 {
                    warn(context, "service_cidr", """
                        "\(range)" is larger than /112; the service allocator uses at most 16 bits, so K3s documents \
                        /112 as the largest useful size
                        """)
                }
            }
        } else {
            valid = false
        }
        if let pods = draft.clusterCIDR, let services = draft.serviceCIDR, pods.overlaps(services) {
            fail(context, "service_cidr", "\"\(services)\" overlaps cluster_cidr \"\(pods)\"; pod and service ranges must be disjoint")
            valid = false
        }
        for (key, range) in [("cluster_cidr", draft.clusterCIDR), ("service_cidr", draft.serviceCIDR)] {
            if let range, range.overlaps(InventoryLoader.documentationRange) {
                warn(context, key, "\"\(range)\" is in 2001:db8::/32, a range reserved for documentation; real networks never route it")
            }
        }

        var clusterDNS: IPv6Address?
        var clusterDNSUsable = true
        switch string(context, "cluster_dns") {
        case .missing: break
        case .invalid:
            valid = false
            clusterDNSUsable = false
        case .present(let text):
            if let address = IPv6Address(text) {
                clusterDNS = address
            } else {
                fail(context, "cluster_dns", "\(InventorySyntax.tomlQuoted(text)) is not an IPv6 address\(ipv4Hint(text))")
                valid = false
                clusterDNSUsable = false
            }
        }
        if let services = draft.serviceCIDR, clusterDNSUsable {
            if let clusterDNS {
                if !services.contains(clusterDNS) {
                    fail(context, "cluster_dns", """
                        "\(clusterDNS)" is outside service_cidr "\(services)"; the DNS service address must be inside it
                        """)
                    valid = false
                } else if clusterDNS == services.address || Optional(clusterDNS) == services.address.adding(1) {
                    fail(context, "cluster_dns", """
                        "\(clusterDNS)" is reserved: the first address of service_cidr "\(services)" is the network and \
                        the next one is the kubernetes API service
                        """)
                    valid = false
                }
            } else if services.address(at: 10) == nil {
                fail(context, "service_cidr", """
                    "\(services)" is too small for the default cluster DNS address (the 10th address of the range); \
                    use a larger range such as /112 or set cluster_dns
                    """)
                valid = false
            }
        }

        var masquerade = true
        switch boolean(context, "flannel_ipv6_masq") {
        case .missing: break
        case .invalid: valid = false
        case .present(let flag): masquerade = flag
        }
        if !masquerade, let pods = draft.clusterCIDR, pods.address.isULA {
            warn(context, "flannel_ipv6_masq", """
                false with a unique-local cluster_cidr "\(pods)": pods cannot reach the internet unless that range is \
                routed to the nodes
                """)
        }

        var disable: [String] = []
        switch strings(context, "disable") {
        case .missing: break
        case .invalid: valid = false
        case .present(let list):
            disable = list
            for item in list where !InventoryKeys.disableable.contains(item) {
                var message = "\(InventorySyntax.tomlQuoted(item)) is not a component K3s knows how to disable"
                if let suggestion = InventorySyntax.suggestion(for: item, among: InventoryKeys.disableable) {
                    message += "; did you mean \"\(suggestion)\"?"
                } else {
                    message += " (known: \(InventoryKeys.disableable.joined(separator: ", ")))"
                }
                warn(context, "disable", message)
            }
        }

        var version = ""
        switch string(context, "k3s_version") {
        case .missing:
            fail(context, "k3s_version", "is required: pin the exact K3s release, e.g. k3s_version = \"v1.31.5+k3s1\"")
            valid = false
        case .invalid: valid = false
        case .present(let text):
            if let problem = k3sVersionProblem(text) {
                fail(context, "k3s_version", "\(InventorySyntax.tomlQuoted(text)) \(problem)")
                valid = false
            }
            version = text
        }

        var sans: [String] = []
        switch strings(context, "tls_san") {
        case .missing: break
        case .invalid: valid = false
        case .present(let list):
            sans = list
            for entry in list {
                let name = entry.hasPrefix("*.") ? String(entry.dropFirst(2)) : entry
                if IPv6Address(name) != nil || InventorySyntax.isIPv4Literal(name) || InventorySyntax.isDNSName(name) { continue }
                fail(context, "tls_san", "\(InventorySyntax.tomlQuoted(entry)) is not an IP address or DNS name (write IPv6 addresses without brackets)")
                valid = false
            }
        }

        var registration: String?
        switch string(context, "registration_address") {
        case .missing: break
        case .invalid: valid = false
        case .present(let text):
            if let parsed = IPv6Address(text) {
                registration = parsed.description
            } else if text.hasPrefix("["), IPv6Address(String(text.dropFirst().dropLast())) != nil {
                fail(context, "registration_address", "\(InventorySyntax.tomlQuoted(text)): write the IPv6 address without brackets")
                valid = false
            } else if InventorySyntax.isIPv4Literal(text) {
                fail(context, "registration_address", "\(InventorySyntax.tomlQuoted(text)) is IPv4; an IPv6-only cluster registers over IPv6")
                valid = false
            } else if InventorySyntax.isDNSName(text) {
                registration = text
            } else {
                fail(context, "registration_address", "\(InventorySyntax.tomlQuoted(text)) is not an IPv6 address or DNS name")
                valid = false
            }
        }

        if valid, let pods = draft.clusterCIDR, let services = draft.serviceCIDR {
            draft.config = ClusterConfig(
                name: name, clusterCIDR: pods, serviceCIDR: services, clusterDNS: clusterDNS,
                flannelIPv6Masq: masquerade, disable: disable, k3sVersion: version, tlsSAN: sans,
                registrationAddress: registration
            )
        }
        return draft
    }

    func clusterNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.utf8.count > 63 { return "is longer than 63 characters" }
        let allowed = name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
        if !allowed || name.hasPrefix(".") || name.hasPrefix("-") {
            return "is not a valid cluster name: use letters, digits, '-', '_' and '.', starting with a letter or digit"
        }
        return nil
    }

    func k3sVersionProblem(_ text: String) -> String? {
        let lowered = text.lowercased()
        if ["latest", "stable", "testing"].contains(lowered) {
            return "is a channel, not a version: pin an exact release such as \"v1.31.5+k3s1\" so every node runs the same K3s"
        }
        guard let parts = InventorySyntax.k3sVersionParts(text) else {
            return "is not a K3s version: expected vMAJOR.MINOR.PATCH+k3sN, e.g. \"v1.31.5+k3s1\""
        }
        if Array(parts.prefix(3)).lexicographicallyPrecedes(InventoryLoader.minimumK3sVersion) {
            return "is too old: K3s runs IPv6-only (single-stack) clusters from v1.22.9+k3s1 on"
        }
        return nil
    }

    func ipv4Hint(_ text: String) -> String {
        InventorySyntax.isIPv4Literal(text) ? " (it is IPv4; this cluster is IPv6-only)" : ""
    }

    /// Reads a CIDR key; returns the default when absent, nil when invalid (the error is recorded).
    mutating func cidr(_ context: InventoryTableContext, _ key: String, default defaultValue: IPv6CIDR) -> IPv6CIDR? {
        switch string(context, key) {
        case .missing: return defaultValue
        case .invalid: return nil
        case .present(let text):
            do {
                return try IPv6CIDR(parsing: text)
            } catch let error as IPv6CIDRParseError {
                fail(context, key, error.description)
            } catch {
                fail(context, key, "\(InventorySyntax.tomlQuoted(text)) is not an IPv6 CIDR")
            }
            return nil
        }
    }

    // MARK: - [k3s]

    mutating func readK3s(_ context: InventoryTableContext) -> K3sConfig? {
        checkKeys(context, allowed: InventoryKeys.k3s)
        var valid = true
        var source = K3sSource.script
        switch enumeration(context, "source", K3sSource.self) {
        case .missing: break
        case .invalid: valid = false
        case .present(let value): source = value
        }
        var airgapDir: String?
        switch path(context, "airgap_dir") {
        case .missing: break
        case .invalid: valid = false
        case .present(let directory): airgapDir = directory
        }
        if source == .airgap, valid {
            if let airgapDir {
                if let problem = airgapProblem(airgapDir) {
                    fail(context, "airgap_dir", problem)
                    valid = false
                }
            } else {
                fail(context, "airgap_dir", """
                    is required when source = "airgap": a directory on this machine holding k3s, install.sh and \
                    k3s-airgap-images-<arch>.tar.zst
                    """)
                valid = false
            }
        } else if source == .script, airgapDir != nil {
            warn(context, "airgap_dir", "is ignored unless source = \"airgap\"")
        }
        return valid ? K3sConfig(source: source, airgapDir: airgapDir) : nil
    }

    mutating func airgapProblem(_ directory: String) -> String? {
        let files = FileManager.default
        var isDirectory: ObjCBool = false
        guard files.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            return "\"\(directory)\" does not exist; it must hold k3s and install.sh for source = \"airgap\""
        }
        guard isDirectory.boolValue else { return "\"\(directory)\" is not a directory" }
        var missing: [String] = []
        for name in ["k3s", "install.sh"] {
            var entryIsDirectory: ObjCBool = false
            let entry = (directory as NSString).appendingPathComponent(name)
            if !files.fileExists(atPath: entry, isDirectory: &entryIsDirectory) || entryIsDirectory.boolValue {
                missing.append(name)
            }
        }
        if !missing.isEmpty {
            return "\"\(directory)\" lacks \(missing.joined(separator: " and ")); source = \"airgap\" copies k3s and install.sh from it"
        }
        let entries = (try? files.contentsOfDirectory(atPath: directory)) ?? []
        if !entries.contains(where: { $0.hasPrefix("k3s-airgap-images-") }) {
            warnings.append(InventoryWarning(key: "k3s.airgap_dir", message: """
                "\(directory)" has no k3s-airgap-images-<arch>.tar.zst (or .tar.gz/.tar): nodes will have to pull \
                system images from registries
                """))
        }
        return nil
    }

    // MARK: - [ssh]

    mutating func readSSH(_ context: InventoryTableContext) -> SSHSettings? {
        checkKeys(context, allowed: InventoryKeys.ssh)
        var settings = SSHSettings()
        var valid = true
        if !applyConnectionKeys(context, to: &settings) { valid = false }
        switch path(context, "known_hosts") {
        case .missing: break
        case .invalid: valid = false
        case .present(let file): settings.knownHosts = file
        }
        switch enumeration(context, "host_key_policy", HostKeyPolicy.self) {
        case .missing: break
        case .invalid: valid = false
        case .present(let policy): settings.hostKeyPolicy = policy
        }
        switch number(context, "connect_timeout") {
        case .missing: break
        case .invalid: valid = false
        case .present(let seconds):
            if seconds <= 0 || seconds > 300 {
                fail(context, "connect_timeout", "\(formatSeconds(seconds)) is out of range: it must be more than 0 and at most 300 seconds")
                valid = false
            } else {
                settings.connectTimeout = seconds
            }
        }
        switch number(context, "command_timeout") {
        case .missing: break
        case .invalid: valid = false
        case .present(let seconds):
            if seconds <= 0 {
                fail(context, "command_timeout", "\(formatSeconds(seconds)) is out of range: it must be more than 0 seconds")
                valid = false
            } else {
                settings.commandTimeout = seconds
            }
        }
        switch integer(context, "forks") {
        case .missing: break
        case .invalid: valid = false
        case .present(let forks):
            if !(1...1000).contains(forks) {
                fail(context, "forks", "\(forks) is out of range: it must be from 1 to 1000")
                valid = false
            } else {
                settings.forks = forks
            }
        }
        return valid ? settings : nil
    }

    func formatSeconds(_ seconds: Double) -> String {
        seconds == seconds.rounded() && abs(seconds) < 1e15 ? String(Int(seconds)) : String(seconds)
    }

    /// `user`, `port`, `identity` and `become`: allowed both in `[ssh]` and in each `[[hosts]]` entry.
    mutating func applyConnectionKeys(_ context: InventoryTableContext, to settings: inout SSHSettings) -> Bool {
        var valid = true
        switch string(context, "user") {
        case .missing: break
        case .invalid: valid = false
        case .present(let user):
            if user.isEmpty || user.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0 == "@" }) {
                fail(context, "user", "\(InventorySyntax.tomlQuoted(user)) is not a valid user name (non-empty, no whitespace or '@')")
                valid = false
            } else {
                settings.user = user
            }
        }
        switch integer(context, "port") {
        case .missing: break
        case .invalid: valid = false
        case .present(let port):
            if !(1...65535).contains(port) {
                fail(context, "port", "\(port) is out of range: it must be from 1 to 65535")
                valid = false
            } else {
                settings.port = port
            }
        }
        switch path(context, "identity") {
        case .missing: break
        case .invalid: valid = false
        case .present(let file): settings.identity = file
        }
        switch enumeration(context, "become", Become.self) {
        case .missing: break
        case .invalid: valid = false
        case .present(let become): settings.become = become
        }
        return valid
    }

    // MARK: - [preflight]

    mutating func readPreflight(_ context: InventoryTableContext) -> PreflightConfig? {
        checkKeys(context, allowed: InventoryKeys.preflight)
        var config = PreflightConfig()
        var valid = true
        switch string(context, "probe") {
        case .missing: break
        case .invalid: valid = false
        case .present(let text):
            if let address = IPv6Address(text) {
                config.probe = address
            } else {
                fail(context, "probe", "\(InventorySyntax.tomlQuoted(text)) is not an IPv6 address\(ipv4Hint(text))")
                valid = false
            }
        }
        switch boolean(context, "check_internet") {
        case .missing: break
        case .invalid: valid = false
        case .present(let flag): config.checkInternet = flag
        }
        return valid ? config : nil
    }
}
