import Foundation
import TOMLKit

extension Inventory {
    /// Reads and validates an inventory file.
    ///
    /// Throws ``InventoryError`` when the file cannot be read or is not valid TOML, and ``InventoryErrors`` (every
    /// problem found, in file order) when it is TOML but breaks the inventory rules.
    ///
    /// `defaultSSHConfig`: the OpenSSH client config read when `[ssh] config` is unset, if the file
    /// exists (the CLI passes `~/.ssh/config`; nil reads none, so a library call or a test never
    /// depends on the machine's own).
    public static func load(path: String, schema: InventorySchema, defaultSSHConfig: String? = nil) throws -> Inventory {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: InventoryPaths.absolutePath(path)))
        } catch {
            throw InventoryError(file: path, message: "cannot read the inventory file: \(readFailureReason(path: path, error: error))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw InventoryError(file: path, message: "the inventory file is not valid UTF-8 text")
        }
        return try parse(toml: text, path: path, schema: schema, defaultSSHConfig: defaultSSHConfig)
    }

    /// Validates inventory text against the engine's keys and `schema`'s sections and host keys. `path` names the
    /// file in messages and anchors relative paths (`identity`, `known_hosts`, a module's paths).
    public static func parse(toml: String, path: String, schema: InventorySchema,
                             defaultSSHConfig: String? = nil) throws -> Inventory {
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
        var reader = InventoryReader(file: path, sourceMap: InventorySourceMap(text: toml), schema: schema)
        reader.defaultSSHConfig = defaultSSHConfig
        return try reader.load(root: root)
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

extension InventoryReader {
    // MARK: - Loading

    /// Top-level tables: the modules' sections in their order, then `[ssh]` and `[[hosts]]`.
    var rootKeys: [String] { schema.sections.map(\.name) + ["ssh", "hosts"] }

    mutating func load(root: TOMLTable) throws -> Inventory {
        checkRootKeys(root)
        for spec in schema.sections {
            let table = section(root, spec.name)
            if !spec.openKeys { checkKeys(table, allowed: spec.keys) }
            spec.read(&self, table)
        }
        let ssh = readSSH(section(root, "ssh"))
        let entries = readHosts(root, defaults: ssh)
        checkHosts(entries)
        for check in schema.checks { check.run(&self, entries) }

        let sortedErrors = errors.enumerated().sorted { lhs, rhs in
            let left = lhs.element.line ?? Int.max
            let right = rhs.element.line ?? Int.max
            return left != right ? left < right : lhs.offset < rhs.offset
        }.map(\.element)
        guard sortedErrors.isEmpty, let sshSettings = ssh else {
            throw InventoryErrors(errors: sortedErrors.isEmpty
                ? [InventoryError(file: file, message: "the inventory could not be read")] : sortedErrors)
        }
        var hosts: [Host] = []
        for entry in entries {
            guard let host = entry.host else {
                throw InventoryErrors(errors: [
                    InventoryError(file: file, hostIndex: entry.index, message: "this host entry is incomplete"),
                ])
            }
            hosts.append(host)
        }
        return try Inventory(path: absoluteFile, ssh: sshSettings, hosts: hosts, sections: sections, warnings: warnings,
                             schema: schema)
    }

    mutating func checkRootKeys(_ root: TOMLTable) {
        let allowed = rootKeys
        for key in root.keys where !allowed.contains(key) {
            var message = "unknown table or key at the top level"
            if let suggestion = InventorySyntax.suggestion(for: key, among: allowed) {
                message += "; did you mean \"\(suggestion)\"?"
            } else {
                let tables = allowed.map { $0 == "hosts" ? "[[hosts]]" : "[\($0)]" }
                message += " (allowed: \(tables.joined(separator: ", ")))"
            }
            fail(nil, key, message)
        }
    }

    /// A top-level table, or an empty one when absent or of the wrong type (the error is recorded).
    mutating func section(_ root: TOMLTable, _ name: String) -> InventoryTable {
        var table = TOMLTable()
        if let value = root[name] {
            if let found = value.table {
                table = found
            } else {
                fail(nil, name, "expected a table ([\(name)]), found \(InventoryReader.describe(value))")
            }
        }
        return InventoryTable(table: table, path: name, keyPrefix: "\(name).", label: "[\(name)]", hostIndex: nil)
    }
}
