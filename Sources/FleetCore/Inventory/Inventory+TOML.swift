import Foundation
import TOMLKit

extension Inventory {
    /// Reads and validates an inventory file.
    ///
    /// Throws ``InventoryError`` when the file cannot be read or is not valid TOML, and ``InventoryErrors`` (every
    /// problem found, in file order) when it is TOML but breaks the inventory rules.
    public static func load(path: String) throws -> Inventory {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: InventoryPaths.absolutePath(path)))
        } catch {
            throw InventoryError(file: path, message: "cannot read the inventory file: \(readFailureReason(path: path, error: error))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw InventoryError(file: path, message: "the inventory file is not valid UTF-8 text")
        }
        return try parse(toml: text, path: path)
    }

    /// Validates inventory text. `path` names the file in messages and anchors relative paths (`identity`,
    /// `known_hosts`, `airgap_dir`) and the default cluster name; `airgap_dir` is checked on disk.
    public static func parse(toml: String, path: String) throws -> Inventory {
        if let nul = toml.firstIndex(of: "\0") {
            let prefix = toml[..<nul]
            let line = prefix.reduce(1) { $1 == "\n" ? $0 + 1 : $0 }
            throw InventoryError(file: path, line: line, message: "TOML syntax error: the file contains a NUL character")
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: toml)
        } catch let error as TOMLParseError {
            throw InventoryError(
                file: path, line: error.source.begin.line, column: error.source.begin.column,
                message: "TOML syntax error: \(error.description)"
            )
        } catch {
            throw InventoryError(file: path, message: "TOML syntax error: \(error)")
        }
        var loader = InventoryLoader(file: path, sourceMap: InventorySourceMap(text: toml))
        return try loader.load(root: root)
    }

    private static func readFailureReason(path: String, error: Error) -> String {
        var isDirectory: ObjCBool = false
        let absolute = InventoryPaths.absolutePath(path)
        if !FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory) { return "no such file" }
        if isDirectory.boolValue { return "it is a directory" }
        if !FileManager.default.isReadableFile(atPath: absolute) { return "permission denied" }
        return error.localizedDescription
    }
}

/// The allowed keys of each table, in the order they are documented.
enum InventoryKeys {
    static let root = ["cluster", "k3s", "ssh", "preflight", "hosts"]
    static let cluster = [
        "name", "cluster_cidr", "service_cidr", "cluster_dns", "flannel_ipv6_masq", "disable", "k3s_version", "tls_san",
        "registration_address",
    ]
    static let k3s = ["source", "airgap_dir"]
    static let ssh = [
        "user", "port", "identity", "known_hosts", "host_key_policy", "connect_timeout", "command_timeout", "forks",
        "become",
    ]
    static let preflight = ["probe", "check_internet"]
    static let host = ["name", "address", "role", "user", "port", "identity", "node_ip", "ra_interface", "become"]
    /// Components K3s can be told not to deploy.
    static let disableable = [
        "traefik", "servicelb", "local-storage", "metrics-server", "coredns", "network-policy", "helm-controller",
    ]
}

/// The result of looking a key up: absent, present but unusable (an error was recorded), or a value.
enum InventoryLookup<Value> {
    case missing
    case invalid
    case present(Value)

    var value: Value? {
        if case .present(let value) = self { return value }
        return nil
    }
}

/// One TOML table being read: where it is and how its keys are named in messages.
struct InventoryTableContext {
    let table: TOMLTable
    /// Source-map path of the table: `cluster`, `hosts[2]`.
    let path: String
    /// Prefix of keys in messages: `cluster.` for sections, empty inside `[[hosts]]`.
    let keyPrefix: String
    /// Shown as `[cluster]` or `[[hosts]]` in messages.
    let label: String
    let hostIndex: Int?
    var hostName: String?
}

/// Reads the TOML tree, collecting every error and warning, then builds the ``Inventory``.
struct InventoryLoader {
    let file: String
    let absoluteFile: String
    let directory: String
    let sourceMap: InventorySourceMap
    var errors: [InventoryError] = []
    var warnings: [InventoryWarning] = []

    init(file: String, sourceMap: InventorySourceMap) {
        self.file = file
        self.absoluteFile = InventoryPaths.absolutePath(file)
        self.directory = (absoluteFile as NSString).deletingLastPathComponent
        self.sourceMap = sourceMap
    }

    // MARK: - Recording

