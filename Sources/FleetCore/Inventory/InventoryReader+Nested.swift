import Foundation
import TOMLKit

/// A TOML value as plain data, for a module that passes a table on (e.g. chart values rendered as YAML).
public indirect enum InventoryValue: Sendable, Hashable, Encodable {
    case string(String)
    case integer(Int)
    case float(Double)
    case bool(Bool)
    case array([InventoryValue])
    /// Keys in sorted order, so that what is rendered from it does not depend on TOML's order.
    case table([String: InventoryValue])

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let v): try c.encode(v)
        case .integer(let v): try c.encode(v)
        case .float(let v): try c.encode(v)
        case .bool(let v): try c.encode(v)
        case .array(let v): try c.encode(v)
        case .table(let v): try c.encode(v)
        }
    }

    /// The table's entries, when this is a table.
    public var entries: [String: InventoryValue]? {
        if case .table(let t) = self { return t }
        return nil
    }

    /// `self` with `other` laid over it: tables merge key by key, anything else is replaced by `other`.
    public func merged(with other: InventoryValue) -> InventoryValue {
        guard case .table(var mine) = self, case .table(let theirs) = other else { return other }
        for (key, value) in theirs {
            mine[key] = mine[key].map { $0.merged(with: value) } ?? value
        }
        return .table(mine)
    }
}

/// Nested tables, open tables and plain values, for sections deeper than one level (`[registries.mirrors."x"]`,
/// `[addons.NAME.values]`).
extension InventoryReader {
    /// A sub-table of `context`: located and named in messages as `parent.key`.
    public mutating func table(_ context: InventoryTable, _ key: String) -> InventoryLookup<InventoryTable> {
        guard let value = context.table[key] else { return .missing }
        guard let table = value.table else {
            typeError(context, key, expected: "a table ([\(context.keyPrefix)\(key)])", found: value)
            return .invalid
        }
        let name = context.keyPrefix + key
        return .present(InventoryTable(table: table, path: "\(context.path).\(key)", keyPrefix: "\(name).",
                                       label: "[\(name)]", hostIndex: context.hostIndex, hostName: context.hostName))
    }

    /// The keys a table holds, sorted.
    public func keys(of context: InventoryTable) -> [String] { context.table.keys.sorted() }

    /// Reports keys of `context` outside `allowed`, with the closest allowed key.
    public mutating func checkKnownKeys(_ context: InventoryTable, allowed: [String]) {
        checkKeys(context, allowed: allowed)
    }

    /// A key's value as plain data (any TOML type but dates and times, which are refused).
    public mutating func plain(_ context: InventoryTable, _ key: String) -> InventoryLookup<InventoryValue> {
        guard let value = context.table[key] else { return .missing }
        switch InventoryReader.plainValue(value) {
        case .success(let plain): return .present(plain)
        case .failure(let problem):
            fail(context, key, problem.message)
            return .invalid
        }
    }

    struct PlainProblem: Error { var message: String }

    static func plainValue(_ value: TOMLValueConvertible, at path: String = "") -> Result<InventoryValue, PlainProblem> {
        if let table = value.table {
            var out: [String: InventoryValue] = [:]
            for key in table.keys {
                guard let element = table[key] else { continue }
                switch plainValue(element, at: path.isEmpty ? key : "\(path).\(key)") {
                case .success(let v): out[key] = v
                case .failure(let e): return .failure(e)
                }
            }
            return .success(.table(out))
        }
        if let array = value.array {
            var out: [InventoryValue] = []
            for (index, element) in array.enumerated() {
                switch plainValue(element, at: "\(path)[\(index)]") {
                case .success(let v): out.append(v)
                case .failure(let e): return .failure(e)
                }
            }
            return .success(.array(out))
        }
        switch value.type {
        case .bool: return .success(.bool(value.bool ?? false))
        case .int: return .success(.integer(value.int ?? 0))
        case .double: return .success(.float(value.double ?? 0))
        case .string: return .success(.string(value.string ?? ""))
        default:
            let at = path.isEmpty ? "" : " at \(path)"
            return .failure(PlainProblem(message: "holds a TOML date or time\(at); write it as a string"))
        }
    }
}
