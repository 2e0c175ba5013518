import Foundation

extension Inventory {
    /// Sets string keys of top-level tables in an inventory file (for a verb that records what it
    /// changed, such as a new release), keeping everything else — comments, layout, a comment after the value —
    /// byte for byte. A key that is there gets its value replaced in place; a missing key is added
    /// on the line after its table's header. The new text is validated as a whole before it is
    /// written; the write is atomic (temporary file, fsync, rename) and keeps the file's owner and mode.
    ///
    /// - Returns: the inventory the file now holds, and whether anything was written (false when
    ///   every key already had its value).
    /// - Throws: ``InventoryError`` or ``InventoryErrors``: the file is unreadable or invalid, a
    ///   table is missing, a value is not a one-line string, or the result would not validate.
    @discardableResult
    public static func setStrings(
        inFile path: String, _ changes: [(table: String, key: String, value: String)], schema: InventorySchema
    ) throws -> (inventory: Inventory, changed: Bool) {
        let original = try readText(path: path)
        let existing = try parse(toml: original, path: path, schema: schema)
        var lines = original.components(separatedBy: "\n")
        var changed = false
        for change in changes {
            let map = InventorySourceMap(text: lines.joined(separator: "\n"))
            let quoted = InventorySyntax.tomlQuoted(change.value)
            if let at = map.positions["\(change.table).\(change.key)"] {
                let i = at.line - 1
                guard let replaced = replacingValue(in: lines[i], quoted: quoted) else {
                    throw InventoryError(file: path, line: at.line, key: "\(change.table).\(change.key)",
                                         message: "is not a one-line string fleet can rewrite; set it to \(quoted) by hand")
                }
                if replaced != lines[i] {
                    lines[i] = replaced
                    changed = true
                }
            } else if let header = map.positions[change.table] {
                lines.insert("\(change.key) = \(quoted)", at: header.line)
                changed = true
            } else {
                throw InventoryError(file: path, key: change.table, message: "has no [\(change.table)] table to set \(change.key) in")
            }
        }
        guard changed else { return (existing, false) }
        return (try rewrite(path: path, text: lines.joined(separator: "\n"), schema: schema), true)
    }

    /// `key = "old"  # note` → `key = NEW  # note`; nil when the value is not a one-line string.
    static func replacingValue(in line: String, quoted: String) -> String? {
        guard let eq = line.firstIndex(of: "=") else { return nil }
        var i = line.index(after: eq)
        while i < line.endIndex, line[i] == " " || line[i] == "\t" { i = line.index(after: i) }
        guard i < line.endIndex, line[i] == "\"" || line[i] == "'" else { return nil }
        let quote = line[i]
        if line[i...].hasPrefix(String(repeating: quote, count: 3)) { return nil }
        var j = line.index(after: i)
        while j < line.endIndex {
            if quote == "\"", line[j] == "\\" {
                j = line.index(after: j)
                if j < line.endIndex { j = line.index(after: j) }
                continue
            }
            if line[j] == quote { break }
            j = line.index(after: j)
        }
        guard j < line.endIndex else { return nil }
        return String(line[..<i]) + quoted + String(line[line.index(after: j)...])
    }
}
