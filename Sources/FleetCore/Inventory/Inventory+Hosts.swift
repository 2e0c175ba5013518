import Foundation
import TOMLKit

/// One `[[hosts]]` entry as far as it could be read.
struct HostDraft {
    let index: Int
    let context: InventoryTableContext
    var name: String?
    var address: String?
    var addressKind: InventorySyntax.AddressKind?
    var role: HostRole?
    var roleUsable = true
    var nodeIP: IPv6Address?
    var raInterface: String?
    var ssh: SSHSettings?
    var valid = true

    var host: Host? {
        guard valid, let name, let address, let role, let nodeIP, let ssh else { return nil }
        return Host(name: name, address: address, role: role, nodeIP: nodeIP, raInterface: raInterface, ssh: ssh)
    }
}

extension InventoryLoader {
    mutating func readHosts(_ root: TOMLTable, defaults: SSHSettings?) -> [HostDraft] {
        guard let value = root["hosts"] else {
            fail(nil, "hosts", "at least one [[hosts]] entry is required")
            return []
        }
        guard let array = value.array else {
            if value.table != nil {
                fail(nil, "hosts", "must be a list of hosts: write each one as a [[hosts]] table (double brackets)")
            } else {
                fail(nil, "hosts", "expected a list of [[hosts]] tables, found \(InventoryLoader.describe(value))")
            }
            return []
        }
        if array.isEmpty {
            fail(nil, "hosts", "at least one [[hosts]] entry is required")
            return []
        }
        var drafts: [HostDraft] = []
        for (index, element) in array.enumerated() {
            guard let table = element.table else {
                let context = InventoryTableContext(table: TOMLTable(), path: "hosts[\(index)]", keyPrefix: "", label: "[[hosts]]", hostIndex: index)
                fail(context, nil, "expected a table with name, address and role, found \(InventoryLoader.describe(element))")
                continue
            }
            drafts.append(readHost(table, index: index, defaults: defaults ?? SSHSettings()))
        }
        return drafts
    }

    mutating func readHost(_ table: TOMLTable, index: Int, defaults: SSHSettings) -> HostDraft {
        var context = InventoryTableContext(table: table, path: "hosts[\(index)]", keyPrefix: "", label: "[[hosts]]", hostIndex: index)
        if let rawName = table["name"]?.string, !rawName.isEmpty { context.hostName = rawName }
        var draft = HostDraft(index: index, context: context)
        let errorCount = errors.count
        checkKeys(context, allowed: InventoryKeys.host)

        switch string(context, "name") {
        case .missing:
            fail(context, "name", "is required: the host's Kubernetes node name, e.g. name = \"node-1\"")
        case .invalid: break
        case .present(let name):
            if let problem = InventorySyntax.nodeNameProblem(name) {
                fail(context, "name", "\(InventorySyntax.tomlQuoted(name)) \(problem)")
            } else {
                draft.name = name
            }
        }

        switch string(context, "address") {
        case .missing:
            fail(context, "address", "is required: the IPv6 address (or IPv4 address or DNS name) SSH connects to")
        case .invalid: break
        case .present(let raw):
            readAddress(raw, context: context, into: &draft)
        }

        switch enumeration(context, "role", HostRole.self) {
        case .missing:
            fail(context, "role", "is required: role = \"server\" or role = \"agent\"")
            draft.roleUsable = false
        case .invalid:
            draft.roleUsable = false
        case .present(let role):
            draft.role = role
        }

        var settings = defaults
        if applyConnectionKeys(context, to: &settings) {
            draft.ssh = settings
            if settings.user != "root", settings.become == .none {
                warn(context, "become", """
                    user "\(settings.user)" is not root and become = "none": installing K3s needs root; set \
                    become = "sudo" (passwordless) or connect as root
                    """)
            }
        }

        switch string(context, "node_ip") {
        case .missing:
            switch draft.addressKind {
            case .ipv6(let address):
                if let problem = nodeIPProblem(address) {
                    fail(context, "node_ip", """
                        is not set, so it defaults to address "\(address)", which \(problem); set node_ip to the \
                        node's global or unique-local IPv6 address
                        """)
                } else {
                    draft.nodeIP = address
                }
            case .ipv4, .dnsName:
                let kind = draft.addressKind == .ipv4 ? "an IPv4 address" : "a DNS name"
                fail(context, "node_ip", """
                    is required when address is not an IPv6 literal (address "\(draft.address ?? "")" is \(kind)): \
                    set the node's IPv6 address
                    """)
            case nil:
                break
            }
        case .invalid: break
        case .present(let text):
            if let address = IPv6Address(text) {
                if let problem = nodeIPProblem(address) {
                    fail(context, "node_ip", "\(InventorySyntax.tomlQuoted(text)) \(problem); use the node's global or unique-local IPv6 address")
                } else {
                    draft.nodeIP = address
                }
            } else {
                fail(context, "node_ip", "\(InventorySyntax.tomlQuoted(text)) is not an IPv6 address\(ipv4Hint(text)); node_ip must be the node's IPv6 address")
            }
        }
        if let nodeIP = draft.nodeIP, nodeIP.isDocumentation {
            warn(context, "node_ip", "\"\(nodeIP)\" is in 2001:db8::/32, a range reserved for documentation")
        }

        switch string(context, "ra_interface") {
        case .missing: break
        case .invalid: break
        case .present(let interface):
            if let problem = InventorySyntax.interfaceNameProblem(interface) {
                fail(context, "ra_interface", "\(InventorySyntax.tomlQuoted(interface)) \(problem)")
            } else {
                draft.raInterface = interface
            }
        }

        draft.valid = errors.count == errorCount
        return draft
    }

