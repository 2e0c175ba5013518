import Foundation

public struct TemplateError: Error, Sendable {
    public var message: String
}

/// A string with `{{ variable }}` references to inventory values.
///
/// Variables are checked when the playbook loads, so an unknown name fails before any host is
/// touched. Rendered `.shell`, every value is shell-quoted: inventory values never reach a shell
/// unquoted. Secrets are not template variables at all: they travel on stdin or in 0600 files.
public struct Template: Sendable, Equatable, CustomStringConvertible {
    enum Part: Sendable, Equatable {
        case text(String)
        case variable(String)
    }

    /// The engine's variables; a module adds its own (``InventorySchema/variables``, ``ActionRegistry/variables``).
    public static let engineVariables: [String] = [
        "host.name", "host.address", "host.role", "host.user", "first_server.name", "first_server.address",
        "inventory_dir",
    ]

    let parts: [Part]
    public let source: String

    /// `known`: the variables it may name (the registry's, with the modules').
    public init(_ source: String, known: [String] = Template.engineVariables) throws {
        self.source = source
        var parts: [Part] = []
        var rest = Substring(source)
        while let open = rest.range(of: "{{") {
            if open.lowerBound > rest.startIndex { parts.append(.text(String(rest[..<open.lowerBound]))) }
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw TemplateError(message: "unclosed \"{{\" in \"\(source)\"")
            }
            let name = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            guard known.contains(name) else {
                throw TemplateError(message: "unknown template variable \"\(name)\""
                    + suggestion(for: name, among: known)
                    + "; known: " + known.joined(separator: ", "))
            }
            parts.append(.variable(name))
            rest = rest[close.upperBound...]
        }
        if !rest.isEmpty { parts.append(.text(String(rest))) }
        self.parts = parts
    }

    /// The first variable written inside shell quotes (`"… {{ v }} …"` or `'{{ v }}'`), or nil. Rendered
    /// for a shell, every value is quoted by fleet; inside the author's own quotes that quoting
    /// breaks (in double quotes `$(…)` in a value would run), so such a command is refused at load.
    public var variableInsideQuotes: String? {
        enum Quote { case none, single, double }
        var state = Quote.none
        for part in parts {
            switch part {
            case .variable(let name):
                if state != .none { return name }
            case .text(let text):
                var escaped = false
                for c in text {
                    if escaped { escaped = false; continue }
                    switch (state, c) {
                    case (.none, "\\"), (.double, "\\"): escaped = true
                    case (.none, "'"): state = .single
                    case (.none, "\""): state = .double
                    case (.single, "'"), (.double, "\""): state = .none
                    default: break
                    }
                }
            }
        }
        return nil
    }

    public enum Mode: Sendable { case shell, plain }

    public func render(_ vars: TemplateVariables, _ mode: Mode) -> String {
        parts.map { part in
            switch part {
            case .text(let t): return t
            case .variable(let name):
                let value = vars[name]
                return mode == .shell ? shellQuote(value) : value
            }
        }.joined()
    }

    public var description: String { source }
}

/// Values for template variables on one host.
///
/// A value is computed when a template asks for it, not when the variables are made: they are made
/// for every (host, step) of a run, and most templates name one or two of them (computing all of
/// them, some of which walk the inventory, made a 1000-host plan quadratic).
public struct TemplateVariables: Sendable {
    /// Values given by hand; they win over the host's and the inventory's.
    public var values: [String: String]
    private let source: Source?

    private struct Source: Sendable {
        var host: Host
        var inventory: Inventory
    }

    public subscript(name: String) -> String {
        if let v = values[name] { return v }
        guard let source else { return "" }
        return Self.value(name, host: source.host, inventory: source.inventory) ?? ""
    }

    /// The engine's variables, then the ones the inventory's schema declares.
    public init(host: Host, inventory: Inventory) {
        values = [:]
        source = Source(host: host, inventory: inventory)
    }

    public init(values: [String: String]) {
        self.values = values
        source = nil
    }

    static func value(_ name: String, host: Host, inventory: Inventory) -> String? {
        switch name {
        case "host.name": return host.name
        case "host.address": return host.address
        case "host.role": return host.role.rawValue
        case "host.user": return host.ssh.user
        case "inventory_dir": return inventory.directory
        // An inventory always has a first server (its initialiser refuses one without).
        case "first_server.name": return inventory.firstServer.name
        case "first_server.address": return inventory.firstServer.address
        default: return inventory.schema.variables.first { $0.name == name }?.value(host, inventory)
        }
    }
}
