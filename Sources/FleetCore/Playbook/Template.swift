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
public struct TemplateVariables: Sendable {
    public var values: [String: String]

    public subscript(name: String) -> String { values[name] ?? "" }

    /// The engine's variables, then the ones the inventory's schema declares.
    public init(host: Host, inventory: Inventory) {
        // An inventory always has a first server (its initialiser refuses one without).
        let first = inventory.firstServer
        values = [
            "host.name": host.name,
            "host.address": host.address,
            "host.role": host.role.rawValue,
            "host.user": host.ssh.user,
            "inventory_dir": inventory.directory,
            "first_server.name": first.name,
            "first_server.address": first.address,
        ]
        for variable in inventory.schema.variables {
            values[variable.name] = variable.value(host, inventory)
        }
    }

    public init(values: [String: String]) { self.values = values }
}
