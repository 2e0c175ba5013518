import Crypto
import Foundation

/// An OpenSSH `known_hosts` file, parsed once into an index by host name.
///
/// fleet checks host keys itself against this index (the offered key blob compared byte for
/// byte) instead of libssh2's known-hosts code, which reads `@revoked` as a host name, fails the
/// whole file on one bad line, and would re-read the file for every connection.
///
/// Understood: plain names and `[host]:port`, comma lists, `*`/`?` patterns with `!` negation,
/// hashed names (`|1|salt|hash`), `@revoked` keys, comments and blank lines. `@cert-authority`
/// lines and malformed or over-long lines are skipped, each with a warning naming its line.
public struct KnownHostsIndex: Sendable {
    public struct Entry: Sendable, Equatable {
        public var keyType: String
        public var key: Data
        public var revoked: Bool
        /// 1-based line in the file (0 for an entry appended during this run).
        public var line: Int
    }

    /// A hashed host name: HMAC-SHA1 of the name under its own salt. The HMAC is keyed once
    /// when the file is read; each lookup copies that state (copy-on-write) and hashes the name.
    struct Hashed: @unchecked Sendable {
        var mac: HMAC<Insecure.SHA1>
        var hash: Data
        var entry: Entry
    }

    /// A line whose host field has a wildcard or a negation: matched against each name asked for.
    struct Patterned: Sendable {
        var patterns: String
        var entry: Entry
    }

    /// Longer lines are skipped (a 16384-bit RSA key takes about 2.8 KB).
    public static let maxLineLength = 16 * 1024

    private(set) var exact: [String: [Entry]] = [:]
    private(set) var patterned: [Patterned] = []
    private(set) var hashed: [Hashed] = []
    /// One line per skipped line: "line N: why".
    public private(set) var warnings: [String] = []
    /// How many usable entries the index holds.
    public private(set) var count = 0

    public init() {}

    /// Parses known_hosts text. Never fails: a line it cannot use is skipped with a warning.
    public init(text: Data) {
        var lineNumber = 0
        text.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            var start = 0
            while start <= bytes.count {
                var end = start
                while end < bytes.count, bytes[end] != 0x0A { end += 1 }
                lineNumber += 1
                if start < bytes.count || end > start {
                    parseLine(UnsafeBufferPointer(rebasing: bytes[start..<end]), number: lineNumber)
                }
                start = end + 1
            }
        }
    }

    private mutating func parseLine(_ line: UnsafeBufferPointer<UInt8>, number: Int) {
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D }
        var lo = 0, hi = line.count
        while lo < hi, isSpace(line[lo]) { lo += 1 }
        while hi > lo, isSpace(line[hi - 1]) { hi -= 1 }
        if lo == hi || line[lo] == UInt8(ascii: "#") { return }
        if hi - lo > Self.maxLineLength {
            warnings.append("line \(number): skipped: longer than \(Self.maxLineLength) bytes")
            return
        }
        var fields: [String] = []
        var i = lo
        while i < hi, fields.count < 4 {
            while i < hi, isSpace(line[i]) { i += 1 }
            var j = i
            while j < hi, !isSpace(line[j]) { j += 1 }
            if j > i { fields.append(String(decoding: UnsafeBufferPointer(rebasing: line[i..<j]), as: UTF8.self)) }
            i = j
        }
        var revoked = false
        if let marker = fields.first, marker.hasPrefix("@") {
            switch marker {
            case "@revoked":
                revoked = true
                fields.removeFirst()
            case "@cert-authority":
                warnings.append("line \(number): skipped: @cert-authority (host certificates) is not supported")
                return
            default:
                warnings.append("line \(number): skipped: unknown marker \(marker)")
                return
            }
        }
        guard fields.count >= 3 else {
            warnings.append("line \(number): skipped: expected host names, key type and key")
            return
        }
        let hosts = fields[0], keyType = fields[1]
        guard let key = Data(base64Encoded: fields[2]), KeyFile.blobType(key) == keyType else {
            warnings.append("line \(number): skipped: the \(keyType) key is not valid base64 of a key of that type")
            return
        }
        let entry = Entry(keyType: keyType, key: key, revoked: revoked, line: number)
        if hosts.hasPrefix("|") {
            let parts = hosts.split(separator: "|", omittingEmptySubsequences: false)
            guard parts.count == 4, parts[1] == "1",
                  let salt = Data(base64Encoded: String(parts[2])), salt.count == 20,
                  let hash = Data(base64Encoded: String(parts[3])), hash.count == 20 else {
                warnings.append("line \(number): skipped: malformed hashed host name")
                return
            }
            hashed.append(Hashed(mac: HMAC<Insecure.SHA1>(key: SymmetricKey(data: salt)), hash: hash, entry: entry))
        } else if hosts.contains(where: { $0 == "*" || $0 == "?" || $0 == "!" }) {
            patterned.append(Patterned(patterns: hosts, entry: entry))
        } else {
            for name in hosts.split(separator: ",") {
                exact[name.lowercased(), default: []].append(entry)
            }
        }
        count += 1
    }

    /// The entries recorded for `host`:`port` (`[host]:port` unless the port is 22), in file order.
    /// A non-22 port never falls back to the host's port-22 entries.
    public func entries(host: String, port: Int) -> [Entry] {
        let name = KnownHosts.entryName(host: host, port: port)
        let lowered = name.lowercased()
        var found = exact[lowered] ?? []
        for p in patterned where KnownHosts.matches(pattern: p.patterns, name: lowered) {
            found.append(p.entry)
        }
        if !hashed.isEmpty {
            let message = Array(lowered.utf8)   // OpenSSH hashes the lower-cased name
            for h in hashed {
                var mac = h.mac
                mac.update(data: message)
                if h.hash.elementsEqual(mac.finalize()) { found.append(h.entry) }
            }
        }
        if found.count > 1 { found.sort { $0.line < $1.line } }
        return found
    }

    mutating func add(_ entry: Entry, host: String, port: Int) {
        exact[KnownHosts.entryName(host: host, port: port).lowercased(), default: []].append(entry)
        count += 1
    }
}

