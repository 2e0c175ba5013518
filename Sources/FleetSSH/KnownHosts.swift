import Crypto
import Foundation

/// Reading and appending OpenSSH `known_hosts` files.
///
/// libssh2 does the authoritative check (`libssh2_knownhost_checkp`); this type answers the two
/// questions libssh2 cannot: which key types are recorded for a host (so the handshake asks for
/// one of them: libssh2 1.10 would otherwise pick ECDSA before ed25519), and how to append a
/// line for `accept-new`.
public enum KnownHosts {
    /// The name a host is recorded under: `host` for port 22, `[host]:port` otherwise.
    public static func entryName(host: String, port: Int) -> String {
        port == 22 ? host : "[\(host)]:\(port)"
    }

    /// Key types (e.g. `ssh-ed25519`) recorded for `host`:`port`, in file order, hashed entries included.
    public static func keyTypes(in path: String, host: String, port: Int) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        let name = entryName(host: host, port: port)
        var types: [String] = []
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            var fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if let first = fields.first, first.hasPrefix("@") {
                // @revoked / @cert-authority lines: never used to pick a key type.
                _ = fields.removeFirst()
                continue
            }
            guard fields.count >= 3 else { continue }
            if matches(pattern: fields[0], name: name), !types.contains(fields[1]) {
                types.append(fields[1])
            }
        }
        return types
    }

    static func matches(pattern: String, name: String) -> Bool {
        if pattern.hasPrefix("|1|") {
            let parts = pattern.split(separator: "|", omittingEmptySubsequences: true)
            guard parts.count == 3,
                  let salt = Data(base64Encoded: String(parts[1])),
                  let hash = Data(base64Encoded: String(parts[2])) else { return false }
            let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(name.utf8), using: SymmetricKey(data: salt))
            return Data(mac) == hash
        }
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

    /// OpenSSH-style glob with `*` and `?`.
    static func glob(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.lowercased()), t = Array(text.lowercased())
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == "?" || p[pi] == t[ti] {
                pi += 1; ti += 1
            } else if pi < p.count, p[pi] == "*" {
                star = pi; mark = ti; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }

    /// OpenSSH's `SHA256:` fingerprint of a key blob (unpadded base64 of its SHA-256).
    public static func fingerprint(keyBlob: Data) -> String {
        let digest = Data(SHA256.hash(data: keyBlob))
        var b64 = digest.base64EncodedString()
        while b64.hasSuffix("=") { b64.removeLast() }
        return "SHA256:" + b64
    }

    private static let appendLock = NSLock()

    /// Appends `name keytype base64` to the file (created 0600 with its directory when missing).
    /// Serialised within the process so concurrent first connections never interleave lines.
    public static func append(path: String, host: String, port: Int, keyType: String, keyBlob: Data) throws {
        let line = "\(entryName(host: host, port: port)) \(keyType) \(keyBlob.base64EncodedString())\n"
        appendLock.lock()
        defer { appendLock.unlock() }
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty {
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o700])
        }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw SSHError.knownHostsFile(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        // Start on a fresh line when the file does not end with one.
        var prefix = ""
        let size = lseek(fd, 0, SEEK_END)
        if size > 0, let handle = FileHandle(forReadingAtPath: path) {
            handle.seek(toFileOffset: UInt64(size - 1))
            if handle.readData(ofLength: 1) != Data("\n".utf8) { prefix = "\n" }
            try? handle.close()
        }
        let bytes = Array((prefix + line).utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            throw SSHError.knownHostsFile(path: path, reason: "short write: \(String(cString: strerror(errno)))")
        }
        fsync(fd)
    }
}