    mutating func fail(_ context: InventoryTableContext?, _ key: String?, _ message: String) {
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

    mutating func warn(_ context: InventoryTableContext?, _ key: String?, _ message: String) {
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

    mutating func typeError(_ context: InventoryTableContext, _ key: String, expected: String, found: TOMLValueConvertible) {
        fail(context, key, "expected \(expected), found \(InventoryLoader.describe(found))")
    }

    mutating func string(_ context: InventoryTableContext, _ key: String) -> InventoryLookup<String> {
        guard let value = context.table[key] else { return .missing }
        guard let text = value.string else {
            typeError(context, key, expected: "a string", found: value)
            return .invalid
        }
        return .present(text)
    }

    mutating func integer(_ context: InventoryTableContext, _ key: String) -> InventoryLookup<Int> {
        guard let value = context.table[key] else { return .missing }
        guard let number = value.int else {
            typeError(context, key, expected: "an integer", found: value)
            return .invalid
        }
        return .present(number)
    }

    mutating func number(_ context: InventoryTableContext, _ key: String) -> InventoryLookup<Double> {
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

    mutating func boolean(_ context: InventoryTableContext, _ key: String) -> InventoryLookup<Bool> {
        guard let value = context.table[key] else { return .missing }
        guard let flag = value.bool else {
            typeError(context, key, expected: "a boolean (true or false)", found: value)
            return .invalid
        }
        return .present(flag)
    }

    mutating func strings(_ context: InventoryTableContext, _ key: String) -> InventoryLookup<[String]> {
        guard let value = context.table[key] else { return .missing }
        guard let array = value.array else {
            typeError(context, key, expected: "an array of strings", found: value)
            return .invalid
        }
        var result: [String] = []
        for (position, element) in array.enumerated() {
            guard let text = element.string else {
                fail(context, key, "expected an array of strings, but element \(position) is \(InventoryLoader.describe(element))")
                return .invalid
            }
            result.append(text)
        }
        return .present(result)
    }

    mutating func enumeration<E: RawRepresentable & CaseIterable>(_ context: InventoryTableContext, _ key: String, _: E.Type) -> InventoryLookup<E>
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

    mutating func path(_ context: InventoryTableContext, _ key: String) -> InventoryLookup<String> {
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
    mutating func checkKeys(_ context: InventoryTableContext, allowed: [String]) {
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

    // MARK: - Loading

    mutating func load(root: TOMLTable) throws -> Inventory {
        for key in root.keys where !InventoryKeys.root.contains(key) {
            var message = "unknown table or key at the top level"
            if let suggestion = InventorySyntax.suggestion(for: key, among: InventoryKeys.root) {
                message += "; did you mean \"\(suggestion)\"?"
            } else {
                message += " (allowed: [cluster], [k3s], [ssh], [preflight], [[hosts]])"
            }
            fail(nil, key, message)
        }

        let clusterContext = section(root, "cluster")
        let k3sContext = section(root, "k3s")
        let sshContext = section(root, "ssh")
        let preflightContext = section(root, "preflight")

        let cluster = readCluster(clusterContext)
        let k3s = readK3s(k3sContext)
        let ssh = readSSH(sshContext)
        let preflight = readPreflight(preflightContext)
        let drafts = readHosts(root, defaults: ssh)

        checkHosts(drafts, cluster: cluster)

        let sortedErrors = errors.enumerated().sorted { lhs, rhs in
            let left = lhs.element.line ?? Int.max
            let right = rhs.element.line ?? Int.max
            return left != right ? left < right : lhs.offset < rhs.offset
        }.map(\.element)
        guard sortedErrors.isEmpty, let clusterConfig = cluster.config, let k3sConfig = k3s, let sshSettings = ssh,
            let preflightConfig = preflight
        else {
            throw InventoryErrors(errors: sortedErrors.isEmpty
                ? [InventoryError(file: file, message: "the inventory could not be read")] : sortedErrors)
        }
        var hosts: [Host] = []
        for draft in drafts {
            guard let host = draft.host else {
                throw InventoryErrors(errors: [
                    InventoryError(file: file, hostIndex: draft.index, message: "this host entry is incomplete"),
                ])
            }
            hosts.append(host)
        }
        return try Inventory(
            path: absoluteFile, cluster: clusterConfig, k3s: k3sConfig, ssh: sshSettings, preflight: preflightConfig,
            hosts: hosts, warnings: warnings
        )
    }

    /// A top-level table, or an empty one when absent or of the wrong type (the error is recorded).
    mutating func section(_ root: TOMLTable, _ name: String) -> InventoryTableContext {
        var table = TOMLTable()
        if let value = root[name] {
            if let found = value.table {
                table = found
            } else {
                fail(nil, name, "expected a table ([\(name)]), found \(InventoryLoader.describe(value))")
            }
        }
        return InventoryTableContext(table: table, path: name, keyPrefix: "\(name).", label: "[\(name)]", hostIndex: nil)
    }
}