    mutating func readAddress(_ raw: String, context: InventoryTableContext, into draft: inout HostDraft) {
        var text = raw
        if text.hasPrefix("[") {
            if text.hasSuffix("]") {
                text = String(text.dropFirst().dropLast())
                if IPv6Address(text) == nil {
                    fail(context, "address", "\(InventorySyntax.tomlQuoted(raw)): brackets are only for IPv6 addresses, and \"\(text)\" is not one")
                    return
                }
            } else if let close = text.firstIndex(of: "]"), text[close...].hasPrefix("]:") {
                fail(context, "address", "\(InventorySyntax.tomlQuoted(raw)) includes a port: write the address alone and set port = \(text[text.index(close, offsetBy: 2)...]) in this host")
                return
            } else {
                fail(context, "address", "\(InventorySyntax.tomlQuoted(raw)) has an unbalanced '['")
                return
            }
        }
        switch InventorySyntax.classifyAddress(text) {
        case .success(let kind):
            draft.address = text
            draft.addressKind = kind
        case .failure(let problem):
            fail(context, "address", "\(InventorySyntax.tomlQuoted(raw)) \(problem.reason)")
        }
    }

    /// Why `address` cannot be a node IP, or nil.
    func nodeIPProblem(_ address: IPv6Address) -> String? {
        if address.isUnspecified { return "is the unspecified address" }
        if address.isLoopback { return "is the loopback address" }
        if address.isLinkLocal { return "is link-local (fe80::/10), which other nodes cannot route to" }
        if address.isMulticast { return "is a multicast address" }
        if address.isIPv4Mapped { return "is an IPv4-mapped address; the node needs a real IPv6 address" }
        return nil
    }

    // MARK: - Checks across hosts

