import Foundation
import TOMLKit

/// One `[[hosts]]` entry as far as it could be read: what the engine's keys yielded, and in `values` what the
/// modules' host keys did. Checks across hosts (``InventoryCheck``) see every entry, valid or not.
public struct HostEntry {
    /// The 0-based position in `[[hosts]]`.
    public let index: Int
    public let table: InventoryTable
    public var name: String?
    public var address: String?
    public var addressKind: InventoryAddressKind?
    public var role: HostRole?
    /// False when `role` is missing or wrong: checks that count roles stay quiet then.
    public var roleUsable = true
    /// The effective SSH settings, when every connection key was valid.
    public var ssh: SSHSettings?
    /// What the modules' host keys yielded.
    public var values = SectionValues()
    /// No error was recorded for this entry.
    public var valid = true

    init(index: Int, table: InventoryTable) {
        self.index = index
        self.table = table
    }

    var host: Host? {
        guard valid, let name, let address, let role, let ssh else { return nil }
        return Host(name: name, address: address, role: role, ssh: ssh, values: values)
    }

    /// `hosts[2] "node-3"`, or `hosts[2]` without a usable name: how messages name another entry.
    public var label: String {
        if let name { return "hosts[\(index)] \"\(name)\"" }
        return "hosts[\(index)]"
    }
}

extension InventoryReader {
    /// Every key a `[[hosts]]` entry may have: the engine's, then the modules'.
    var hostKeys: [String] { InventoryKeys.host + schema.hostKeys.flatMap(\.keys) }

    mutating func readHosts(_ root: TOMLTable, defaults: SSHSettings?) -> [HostEntry] {
        guard let value = root["hosts"] else {
            fail(nil, "hosts", "at least one [[hosts]] entry is required")
            return []
        }
        guard let array = value.array else {
            if value.table != nil {
                fail(nil, "hosts", "must be a list of hosts: write each one as a [[hosts]] table (double brackets)")
            } else {
                fail(nil, "hosts", "expected a list of [[hosts]] tables, found \(InventoryReader.describe(value))")
            }
            return []
        }
        if array.isEmpty {
            fail(nil, "hosts", "at least one [[hosts]] entry is required")
            return []
        }
        var entries: [HostEntry] = []
        for (index, element) in array.enumerated() {
            guard let table = element.table else {
                let context = InventoryTable(table: TOMLTable(), path: "hosts[\(index)]", keyPrefix: "", label: "[[hosts]]", hostIndex: index)
                fail(context, nil, "expected a table with name, address and role, found \(InventoryReader.describe(element))")
                continue
            }
            entries.append(readHost(table, index: index, defaults: defaults ?? SSHSettings()))
        }
        return entries
    }

    mutating func readHost(_ table: TOMLTable, index: Int, defaults: SSHSettings) -> HostEntry {
        var context = InventoryTable(table: table, path: "hosts[\(index)]", keyPrefix: "", label: "[[hosts]]", hostIndex: index)
        if let rawName = table["name"]?.string, !rawName.isEmpty { context.hostName = rawName }
        var entry = HostEntry(index: index, table: context)
        let errorCount = errors.count
        checkKeys(context, allowed: hostKeys)
        readHostName(context, into: &entry)
        switch string(context, "address") {
        case .missing:
            fail(context, "address", "is required: the IPv6 address (or IPv4 address or DNS name) SSH connects to")
        case .invalid: break
        case .present(let raw):
            readAddress(raw, context: context, into: &entry)
        }
        readRole(context, into: &entry)
        var settings = defaults
        if applyConnectionKeys(context, to: &settings) {
            for key in SSHSettings.trackedKeys + ["address"] where context.contains(key) { settings.origins[key] = "[[hosts]]" }
            entry.ssh = settings
            applySSHConfig(to: &entry)
        }
        for keys in schema.hostKeys { keys.read(&self, &entry) }
        entry.valid = errors.count == errorCount
        return entry
    }

    mutating func readHostName(_ context: InventoryTable, into entry: inout HostEntry) {
        switch string(context, "name") {
        case .missing:
            fail(context, "name", "is required: the host's Kubernetes node name, e.g. name = \"node-1\"")
        case .invalid: break
        case .present(let name):
            if let problem = InventorySyntax.nodeNameProblem(name) {
                fail(context, "name", "\(InventorySyntax.tomlQuoted(name)) \(problem)")
            } else {
                entry.name = name
            }
        }
    }

    mutating func readRole(_ context: InventoryTable, into entry: inout HostEntry) {
        switch enumeration(context, "role", HostRole.self) {
        case .missing:
            fail(context, "role", "is required: role = \"server\" or role = \"agent\"")
            entry.roleUsable = false
        case .invalid:
            entry.roleUsable = false
        case .present(let role):
            entry.role = role
        }
    }

    mutating func readAddress(_ raw: String, context: InventoryTable, into entry: inout HostEntry) {
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
            entry.address = text
            entry.addressKind = kind
        case .failure(let problem):
            fail(context, "address", "\(InventorySyntax.tomlQuoted(raw)) \(problem.reason)")
        }
    }

    // MARK: - Checks across hosts

    mutating func checkHosts(_ entries: [HostEntry]) {
        var names: [String: HostEntry] = [:]
        var endpoints: [String: HostEntry] = [:]
        for entry in entries {
            if let name = entry.name {
                if let first = names[name] {
                    fail(entry.table, "name", "\"\(name)\" is used twice: \(first.label) has the same name; node names must be unique")
                } else {
                    names[name] = entry
                }
            }
            if let address = entry.address, let kind = entry.addressKind, let port = entry.ssh?.port {
                let canonical: String
                switch kind {
                case .ipv6(let parsed): canonical = parsed.description
                case .ipv4: canonical = address
                case .dnsName: canonical = address.lowercased().hasSuffix(".") ? String(address.lowercased().dropLast()) : address.lowercased()
                }
                let endpoint = "\(canonical) port \(port)"
                if let first = endpoints[endpoint] {
                    fail(entry.table, "address", "\"\(address)\" (port \(port)) is also the address of \(first.label); each host needs its own address")
                } else {
                    endpoints[endpoint] = entry
                }
            }
        }
        if !entries.isEmpty, entries.allSatisfy(\.roleUsable), !entries.contains(where: { $0.role == .server }) {
            fail(nil, "hosts", "no host has role = \"server\"; at least one server is required")
        }
    }
}
