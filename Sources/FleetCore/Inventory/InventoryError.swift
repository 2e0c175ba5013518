import Foundation

/// One problem with an inventory file, located as precisely as the file allows.
///
/// `description` reads like a compiler diagnostic:
/// `inventory/home.toml:12:1: hosts[2] "node-3" key "address": "fd00::zz" is not an IPv6 address`.
public struct InventoryError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The inventory file as it was named to `load`/`parse`.
    public var file: String
    /// 1-based line, when known.
    public var line: Int?
    /// 1-based column, when known.
    public var column: Int?
    /// The offending key: `ssh.port` for a table key, `address` for a key of a `[[hosts]]` entry.
    public var key: String?
    /// The host's name when the problem is inside `[[hosts]]` and the entry has a usable name.
    public var host: String?
    /// The 0-based position of the `[[hosts]]` entry, when the problem is inside one.
    public var hostIndex: Int?
    /// What is wrong, naming the value and the rule.
    public var message: String

    public init(
        file: String, line: Int? = nil, column: Int? = nil, key: String? = nil, host: String? = nil,
        hostIndex: Int? = nil, message: String
    ) {
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.host = host
        self.hostIndex = hostIndex
        self.message = message
    }

    public var description: String {
        var location = file
        if let line {
            location += ":\(line)"
            if let column { location += ":\(column)" }
        }
        var subject: [String] = []
        if let hostIndex {
            subject.append("hosts[\(hostIndex)]")
        }
        if let host {
            subject.append(hostIndex == nil ? "host \"\(host)\"" : "\"\(host)\"")
        }
        if let key {
            subject.append("key \"\(key)\"")
        }
        if subject.isEmpty { return "\(location): \(message)" }
        return "\(location): \(subject.joined(separator: " ")): \(message)"
    }
}

/// Every problem found while validating an inventory, in file order.
public struct InventoryErrors: Error, CustomStringConvertible, Sendable, Equatable {
    public var errors: [InventoryError]

    public init(errors: [InventoryError]) {
        self.errors = errors
    }

    public var description: String {
        errors.map(\.description).joined(separator: "\n")
    }
}

/// Something that loads but is probably not what was meant.
public struct InventoryWarning: Sendable, CustomStringConvertible, Equatable, Hashable {
    public var key: String?
    public var host: String?
    public var message: String

    public init(key: String? = nil, host: String? = nil, message: String) {
        self.key = key
        self.host = host
        self.message = message
    }

    public var description: String {
        var subject: [String] = []
        if let host { subject.append("host \"\(host)\"") }
        if let key { subject.append("key \"\(key)\"") }
        if subject.isEmpty { return "warning: \(message)" }
        return "warning: \(subject.joined(separator: " ")): \(message)"
    }
}