    mutating func checkHosts(_ drafts: [HostDraft], cluster: ClusterDraft) {
        var names: [String: HostDraft] = [:]
        var endpoints: [String: HostDraft] = [:]
        var nodeIPs: [IPv6Address: HostDraft] = [:]
        for draft in drafts {
            if let name = draft.name {
                if let first = names[name] {
                    fail(draft.context, "name", "\"\(name)\" is used twice: \(label(first)) has the same name; node names must be unique")
                } else {
                    names[name] = draft
                }
            }
            if let address = draft.address, let kind = draft.addressKind, let port = draft.ssh?.port {
                let canonical: String
                switch kind {
                case .ipv6(let parsed): canonical = parsed.description
                case .ipv4: canonical = address
                case .dnsName: canonical = address.lowercased().hasSuffix(".") ? String(address.lowercased().dropLast()) : address.lowercased()
                }
                let endpoint = "\(canonical) port \(port)"
                if let first = endpoints[endpoint] {
                    fail(draft.context, "address", "\"\(address)\" (port \(port)) is also the address of \(label(first)); each host needs its own address")
                } else {
                    endpoints[endpoint] = draft
                }
            }
            if let nodeIP = draft.nodeIP {
                if let first = nodeIPs[nodeIP] {
                    fail(draft.context, "node_ip", "\"\(nodeIP)\" is also the node IP of \(label(first)); node IPs must be unique")
                } else {
                    nodeIPs[nodeIP] = draft
                }
                if let pods = cluster.clusterCIDR, pods.contains(nodeIP) {
                    fail(draft.context, "node_ip", "\"\(nodeIP)\" is inside cluster_cidr \"\(pods)\"; node addresses must be outside the pod range")
                }
                if let services = cluster.serviceCIDR, services.contains(nodeIP) {
                    fail(draft.context, "node_ip", "\"\(nodeIP)\" is inside service_cidr \"\(services)\"; node addresses must be outside the service range")
                }
            }
        }

        // Agents register through registration_address: it must be a server, or a name or floating address
        // the API certificate carries (tls_san), or TLS fails.
        if let config = cluster.config, let address = config.registrationAddress, drafts.allSatisfy(\.roleUsable) {
            let context = InventoryTableContext(table: TOMLTable(), path: "cluster", keyPrefix: "cluster.", label: "[cluster]", hostIndex: nil)
            let ip = IPv6Address(address)
            let inSAN = config.tlsSAN.contains { $0 == address || (ip != nil && IPv6Address($0) == ip) }
            let owner = ip.flatMap { ip in drafts.first { $0.nodeIP == ip } }
            if let owner, owner.role == .agent {
                fail(context, "registration_address", "\"\(address)\" is the node_ip of agent \(label(owner)); agents register with a server")
            } else if owner == nil, !inSAN {
                fail(context, "registration_address", """
                    "\(address)" is neither a server's node_ip nor in tls_san; the API certificate would not name it: \
                    add it to tls_san
                    """)
            }
        }

        if !drafts.isEmpty, drafts.allSatisfy(\.roleUsable) {
            let servers = drafts.filter { $0.role == .server }.count
            if servers == 0 {
                fail(nil, "hosts", "no host has role = \"server\"; at least one server is required")
            } else if servers % 2 == 0 {
                warnings.append(InventoryWarning(key: "hosts", message: """
                    \(servers) servers make an even number of etcd members, which tolerates no more failures than \
                    \(servers - 1); an odd number is recommended
                    """))
            }
        }

        if let pods = cluster.clusterCIDR, let capacity = pods.subnetCount(prefixLength: 64), UInt64(drafts.count) > capacity {
            let context = InventoryTableContext(table: TOMLTable(), path: "cluster", keyPrefix: "cluster.", label: "[cluster]", hostIndex: nil)
            fail(context, "cluster_cidr", """
                "\(pods)" has room for \(capacity) nodes (one /64 each) but the inventory lists \(drafts.count) hosts; \
                use a shorter prefix
                """)
        }
    }

    func label(_ draft: HostDraft) -> String {
        if let name = draft.name { return "hosts[\(draft.index)] \"\(name)\"" }
        return "hosts[\(draft.index)]"
    }
}
