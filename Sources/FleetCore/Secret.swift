import Foundation

/// A value that must never be shown: a join secret one host produces for others, for instance.
///
/// Its `description` is a mask, it is not `Codable`, and it reaches a host only through stdin or a
/// 0600 file. Everything fleet prints or stores passes through a `Redactor` that knows its value.
public struct Secret: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public let name: String
    private let value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    /// The secret's bytes, for stdin or a file upload. Never for a command line or a log.
    public func reveal() -> String { value }
    public var description: String { "<secret \(name)>" }
    public var debugDescription: String { description }
}

/// Replaces every known secret value in text with a mask.
public final class Redactor: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: String] = [:]

    public init() {}

    public func register(_ secret: Secret) {
        let v = secret.reveal().trimmingCharacters(in: .whitespacesAndNewlines)
        guard v.count >= 4 else { return }
        lock.lock(); defer { lock.unlock() }
        values[v] = "<redacted:\(secret.name)>"
        // A credential shaped `<id>::<user>:<password>`: its password alone is secret too.
        if let range = v.range(of: "::"), let colon = v[range.upperBound...].firstIndex(of: ":") {
            let password = String(v[v.index(after: colon)...])
            if password.count >= 8 { values[password] = "<redacted:\(secret.name)>" }
        }
    }

    public func redact(_ text: String) -> String {
        lock.lock(); let snapshot = values; lock.unlock()
        guard !snapshot.isEmpty else { return text }
        var out = text
        for (value, mask) in snapshot.sorted(by: { $0.key.count > $1.key.count }) where out.contains(value) {
            out = out.replacingOccurrences(of: value, with: mask)
        }
        return out
    }
}
