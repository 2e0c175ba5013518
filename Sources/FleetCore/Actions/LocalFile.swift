import Foundation

/// Files on this machine that steps send to hosts (upload sources, air-gap files): hashed once per
/// process while their size and modification time stay the same, and read memory-mapped, so hosts
/// uploading the same large file at once share its pages.
public enum LocalFile {
    private final class Cache: @unchecked Sendable {
        let lock = NSLock()
        var digests: [String: (size: UInt64, modified: Date, sha: String)] = [:]
    }

    private static let cache = Cache()

    /// SHA-256 of a local file, cached by path, size and modification time.
    public static func sha256(of path: String) throws -> String {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        let size = (attributes[.size] as? NSNumber)?.uint64Value ?? 0
        let modified = attributes[.modificationDate] as? Date ?? .distantPast
        cache.lock.lock()
        if let hit = cache.digests[path], hit.size == size, hit.modified == modified {
            cache.lock.unlock()
            return hit.sha
        }
        cache.lock.unlock()
        let sha = sha256Hex(try contents(of: path))
        cache.lock.lock()
        cache.digests[path] = (size, modified, sha)
        cache.lock.unlock()
        return sha
    }

    /// The file's bytes, memory-mapped.
    public static func contents(of path: String) throws -> Data {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw TaskFailure("cannot read \(path) on this machine: \(error.localizedDescription)")
        }
    }
}