/// What known_hosts says about the key a host offered.
public enum HostKeyVerdict: Equatable, Sendable {
    /// A recorded, not revoked key of this host equals the offered one.
    case known
    /// Nothing is recorded for this host.
    case unknown
    /// Keys are recorded for this host (of any type) but none equals the offered one.
    case changed
    /// The offered key is marked `@revoked`.
    case revoked
}

extension KnownHostsIndex {
    /// Checks an offered key: revoked beats everything; a host with any recorded key whose keys
    /// all differ from the offered one has a changed key, whatever the type.
    public func verdict(host: String, port: Int, keyType: String, key: Data) -> HostKeyVerdict {
        Self.verdict(entries(host: host, port: port), keyType: keyType, key: key)
    }

    static func verdict(_ found: [Entry], keyType: String, key: Data) -> HostKeyVerdict {
        if found.contains(where: { $0.revoked && $0.key == key }) { return .revoked }
        let usable = found.filter { !$0.revoked }
        if usable.contains(where: { $0.keyType == keyType && $0.key == key }) { return .known }
        return usable.isEmpty ? .unknown : .changed
    }

    /// The key types recorded (not revoked) for the host, in file order, without repeats.
    public func keyTypes(host: String, port: Int) -> [String] {
        Self.keyTypes(entries(host: host, port: port))
    }

    static func keyTypes(_ found: [Entry]) -> [String] {
        var types: [String] = []
        for e in found where !e.revoked && !types.contains(e.keyType) {
            types.append(e.keyType)
        }
        return types
    }
}

/// Helpers shared by the index and the store.
public enum KnownHosts {
    /// The name a host is recorded under: `host` for port 22, `[host]:port` otherwise.
    public static func entryName(host: String, port: Int) -> String {
        port == 22 ? host : "[\(host)]:\(port)"
    }

    /// OpenSSH's rule for a comma list of patterns: some pattern matches and no negated one does.
    static func matches(pattern: String, name: String) -> Bool {
        var matched = false
        for alternative in pattern.split(separator: ",") {
            var alt = Substring(alternative)
            let negated = alt.hasPrefix("!")
            if negated { alt = alt.dropFirst() }
            if glob(String(alt), name) {
                if negated { return false }
                matched = true
            }
        }
        return matched
    }

    /// OpenSSH-style glob with `*` and `?`, case-insensitive.
    static func glob(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.lowercased().utf8), t = Array(text.lowercased().utf8)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == UInt8(ascii: "?") || p[pi] == t[ti] {
                pi += 1; ti += 1
            } else if pi < p.count, p[pi] == UInt8(ascii: "*") {
                star = pi; mark = ti; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }

    /// OpenSSH's `SHA256:` fingerprint of a key blob (unpadded base64 of its SHA-256).
    public static func fingerprint(keyBlob: Data) -> String {
        let digest = Data(SHA256.hash(data: keyBlob))
        var b64 = digest.base64EncodedString()
        while b64.hasSuffix("=") { b64.removeLast() }
        return "SHA256:" + b64
    }

    /// The line appended for `accept-new`.
    static func line(host: String, port: Int, keyType: String, keyBlob: Data) -> String {
        "\(entryName(host: host, port: port)) \(keyType) \(keyBlob.base64EncodedString())\n"
    }
}
