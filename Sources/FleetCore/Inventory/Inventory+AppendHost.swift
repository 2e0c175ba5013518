import Foundation

extension Inventory {
    /// Adds a `[[hosts]]` entry at the end of an inventory file (for `fleet add-worker`).
    ///
    /// The file must already be a valid inventory. The text with the new block appended is validated as a whole
    /// before anything is written; the write is atomic (a temporary file in the same directory, fsync, rename), and
    /// the original text, comments and layout are kept byte for byte.
    ///
    /// `extraKeys`: a module's host keys, written as TOML strings after the engine's.
    ///
    /// - Returns: the inventory the file now holds, and `added` false when a host with this name and the same
    ///   address already existed (nothing was written).
    /// - Throws: ``InventoryError`` or ``InventoryErrors``; also when the name exists with another address.
    @discardableResult
    public static func appendHost(
        toFile path: String, name: String, address: String, role: HostRole, user: String?, port: Int?,
        identity: String?, extraKeys: [(key: String, value: String)] = [], schema: InventorySchema
    ) throws -> (inventory: Inventory, added: Bool) {
        let original = try readText(path: path)
        let existing = try parse(toml: original, path: path, schema: schema)

        if let present = existing.host(named: name) {
            if sameAddress(present.address, address) { return (existing, false) }
            throw InventoryError(
                file: path, key: "name", host: name,
                message: "a host named \"\(name)\" already exists with address \"\(present.address)\", not \"\(address)\"; choose another name or edit the file"
            )
        }

        var block = "[[hosts]]\n"
        block += "name = \(InventorySyntax.tomlQuoted(name))\n"
        block += "address = \(InventorySyntax.tomlQuoted(address))\n"
        block += "role = \(InventorySyntax.tomlQuoted(role.rawValue))\n"
        if let user { block += "user = \(InventorySyntax.tomlQuoted(user))\n" }
        if let port { block += "port = \(port)\n" }
        if let identity { block += "identity = \(InventorySyntax.tomlQuoted(identity))\n" }
        for (key, value) in extraKeys { block += "\(key) = \(InventorySyntax.tomlQuoted(value))\n" }

        var separator = ""
        if !original.isEmpty {
            separator = original.hasSuffix("\n") ? "\n" : "\n\n"
        }
        return (try rewrite(path: path, text: original + separator + block, schema: schema), true)
    }

    /// Replaces the inventory file with `text` after it parsed and validated whole (so a bad edit
    /// never reaches the disk), atomically, through a link at `path` to its target.
    static func rewrite(path: String, text: String, schema: InventorySchema) throws -> Inventory {
        let inventory = try parse(toml: text, path: path, schema: schema)
        do {
            try AtomicFile.write(Data(text.utf8), to: InventoryPaths.absolutePath(path), followLink: true)
        } catch let failure as AtomicFile.Failure {
            throw InventoryError(file: path, message: "cannot write the inventory file: \(failure.reason)")
        }
        return inventory
    }

    static func readText(path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: InventoryPaths.absolutePath(path)) else {
            throw InventoryError(file: path, message: "cannot read the inventory file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw InventoryError(file: path, message: "the inventory file is not valid UTF-8 text")
        }
        return text
    }

    /// Compares two addresses as written: parsed when both are IPv6 (brackets allowed), else case-insensitively.
    static func sameAddress(_ lhs: String, _ rhs: String) -> Bool {
        func unbracketed(_ text: String) -> String {
            text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        }
        let left = unbracketed(lhs)
        let right = unbracketed(rhs)
        if let a = IPv6Address(left), let b = IPv6Address(right) { return a == b }
        func normalized(_ text: String) -> String {
            let lowered = text.lowercased()
            return lowered.hasSuffix(".") ? String(lowered.dropLast()) : lowered
        }
        return normalized(left) == normalized(right)
    }
}
