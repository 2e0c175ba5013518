import Foundation
import TOMLKit

/// The engine's keys, in the order they are documented (a module's come from its ``InventorySchema``).
enum InventoryKeys {
    static let ssh = [
        "user", "port", "identity", "known_hosts", "host_key_policy", "connect_timeout", "command_timeout", "forks",
        "keepalive_interval", "become", "jump", "config",
    ]
    static let host = ["name", "address", "role", "user", "port", "identity", "become", "jump"]
}

/// The result of looking a key up: absent, present but unusable (an error was recorded), or a value.
public enum InventoryLookup<Value> {
    case missing
    case invalid
    case present(Value)

    public var value: Value? {
        if case .present(let value) = self { return value }
        return nil
    }
}

/// One TOML table being read: where it is and how its keys are named in messages.
public struct InventoryTable {
    let table: TOMLTable
    /// Source-map path of the table: `cluster`, `hosts[2]`.
    public let path: String
    /// Prefix of keys in messages: `cluster.` for sections, empty inside `[[hosts]]`.
    public let keyPrefix: String
    /// Shown as `[cluster]` or `[[hosts]]` in messages.
    public let label: String
    public let hostIndex: Int?
    public var hostName: String?

    init(table: TOMLTable, path: String, keyPrefix: String, label: String, hostIndex: Int?, hostName: String? = nil) {
        self.table = table
        self.path = path
        self.keyPrefix = keyPrefix
        self.label = label
        self.hostIndex = hostIndex
        self.hostName = hostName
    }

    /// A top-level section by name, without its content: where a check across sections files a problem.
    public static func section(_ name: String) -> InventoryTable {
        InventoryTable(table: TOMLTable(), path: name, keyPrefix: "\(name).", label: "[\(name)]", hostIndex: nil)
    }

    /// The table has this key.
    public func contains(_ key: String) -> Bool { table[key] != nil }
}

/// Reads the TOML tree, collecting every error and warning, then builds the ``Inventory``. Modules read their
/// sections and host keys through it (``InventorySchema``): typed look-ups that record a located error for a
/// value of the wrong type, and ``fail(_:_:_:)`` and ``warn(_:_:_:)`` for their own rules.
public struct InventoryReader {
    /// The inventory file as named to `load`/`parse`.
    public let file: String
    public let absoluteFile: String
    /// The directory holding the file: relative paths resolve against it.
    public let directory: String
    let sourceMap: InventorySourceMap
    let schema: InventorySchema
    var errors: [InventoryError] = []
    public internal(set) var warnings: [InventoryWarning] = []
    /// What the modules' sections yielded so far; becomes ``Inventory/sections``.
    public var sections = SectionValues()
    /// The ssh config file read when `[ssh] config` is unset (nil: none); see Inventory+SSHConfig.swift.
    var defaultSSHConfig: String?
    /// The ssh config in use, once `[ssh]` is read.
    var sshConfig: SSHConfig?

    init(file: String, sourceMap: InventorySourceMap, schema: InventorySchema) {
        self.file = file
        self.absoluteFile = InventoryPaths.absolutePath(file)
        self.directory = (absoluteFile as NSString).deletingLastPathComponent
        self.sourceMap = sourceMap
        self.schema = schema
    }

    /// How many errors were recorded so far (a reader of several keys compares it before and after).
    public var errorCount: Int { errors.count }

    // MARK: - Recording

    public mutating func fail(_ context: InventoryTable?, _ key: String?, _ message: String) {
        let locationPath: String
        if let context {
            locationPath = key.map { "\(context.path).\($0)" } ?? context.path
        } else {
            locationPath = key ?? ""
        }
        let position = sourceMap.locate(locationPath)
        let fullKey = key.map { (context?.keyPrefix ?? "") + $0 }
        errors.append(InventoryError(
            file: file, line: position?.line, column: position?.column, key: fullKey, host: context?.hostName,
            hostIndex: context?.hostIndex, message: message
        ))
    }

    /// Records a warning not tied to a table (`key` is written whole, e.g. `ssh.identity`).
    public mutating func warn(key: String?, _ message: String) {
        warnings.append(InventoryWarning(key: key, message: message))
    }

