import Foundation
import TOMLKit

extension Playbook {
    static let stepKeys: Set<String> = ["name", "action", "target", "needs", "description", "timeout", "serial", "after"]

    /// Loads and checks a playbook: every action known, every parameter read, every template
    /// variable known, every `needs` produced by an earlier step — before any host is touched.
    public static func load(path: String, registry: ActionRegistry) throws -> Playbook {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw PlaybookError(file: path, message: "cannot read the playbook file")
        }
        return try parse(toml: text, path: path, registry: registry)
    }

    /// `path:line` of `key` in the `index`th (0-based) `[[steps]]` table of `text`, or `path` when not found.
    static func located(_ path: String, _ text: String, step index: Int, key: String) -> String {
        var seen = -1
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[[") && line.replacingOccurrences(of: " ", with: "") == "[[steps]]" { seen += 1; continue }
            guard seen == index, line.hasPrefix(key) else { continue }
            let rest = line.dropFirst(key.count).trimmingCharacters(in: .whitespaces)
            if rest.hasPrefix("=") { return "\(path):\(n + 1)" }
        }
        return path
    }

    public static func parse(toml text: String, path: String, registry: ActionRegistry) throws -> Playbook {
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw PlaybookError(file: "\(path):\(e.source.begin.line):\(e.source.begin.column)", message: e.description)
        }
        for key in root.keys where !["name", "description", "steps"].contains(key) {
            throw PlaybookError(file: path, key: key, message: "unknown top-level key (expected name, description, [[steps]])")
        }
        let name = root["name"]?.string ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let description = root["description"]?.string ?? ""
        guard let stepArray = root["steps"]?.array, !stepArray.isEmpty else {
            throw PlaybookError(file: path, key: "steps", message: "a playbook needs at least one [[steps]] table")
        }
        var steps: [Step] = []
        var producers: [String: String] = [:]
        for (i, item) in stepArray.enumerated() {
            guard let table = item.table else {
                throw PlaybookError(file: path, key: "steps[\(i + 1)]", message: "each step must be a table")
            }
            let values = convert(table)
            guard case .string(let stepName)? = values["name"], !stepName.isEmpty else {
                throw PlaybookError(file: path, key: "steps[\(i + 1)].name", message: "every step needs a name")
            }
            if steps.contains(where: { $0.name == stepName }) {
                throw PlaybookError(file: path, step: stepName, key: "name", message: "duplicate step name")
            }
            guard case .string(let actionName)? = values["action"] else {
                throw PlaybookError(file: path, step: stepName, key: "action", message: "is required (a string)")
            }
            let target: Target
            switch values["target"] {
            case nil: target = .all
            case .string(let t)?: target = try Target(parsing: t)
            case .array(let items)?:
                target = .hosts(try items.map {
                    guard case .string(let s) = $0 else {
                        throw PlaybookError(file: path, step: stepName, key: "target", message: "host names must be strings")
                    }
                    return s
                })
            case let other?:
                throw PlaybookError(file: path, step: stepName, key: "target", message: "expected a string or an array of host names, found \(other.typeName)")
            }
            func stringList(_ key: String, _ what: String) throws -> [String] {
                guard let value = values[key] else { return [] }
                guard case .array(let items) = value else {
                    throw PlaybookError(file: path, step: stepName, key: key, message: "expected an array of \(what)")
                }
                return try items.map {
                    guard case .string(let s) = $0 else {
                        throw PlaybookError(file: path, step: stepName, key: key, message: "expected an array of \(what)")
                    }
                    return s
                }
            }
            let needs = try stringList("needs", "value names")
            for s in needs where producers[s] == nil {
                throw PlaybookError(file: path, step: stepName, key: "needs",
                    message: "\"\(s)\" is not produced by an earlier step"
                        + (producers.isEmpty ? "" : " (produced: \(producers.keys.sorted().joined(separator: ", ")))"))
            }
            let after = try stringList("after", "step names")
            let earlier = steps.map(\.name)
            for s in after where !earlier.contains(s) {
                throw PlaybookError(file: path, step: stepName, key: "after",
                    message: "\"\(s)\" is not an earlier step" + suggestion(for: s, among: earlier)
                        + (earlier.isEmpty ? "" : " (earlier: \(earlier.joined(separator: ", ")))"))
            }
            var timeout: Double?
            switch values["timeout"] {
            case nil: break
            case .int(let v)?: timeout = Double(v)
            case .double(let v)?: timeout = v
            default: throw PlaybookError(file: path, step: stepName, key: "timeout", message: "expected a number of seconds")
            }
            if let t = timeout, let problem = Seconds.problem(t) {
                throw PlaybookError(file: located(path, text, step: i, key: "timeout"), step: stepName, key: "timeout",
                                    message: problem)
            }
            var serial: Int?
            switch values["serial"] {
            case nil: break
            case .int(let n)? where n >= 1: serial = n
            default:
                throw PlaybookError(file: path, step: stepName, key: "serial",
                                    message: "expected a whole number ≥ 1: how many hosts may run this step at once")
            }
            // `timeout` is the step's, and also visible to the action (wait_for's "how long to keep trying").
            let params = StepParams(file: path, step: stepName,
                                    values: values.filter { !stepKeys.contains($0.key) || $0.key == "timeout" },
                                    alsoAllowed: ["timeout"], variables: registry.variables)
            for key in values.keys {
                let at = located(path, text, step: i, key: key)
                if at != path, let n = Int(at.dropFirst(path.count + 1)) { params.lines[key] = n }
            }
            let action = try registry.make(actionName, params)
            for value in action.produces {
                if let other = producers[value] {
                    throw PlaybookError(file: path, step: stepName, message: "\"\(value)\" is already produced by step \"\(other)\"")
                }
                producers[value] = stepName
            }
            let description: String
            if case .string(let d)? = values["description"] { description = d } else { description = "" }
            steps.append(Step(name: stepName, description: description, target: target, actionName: actionName,
                              action: action, needs: needs, timeout: timeout, serial: serial, after: after))
        }
        return Playbook(name: name, path: path, description: description, steps: steps)
    }

    static func convert(_ table: TOMLTable) -> [String: ParamValue] {
        var out: [String: ParamValue] = [:]
        for key in table.keys {
            if let v = table[key] { out[key] = convert(v) }
        }
        return out
    }

    static func convert(_ v: TOMLValueConvertible) -> ParamValue {
        if let t = v.table { return .table(convert(t)) }
        if let a = v.array { return .array(a.map { convert($0) }) }
        if let b = v.bool { return .bool(b) }
        if let i = v.int { return .int(i) }
        if let d = v.double { return .double(d) }
        if let s = v.string { return .string(s) }
        return .string(v.debugDescription)
    }

    /// Checks the playbook against an inventory: every named target host exists.
    public func check(against inventory: Inventory) throws {
        for step in steps {
            if case .hosts(let names) = step.target {
                for n in names where inventory.host(named: n) == nil {
                    throw PlaybookError(file: path, step: step.name, key: "target",
                        message: "\"\(n)\" is neither all, servers, agents, first-server, other-servers nor a host in \(inventory.path)")
                }
            }
        }
    }
}
