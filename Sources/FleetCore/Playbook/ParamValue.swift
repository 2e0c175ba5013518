import Foundation

/// A step parameter as written in the playbook.
public indirect enum ParamValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case array([ParamValue])
    case table([String: ParamValue])

    public var typeName: String {
        switch self {
        case .string: return "string"
        case .int: return "integer"
        case .double: return "float"
        case .bool: return "boolean"
        case .array: return "array"
        case .table: return "table"
        }
    }

    /// Scalars as text (the form a sysctl value or a template takes).
    public var scalarText: String? {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .bool(let b): return b ? "true" : "false"
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .table(let t): return "{" + t.keys.sorted().map { "\($0) = \(t[$0]!)" }.joined(separator: ", ") + "}"
        case .string(let s): return "\"\(s)\""
        default: return scalarText ?? ""
        }
    }
}

/// A step's parameters, read by its action. Every read names the file, step and key on error, and
/// `finish()` refuses keys the action did not read, so a typo never passes silently.
public final class StepParams: @unchecked Sendable {
    public let file: String
    public let step: String
    public let values: [String: ParamValue]
    /// The template variables its templates may name.
    public let variables: [String]
    private var read: Set<String> = []
    /// The line of each key in the file, where the loader knows it.
    public var lines: [String: Int] = [:]

    /// `alsoAllowed`: keys `finish()` accepts even when the action does not read them.
    public init(file: String, step: String, values: [String: ParamValue], alsoAllowed: Set<String> = [],
                variables: [String] = Template.engineVariables) {
        self.file = file
        self.step = step
        self.values = values
        self.variables = variables
        self.read = alsoAllowed
    }

    public func error(_ key: String?, _ message: String) -> PlaybookError {
        PlaybookError(file: file, step: step, key: key, message: message)
    }

    private func value(_ key: String) -> ParamValue? {
        read.insert(key)
        return values[key]
    }

    public func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw error(key, "expected a string, found \(v.typeName)") }
        return s
    }

    public func requiredString(_ key: String) throws -> String {
        guard let s = try string(key) else { throw error(key, "is required") }
        return s
    }

    public func template(_ key: String) throws -> Template? {
        guard let s = try string(key) else { return nil }
        do { return try Template(s, known: variables) } catch let e as TemplateError { throw error(key, e.message) }
    }

    /// A template that becomes a shell command: no variable may sit inside quotes (fleet quotes values).
    public func shellTemplate(_ key: String) throws -> Template? {
        guard let t = try template(key) else { return nil }
        if let name = t.variableInsideQuotes {
            throw PlaybookError(file: lines[key].map { "\(file):\($0)" } ?? file, step: step, key: key,
                                message: "{{ \(name) }} is inside quotes; fleet shell-quotes every value itself, and "
                                    + "inside quotes that quoting breaks: remove the quotes around it")
        }
        return t
    }

    public func requiredShellTemplate(_ key: String) throws -> Template {
        guard let t = try shellTemplate(key) else { throw error(key, "is required") }
        return t
    }

    public func requiredTemplate(_ key: String) throws -> Template {
        guard let t = try template(key) else { throw error(key, "is required") }
        return t
    }

    public func int(_ key: String) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard case .int(let i) = v else { throw error(key, "expected an integer, found \(v.typeName)") }
        return i
    }

    public func number(_ key: String) throws -> Double? {
        guard let v = value(key) else { return nil }
        switch v {
        case .int(let i): return Double(i)
        case .double(let d) where d.isFinite: return d
        case .double(let d): throw error(key, "\(d) is not a finite number")
        default: throw error(key, "expected a number, found \(v.typeName)")
        }
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw error(key, "expected a boolean, found \(v.typeName)") }
        return b
    }

    public func stringList(_ key: String) throws -> [String]? {
        guard let v = value(key) else { return nil }
        guard case .array(let items) = v else { throw error(key, "expected an array of strings, found \(v.typeName)") }
        return try items.map {
            guard case .string(let s) = $0 else { throw error(key, "expected an array of strings, found a \($0.typeName) in it") }
            return s
        }
    }

    /// A table of scalar values, as text, keys sorted.
    public func scalarTable(_ key: String) throws -> [(String, String)]? {
        guard let v = value(key) else { return nil }
        guard case .table(let t) = v else { throw error(key, "expected a table, found \(v.typeName)") }
        return try t.keys.sorted().map { k in
            guard let s = t[k]!.scalarText else { throw error("\(key).\(k)", "expected a string, number or boolean") }
            return (k, s)
        }
    }

    /// Throws for any parameter no read asked for.
    public func finish(action: String) throws {
        let unknown = Set(values.keys).subtracting(read).sorted()
        if let first = unknown.first {
            throw error(first, "unknown parameter for action \"\(action)\"" + suggestion(for: first, among: Array(read)))
        }
    }
}
