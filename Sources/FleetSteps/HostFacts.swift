import FleetCore
import Foundation

/// Several read-only commands run in one round trip, each introduced by a marker line, and the
/// output split back into sections by name.
struct FactScript {
    static let prefix = "@@fleet-fact:"

    private(set) var parts: [String] = []

    /// Adds a section: its marker, then `command` (whose failure does not stop the script).
    mutating func add(_ name: String, _ command: String) {
        parts.append("echo \(FactScript.prefix)\(name); { \(command); } 2>/dev/null")
    }

    /// Adds every section of `other` (section names must not repeat).
    mutating func add(_ other: FactScript) {
        parts += other.parts
    }

    /// The whole script; it always exits 0.
    var command: String { (parts + ["true"]).joined(separator: "\n") }

    /// Splits output into named sections (text after the marker line, up to the next marker).
    static func sections(_ output: String) -> [String: String] {
        var result: [String: String] = [:]
        var current: String?
        var lines: [Substring] = []
        func flush() {
            if let current { result[current] = lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n" }
        }
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(prefix) {
                flush()
                current = String(line.dropFirst(prefix.count))
                lines = []
            } else if current != nil {
                lines.append(line)
            }
        }
        if lines.last == "" { lines.removeLast() }
        flush()
        return result
    }
}

/// One line of `ip -6 -o addr show`.
public struct InterfaceAddress: Sendable, Equatable {
    public var interface: String
    public var address: IPv6Address
    public var prefixLength: Int
    public var scope: String
    /// Flags between the scope and the lifetimes: `dynamic`, `temporary`, `mngtmpaddr`, `deprecated`, `nodad`, …
    public var flags: [String]
    /// Seconds, or nil for `forever`.
    public var validLifetime: Int?
    public var preferredLifetime: Int?

    public init(interface: String, address: IPv6Address, prefixLength: Int, scope: String, flags: [String] = [],
                validLifetime: Int? = nil, preferredLifetime: Int? = nil) {
        self.interface = interface
        self.address = address
        self.prefixLength = prefixLength
        self.scope = scope
        self.flags = flags
        self.validLifetime = validLifetime
        self.preferredLifetime = preferredLifetime
    }
}

/// Parsers for the `ip` command's IPv6 output. Pure: tested on fixture text.
public enum IPOutput {
    /// Parses `ip -6 -o addr show`; lines that are not IPv6 addresses are ignored.
    ///
    ///     2: eth0    inet6 2001:db8::5/64 scope global dynamic mngtmpaddr \       valid_lft 86389sec preferred_lft 14389sec
    public static func addresses(_ text: String) -> [InterfaceAddress] {
        var result: [InterfaceAddress] = []
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let inet = words.firstIndex(of: "inet6"), inet >= 1, inet + 1 < words.count else { continue }
            var interface = words[inet - 1]
            if let at = interface.firstIndex(of: "@") { interface = String(interface[..<at]) }
            let cidr = words[inet + 1].split(separator: "/", maxSplits: 1).map(String.init)
            guard let address = IPv6Address(cidr[0]) else { continue }
            let prefix = cidr.count == 2 ? Int(cidr[1]) ?? 128 : 128
            var scope = ""
            var flags: [String] = []
            var valid: Int?
            var preferred: Int?
            var i = inet + 2
            while i < words.count {
                let w = words[i]
                switch w {
                case "scope":
                    if i + 1 < words.count { scope = words[i + 1] }
                    i += 2
                    continue
                case "valid_lft":
                    if i + 1 < words.count { valid = lifetime(words[i + 1]) }
                    i += 2
                    continue
                case "preferred_lft":
                    if i + 1 < words.count { preferred = lifetime(words[i + 1]) }
                    i += 2
                    continue
                case "brd", "peer", "metric", "proto":
                    i += 1  // and their value
                case "\\":
                    break
                default:
                    if !scope.isEmpty, valid == nil { flags.append(w) }
                }
                i += 1
            }
            result.append(InterfaceAddress(interface: interface, address: address, prefixLength: prefix, scope: scope,
                                           flags: flags, validLifetime: valid, preferredLifetime: preferred))
        }
        return result
    }

    /// `forever` → nil, `86389sec` → 86389.
    static func lifetime(_ text: String) -> Int? {
        if text == "forever" { return nil }
        return Int(text.hasSuffix("sec") ? String(text.dropLast(3)) : text) ?? 0
    }

    /// A default route of `ip -6 route show default`.
    public struct DefaultRoute: Sendable, Equatable {
        public var via: IPv6Address?
        public var interfaces: [String]
    }

    /// Parses `ip -6 route show default`, including multipath routes (`nexthop via … dev …` lines).
    /// Returns nil when there is no default route.
    public static func defaultRoute(_ text: String) -> DefaultRoute? {
        var route: DefaultRoute?
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let first = words.first else { continue }
            let isRoute = first == "default" || first == "::/0"
            let isNexthop = first == "nexthop" && route != nil
            guard isRoute || isNexthop else { continue }
            if isRoute {
                // `unreachable default`, `blackhole default` etc. start with another word: not a route out.
                if route != nil { continue }
                route = DefaultRoute(via: nil, interfaces: [])
            }
            if let v = words.firstIndex(of: "via"), v + 1 < words.count, route?.via == nil {
                route?.via = IPv6Address(words[v + 1])
            }
            if let d = words.firstIndex(of: "dev"), d + 1 < words.count, !(route?.interfaces.contains(words[d + 1]) ?? true) {
                route?.interfaces.append(words[d + 1])
            }
        }
        return route
    }
}

/// Name servers listed in resolv.conf text (zone indexes dropped).
enum ResolvConf {
    static func nameservers(_ text: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, words[0] == "nameserver" else { return nil }
            return String(words[1])
        }
    }

    static func ipv6(_ server: String) -> IPv6Address? {
        let bare = server.split(separator: "%", maxSplits: 1).first.map(String.init) ?? server
        return IPv6Address(bare)
    }
}

/// A sysctl key for an interface: the slash form when the name holds a dot (`eth0.100`), which
/// the dotted form would split.
func interfaceSysctlKey(_ interface: String, _ leaf: String) -> String {
    interface.contains(".") ? "net/ipv6/conf/\(interface)/\(leaf)" : "net.ipv6.conf.\(interface).\(leaf)"
}
