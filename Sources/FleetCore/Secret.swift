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

/// Replaces every known secret value in text with a mask, and every fragment of one too: any run of
/// `minimumFragment` (8) or more bytes that also occurs in a secret is masked, so a secret cut by a
/// line limit, an output tail or a bounded buffer cannot leak a piece either. Redact before any cut.
public final class Redactor: @unchecked Sendable {
    /// The shortest piece of a secret that is masked wherever it appears.
    public static let minimumFragment = 8
    private let lock = NSLock()
    /// Whole values (4 bytes or more) → mask; shorter than `minimumFragment` they are masked only whole.
    private var values: [String: String] = [:]
    /// Every `minimumFragment`-byte window of every secret of that length or more, packed in a UInt64,
    /// → where it occurs (secret, offset).
    private var windows: [UInt64: [(secret: Int, offset: Int)]] = [:]
    /// The secrets the windows come from, with their masks, to extend a window match to its full length.
    private var long: [(bytes: [UInt8], mask: String)] = []

    public init() {}

    public func register(_ secret: Secret) {
        let v = secret.reveal().trimmingCharacters(in: .whitespacesAndNewlines)
        guard v.utf8.count >= 4 else { return }
        let mask = "<redacted:\(secret.name)>"
        lock.lock(); defer { lock.unlock() }
        values[v] = mask
        let bytes = Array(v.utf8)
        guard bytes.count >= Self.minimumFragment, !long.contains(where: { $0.bytes == bytes }) else { return }
        long.append((bytes, mask))
        for i in 0...(bytes.count - Self.minimumFragment) {
            windows[Self.window(bytes, i), default: []].append((long.count - 1, i))
        }
    }

    static func window<C: RandomAccessCollection>(_ b: C, _ i: C.Index) -> UInt64 where C.Element == UInt8 {
        var w: UInt64 = 0
        var j = i
        for _ in 0..<minimumFragment {
            w = w << 8 | UInt64(b[j])
            j = b.index(after: j)
        }
        return w
    }

    public func redact(_ text: String) -> String {
        lock.lock()
        let snapshot = values, windows = self.windows, long = self.long
        lock.unlock()
        guard !snapshot.isEmpty else { return text }
        var out = text
        // Whole short values first (longer values are covered by the fragment scan below).
        for (value, mask) in snapshot.sorted(by: { $0.key.count > $1.key.count })
        where value.utf8.count < Self.minimumFragment && out.contains(value) {
            out = out.replacingOccurrences(of: value, with: mask)
        }
        guard !long.isEmpty else { return out }
        return Self.maskFragments(out, windows: windows, secrets: long)
    }

    /// Masks every maximal run of text bytes that is a substring (of `minimumFragment` or more bytes)
    /// of a secret. Overlapping or touching runs become one mask.
    static func maskFragments(_ text: String, windows: [UInt64: [(secret: Int, offset: Int)]], secrets: [(bytes: [UInt8], mask: String)]) -> String {
        let t = Array(text.utf8)
        let k = minimumFragment
        guard t.count >= k else { return text }
        var ranges: [(start: Int, end: Int, mask: String)] = []
        var w: UInt64 = 0
        for i in 0..<t.count {
            w = w << 8 | UInt64(t[i])
            let start = i - k + 1
            guard start >= 0, let places = windows[w] else { continue }
            // Inside a run already masked: a longer match would show as a window past its end.
            if let last = ranges.last, last.end > i { continue }
            // The longest secret substring starting here.
            var best = 0, mask = ""
            for (index, offset) in places {
                let s = secrets[index].bytes
                var n = k
                while start + n < t.count, offset + n < s.count, t[start + n] == s[offset + n] { n += 1 }
                if n > best { best = n; mask = secrets[index].mask }
            }
            if let last = ranges.last, last.end >= start {
                ranges[ranges.count - 1].end = max(last.end, start + best)
            } else {
                ranges.append((start, start + best, mask))
            }
        }
        guard !ranges.isEmpty else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(t.count)
        var at = 0
        for r in ranges {
            out += t[at..<r.start]
            out += Array(r.mask.utf8)
            at = r.end
        }
        out += t[at...]
        return String(decoding: out, as: UTF8.self)
    }
}
