import FleetCore
import Foundation

/// Reads a host's K3s keys, `node_ip` and `ra_interface`, into ``NodeSettings``.
enum NodeKeys {
    static let keys = ["node_ip", "ra_interface"]

    static let hostKeys = InventoryHostKeys(keys: keys) { reader, entry in read(&reader, &entry) }

    static func read(_ r: inout InventoryReader, _ entry: inout HostEntry) {
        warnIfNotRoot(&r, entry)
        let nodeIP = readNodeIP(&r, entry)
        let raInterface = readRAInterface(&r, entry)
        if let nodeIP { entry.values[NodeSettings.self] = NodeSettings(nodeIP: nodeIP, raInterface: raInterface) }
    }

    static func warnIfNotRoot(_ r: inout InventoryReader, _ entry: HostEntry) {
        guard let settings = entry.ssh, settings.user != "root", settings.become == .none else { return }
        r.warn(entry.table, "become", """
            user "\(settings.user)" is not root and become = "none": installing K3s needs root; set \
            become = "sudo" (passwordless) or connect as root
            """)
    }

    /// `node_ip`, defaulting to an IPv6 `address`; nil when missing or invalid (the error is recorded).
    static func readNodeIP(_ r: inout InventoryReader, _ entry: HostEntry) -> IPv6Address? {
        let t = entry.table
        var nodeIP: IPv6Address?
        switch r.string(t, "node_ip") {
        case .missing:
            switch entry.addressKind {
            case .ipv6(let address):
                if let problem = nodeIPProblem(address) {
                    r.fail(t, "node_ip", """
                        is not set, so it defaults to address "\(address)", which \(problem); set node_ip to the \
                        node's global or unique-local IPv6 address
                        """)
                } else {
                    nodeIP = address
                }
            case .ipv4, .dnsName:
                let kind = entry.addressKind == .ipv4 ? "an IPv4 address" : "a DNS name"
                r.fail(t, "node_ip", """
                    is required when address is not an IPv6 literal (address "\(entry.address ?? "")" is \(kind)): \
                    set the node's IPv6 address
                    """)
            case nil:
                break
            }
        case .invalid: break
        case .present(let text):
            if let address = IPv6Address(text) {
                if let problem = nodeIPProblem(address) {
                    r.fail(t, "node_ip", "\(InventorySyntax.tomlQuoted(text)) \(problem); use the node's global or unique-local IPv6 address")
                } else {
                    nodeIP = address
                }
            } else {
                r.fail(t, "node_ip", "\(InventorySyntax.tomlQuoted(text)) is not an IPv6 address\(ipv4Hint(text)); node_ip must be the node's IPv6 address")
            }
        }
        if let nodeIP, nodeIP.isDocumentation {
            r.warn(t, "node_ip", "\"\(nodeIP)\" is in 2001:db8::/32, a range reserved for documentation")
        }
        return nodeIP
    }

    /// Why `address` cannot be a node IP, or nil.
    static func nodeIPProblem(_ address: IPv6Address) -> String? {
        if address.isUnspecified { return "is the unspecified address" }
        if address.isLoopback { return "is the loopback address" }
        if address.isLinkLocal { return "is link-local (fe80::/10), which other nodes cannot route to" }
        if address.isMulticast { return "is a multicast address" }
        if address.isIPv4Mapped { return "is an IPv4-mapped address; the node needs a real IPv6 address" }
        return nil
    }

    static func readRAInterface(_ r: inout InventoryReader, _ entry: HostEntry) -> String? {
        guard case .present(let interface) = r.string(entry.table, "ra_interface") else { return nil }
        if let problem = InventorySyntax.interfaceNameProblem(interface) {
            r.fail(entry.table, "ra_interface", "\(InventorySyntax.tomlQuoted(interface)) \(problem)")
            return nil
        }
        return interface
    }
}