    public mutating func warn(_ context: InventoryTable?, _ key: String?, _ message: String) {
        let fullKey = key.map { (context?.keyPrefix ?? "") + $0 }
        let host = context?.hostName ?? context?.hostIndex.map { "hosts[\($0)]" }
        warnings.append(InventoryWarning(key: fullKey, host: host, message: message))
    }

    // MARK: - Typed access

    static func describe(_ value: TOMLValueConvertible) -> String {
        switch value.type {
        case .table: return "a table"
        case .array: return "an array"
        case .string: return "string \(InventorySyntax.tomlQuoted(value.string ?? ""))"
        default: return "\(value.type) \(value.debugDescription)"
        }
    }

    mutating func typeError(_ context: InventoryTable, _ key: String, expected: String, found: TOMLValueConvertible) {
        fail(context, key, "expected \(expected), found \(InventoryReader.describe(found))")
    }

    /// A key's value as `T`: missing, present, or a type error naming what was `expected`.
    mutating func typed<T>(_ context: InventoryTable, _ key: String, expected: String,
                           _ extract: (TOMLValueConvertible) -> T?) -> InventoryLookup<T> {
        guard let value = context.table[key] else { return .missing }
        guard let typed = extract(value) else {
            typeError(context, key, expected: expected, found: value)
            return .invalid
        }
        return .present(typed)
    }

    public mutating func string(_ context: InventoryTable, _ key: String) -> InventoryLookup<String> {
        typed(context, key, expected: "a string") { $0.string }
    }

    public mutating func integer(_ context: InventoryTable, _ key: String) -> InventoryLookup<Int> {
        typed(context, key, expected: "an integer") { $0.int }
    }

    public mutating func number(_ context: InventoryTable, _ key: String) -> InventoryLookup<Double> {
        guard let value = context.table[key] else { return .missing }
        if let number = value.int { return .present(Double(number)) }
        if let number = value.double {
            guard number.isFinite else {
                fail(context, key, "\(number) is not a finite number of seconds")
                return .invalid
            }
            return .present(number)
        }
        typeError(context, key, expected: "a number of seconds", found: value)
        return .invalid
    }

    public mutating func boolean(_ context: InventoryTable, _ key: String) -> InventoryLookup<Bool> {
        typed(context, key, expected: "a boolean (true or false)") { $0.bool }
    }

    public mutating func strings(_ context: InventoryTable, _ key: String) -> InventoryLookup<[String]> {
        guard let value = context.table[key] else { return .missing }
        guard let array = value.array else {
            typeError(context, key, expected: "an array of strings", found: value)
            return .invalid
        }
        var result: [String] = []
        for (position, element) in array.enumerated() {
            guard let text = element.string else {
                fail(context, key, "expected an array of strings, but element \(position) is \(InventoryReader.describe(element))")
                return .invalid
            }
            result.append(text)
        }
        return .present(result)
    }

    public mutating func enumeration<E: RawRepresentable & CaseIterable>(_ context: InventoryTable, _ key: String, _: E.Type) -> InventoryLookup<E>
    where E.RawValue == String {
        switch string(context, key) {
        case .missing: return .missing
        case .invalid: return .invalid
        case .present(let text):
            if let value = E(rawValue: text) { return .present(value) }
            let choices = E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            fail(context, key, "\(InventorySyntax.tomlQuoted(text)) is not one of \(choices)")
            return .invalid
        }
    }

    public mutating func path(_ context: InventoryTable, _ key: String) -> InventoryLookup<String> {
        switch string(context, key) {
        case .missing: return .missing
        case .invalid: return .invalid
        case .present(let text):
            guard !text.isEmpty else {
                fail(context, key, "must not be empty")
                return .invalid
            }
            guard let resolved = InventoryPaths.resolvePath(text, relativeTo: directory) else {
                fail(context, key, "\(InventorySyntax.tomlQuoted(text)): cannot expand '~': no such user")
                return .invalid
            }
            return .present(resolved)
        }
    }

    /// Reports keys outside `allowed`, suggesting the closest allowed key.
    mutating func checkKeys(_ context: InventoryTable, allowed: [String]) {
        for key in context.table.keys where !allowed.contains(key) {
            var message = "unknown key in \(context.label)"
            if let suggestion = InventorySyntax.suggestion(for: key, among: allowed) {
                message += "; did you mean \"\(suggestion)\"?"
            } else {
                message += " (allowed: \(allowed.joined(separator: ", ")))"
            }
            fail(context, key, message)
        }
    }
}
