import Foundation

/// What a `[[hosts]] address` turned out to be.
public enum InventoryAddressKind: Equatable, Sendable {
    case ipv6(IPv6Address)
    case ipv4
    case dnsName
}

/// Small, pure checks used by inventory validation (public: modules validate their keys with them).
public enum InventorySyntax {
    typealias AddressKind = InventoryAddressKind

    /// Classifies an address as written in the file (brackets already removed). Returns an explanation on failure.
    static func classifyAddress(_ text: String) -> Result<AddressKind, AddressProblem> {
        if text.isEmpty { return .failure(.init("must not be empty")) }
        if text.contains("%") {
            return .failure(.init("has a zone index ('%'); zones are not supported, use a global or unique-local address"))
        }
        if text.contains(":") {
            if let address = IPv6Address(text) { return .success(.ipv6(address)) }
            if let colon = text.lastIndex(of: ":") {
                let before = String(text[..<colon])
                let after = text[text.index(after: colon)...]
                if !after.isEmpty, after.allSatisfy({ $0.isASCII && $0.isNumber }),
                    InventorySyntax.isIPv4Literal(before) || isDNSName(before)
                {
                    return .failure(.init("is not an address: write the port in the host's `port` key, not in `address`"))
                }
            }
            return .failure(.init("is not an IPv6 address"))
        }
        let looksNumeric = text.allSatisfy { ($0.isASCII && $0.isNumber) || $0 == "." }
        if looksNumeric {
            return InventorySyntax.isIPv4Literal(text) ? .success(.ipv4) : .failure(.init("is not a valid IPv4 address"))
        }
        if isDNSName(text) { return .success(.dnsName) }
        return .failure(.init(
            "is not an IPv6 address, an IPv4 address or a DNS name (letters, digits and '-' in dot-separated labels of at most 63 characters)"
        ))
    }

    struct AddressProblem: Error, Equatable {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// A DNS name: labels of letters, digits and '-', not starting or ending with '-', 1...63 characters each,
    /// at most 253 in all, an optional trailing dot, and a last label that is not all digits.
    public static func isDNSName(_ text: String) -> Bool {
        var name = Substring(text)
        if name.hasSuffix(".") { name = name.dropLast() }
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            guard (1...63).contains(label.utf8.count) else { return false }
            guard label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else { return false }
            if label.hasPrefix("-") || label.hasSuffix("-") { return false }
        }
        if let last = labels.last, last.allSatisfy({ $0.isNumber }) { return false }
        return true
    }

    /// Why `name` cannot be a Kubernetes node name (RFC 1123 subdomain), or nil when it can.
    public static func nodeNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.utf8.count > 253 { return "is longer than 253 characters" }
        let allowed = name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") }
        if !allowed {
            return "is not a valid node name: use lowercase letters, digits, '-' and '.' only (it becomes the Kubernetes node name, RFC 1123)"
        }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            if label.isEmpty { return "is not a valid node name: it has an empty label (leading, trailing or doubled '.')" }
            if label.utf8.count > 63 { return "is not a valid node name: the label \"\(label)\" is longer than 63 characters" }
            if label.hasPrefix("-") || label.hasSuffix("-") {
                return "is not a valid node name: the label \"\(label)\" must start and end with a letter or digit"
            }
        }
        return nil
    }

    /// Why `name` cannot be a Linux interface name, or nil. Only ASCII letters, digits, '-', '_' and
    /// '.' (what interface names use in practice): the value reaches commands and sysctl keys.
    public static func interfaceNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.utf8.count > 15 { return "is longer than 15 characters, the Linux limit for interface names" }
        if name == "." || name == ".." || name.hasPrefix("-") || !name.unicodeScalars.allSatisfy(isNameCharacter) {
            return "is not a valid interface name (ASCII letters, digits, '-', '_' and '.' only, not starting with '-')"
        }
        return nil
    }

    /// Why `user` cannot be a login name, or nil: ASCII letters, digits, '_', '.' and '-', not
    /// starting with '-' or '.', at most 32 characters (what useradd accepts; the value reaches
    /// commands and the SSH login).
    public static func userNameProblem(_ user: String) -> String? {
        if user.isEmpty { return "is not a valid user name: it is empty" }
        if user.utf8.count > 32 { return "is not a valid user name: longer than 32 characters" }
        if user.hasPrefix("-") || user.hasPrefix(".") || !user.unicodeScalars.allSatisfy(isNameCharacter) {
            return "is not a valid user name (ASCII letters, digits, '_', '.' and '-' only, not starting with '-' or '.')"
        }
        return nil
    }

    static func isNameCharacter(_ c: Unicode.Scalar) -> Bool {
        c.isASCII && (("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
            || c == "-" || c == "_" || c == ".")
    }

    /// The allowed key closest to `key`, when it is within edit distance 2.
    public static func suggestion(for key: String, among allowed: [String]) -> String? {
        closest(to: key, among: allowed)
    }

    /// `text` as a TOML basic string, quotes included.
    public static func tomlQuoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += String(format: "\\u%04X", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// Path helpers for inventory files: `~` expansion and resolution against the inventory's directory.
enum InventoryPaths {
    /// The current user's home directory: `$HOME`, else the account database.
    static func homeDirectory() -> String {
        if let home = ProcessInfo.processInfo.environment["HOME"], !home.isEmpty { return home }
        return NSHomeDirectory()
    }

    /// Expands a leading `~` or `~/`; returns nil for `~user` forms whose user is unknown.
    static func expandHome(_ path: String) -> String? {
        guard path.hasPrefix("~") else { return path }
        if path == "~" { return InventoryPaths.homeDirectory() }
        if path.hasPrefix("~/") { return InventoryPaths.homeDirectory() + String(path.dropFirst(1)) }
        let rest = path.dropFirst()
        let user = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard let home = FileManager.default.homeDirectory(forUser: user)?.path else { return nil }
        return home + String(rest.dropFirst(user.count))
    }

    /// Expands `~` and makes a relative path absolute against `base`, removing `.` and `..` components without touching
    /// the file system; nil when a `~user` is unknown.
    static func resolvePath(_ path: String, relativeTo base: String) -> String? {
        guard let expanded = InventoryPaths.expandHome(path) else { return nil }
        let joined = expanded.hasPrefix("/") ? expanded : base + "/" + expanded
        return InventoryPaths.normalizeAbsolutePath(joined)
    }

    /// Removes empty, `.` and `..` components of an absolute path.
    static func normalizeAbsolutePath(_ path: String) -> String {
        var parts: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." {
                if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(component)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// `path` made absolute against the current directory and normalized.
    static func absolutePath(_ path: String) -> String {
        if path.hasPrefix("/") { return InventoryPaths.normalizeAbsolutePath(path) }
        return InventoryPaths.normalizeAbsolutePath(FileManager.default.currentDirectoryPath + "/" + path)
    }
}
