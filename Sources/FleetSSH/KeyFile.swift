import Foundation

/// Looks at a private key file before libssh2 does, to refuse what cannot work with a clear reason.
enum KeyFile {
    static let rsaAdvice = "libssh2 1.10 signs with RSA only through SHA-1, which OpenSSH 8.8 and later refuse; "
        + "use an ed25519 key (ssh-keygen -t ed25519) or ECDSA"

    /// Key files found usable, by path, size and modification time: every connection of a run
    /// uses the same one, which need not be read and parsed a thousand times.
    private static let usable = UsableKeys()

    private final class UsableKeys: @unchecked Sendable {
        private let lock = NSLock()
        private var seen = Set<String>()
        func contains(_ key: String) -> Bool { lock.lock(); defer { lock.unlock() }; return seen.contains(key) }
        func insert(_ key: String) { lock.lock(); seen.insert(key); lock.unlock() }
    }

    static func checkUsable(path: String) throws {
        var st = stat()
        let key = stat(path, &st) == 0 ? "\(path)\0\(st.st_size)\0\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)" : nil
        if let key, usable.contains(key) { return }
        try checkUsableUncached(path: path)
        if let key { usable.insert(key) }
    }

    private static func checkUsableUncached(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw SSHError.unsupportedKey(path: path, reason: "no such file")
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw SSHError.unsupportedKey(path: path, reason: "cannot be read")
        }
        if keyType(pem: text) == "ssh-rsa" {
            throw SSHError.unsupportedKey(path: path, reason: "is an RSA key: " + rsaAdvice)
        }
    }

    /// The key type of a PEM or OpenSSH private key file, when it can be told without decrypting.
    static func keyType(pem text: String) -> String? {
        if text.contains("BEGIN RSA PRIVATE KEY") { return "ssh-rsa" }
        if text.contains("BEGIN EC PRIVATE KEY") { return "ecdsa" }
        if text.contains("BEGIN DSA PRIVATE KEY") { return "ssh-dss" }
        guard text.contains("BEGIN OPENSSH PRIVATE KEY") else { return nil }
        let body = text.split(whereSeparator: \.isNewline)
            .filter { !$0.hasPrefix("-----") }
            .joined()
        guard let data = Data(base64Encoded: body) else { return nil }
        // "openssh-key-v1\0", cipher, kdf, kdf options, key count, then the first public key blob.
        var reader = SSHWireReader(data: data)
        guard reader.skip(15),
              reader.string() != nil, reader.string() != nil, reader.string() != nil,
              reader.uint32() != nil,
              let pub = reader.string() else { return nil }
        return blobType(pub)
    }

    /// The algorithm name at the start of a public key blob.
    static func blobType(_ blob: Data) -> String? {
        var reader = SSHWireReader(data: blob)
        return reader.string().flatMap { String(data: $0, encoding: .utf8) }
    }
}

/// Reads SSH wire-format fields (RFC 4251): uint32 and length-prefixed strings.
struct SSHWireReader {
    let data: Data
    var offset = 0

    init(data: Data) { self.data = Data(data) }

    mutating func skip(_ n: Int) -> Bool {
        guard offset + n <= data.count else { return false }
        offset += n
        return true
    }

    mutating func uint32() -> UInt32? {
        guard offset + 4 <= data.count else { return nil }
        let v = data[offset..<offset + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        offset += 4
        return v
    }

    mutating func string() -> Data? {
        guard let n = uint32(), offset + Int(n) <= data.count else { return nil }
        defer { offset += Int(n) }
        return data.subdata(in: offset..<offset + Int(n))
    }
}
