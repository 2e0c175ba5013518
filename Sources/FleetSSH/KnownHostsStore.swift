import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The parsed known_hosts files of this process, shared by every connection.
///
/// A file is read and parsed once (its warnings logged once); each connection then only looks
/// up its own host. A file is read again only when it changed on disk under another writer (its
/// device, inode, size or modification time differ): fleet's own `accept-new` appends update the
/// index in memory and do not count as a change.
public final class KnownHostsStore: @unchecked Sendable {
    /// The store every connection uses unless told otherwise.
    public static let shared = KnownHostsStore()

    private struct Stamp: Equatable {
        var dev: UInt64, ino: UInt64, size: Int64, sec: Int, nsec: Int
    }

    private struct Cached {
        var index: KnownHostsIndex
        var stamp: Stamp?
        /// Lookups already made, by `[host]:port` name (a reconnect or the second question of
        /// one connection costs nothing).
        var found: [String: [KnownHostsIndex.Entry]] = [:]
    }

    private let lock = NSLock()
    private var files: [String: Cached] = [:]
    private var readCounts: [String: Int] = [:]

    public init() {}

    /// How many times `path` was read from disk by this store.
    public func reads(of path: String) -> Int {
        lock.lock(); defer { lock.unlock() }
        return readCounts[path, default: 0]
    }

    private static func stamp(path: String) -> Stamp? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return stamp(st)
    }

    private static func stamp(_ st: stat) -> Stamp {
        Stamp(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino), size: Int64(st.st_size),
              sec: Int(st.st_mtim.tv_sec), nsec: Int(st.st_mtim.tv_nsec))
    }

    /// The index of `path` (empty when the file does not exist). Call with the lock held.
    private func current(_ path: String) throws -> KnownHostsIndex {
        let stamp = Self.stamp(path: path)
        if let cached = files[path], cached.stamp == stamp { return cached.index }
        var index = KnownHostsIndex()
        if stamp != nil {
            readCounts[path, default: 0] += 1
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SSHError.knownHostsFile(path: path, reason: "cannot be read: \(String(cString: strerror(errno)))")
            }
            index = KnownHostsIndex(text: data)
            for w in index.warnings { knownHostsLogger.warning("known_hosts \(path) \(w)") }
        }
        files[path] = Cached(index: index, stamp: stamp)
        return index
    }

    /// The index of `path`, read at most once while the file is unchanged.
    public func index(for path: String) throws -> KnownHostsIndex {
        lock.lock(); defer { lock.unlock() }
        return try current(path)
    }

    /// The entries for one host, looked up once per file version. Call with the lock held.
    private func entries(_ path: String, host: String, port: Int) throws -> [KnownHostsIndex.Entry] {
        let index = try current(path)
        let name = KnownHosts.entryName(host: host, port: port)
        if let found = files[path]?.found[name] { return found }
        let found = index.entries(host: host, port: port)
        files[path]?.found[name] = found
        return found
    }

    /// The key types recorded (not revoked) for a host, in file order: the handshake asks for these first.
    public func keyTypes(path: String, host: String, port: Int) throws -> [String] {
        lock.lock(); defer { lock.unlock() }
        return KnownHostsIndex.keyTypes(try entries(path, host: host, port: port))
    }

    /// Checks an offered key; under `acceptNew` an unknown host's key is appended to the file
    /// (and the verdict is `.known`). Appends are serialised: one writer at a time in this process
    /// (the store's lock) and across processes (`flock` on the file), and the host is looked up
    /// again under the lock, so two connections to one host never append two keys.
    public func check(path: String, host: String, port: Int, keyType: String, key: Data,
                      acceptNew: Bool) throws -> HostKeyVerdict {
        lock.lock(); defer { lock.unlock() }
        let verdict = KnownHostsIndex.verdict(try entries(path, host: host, port: port), keyType: keyType, key: key)
        guard verdict == .unknown, acceptNew else { return verdict }
        let line = KnownHosts.line(host: host, port: port, keyType: keyType, keyBlob: key)
        let st = try Self.append(line: line, path: path)
        var cached = files[path] ?? Cached(index: KnownHostsIndex(), stamp: nil)
        let entry = KnownHostsIndex.Entry(keyType: keyType, key: key, revoked: false, line: 0)
        cached.index.add(entry, host: host, port: port)
        cached.found[KnownHosts.entryName(host: host, port: port), default: []].append(entry)
        // Our own append is already in the index; only another writer's change forces a re-read.
        if cached.stamp == st.before { cached.stamp = st.after }
        files[path] = cached
        return .known
    }

    /// Appends one line under an exclusive `flock`; returns the file's stamps before and after.
    private static func append(line: String, path: String) throws -> (before: Stamp?, after: Stamp?) {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty {
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o700])
        }
        let existed = stamp(path: path)
        let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw SSHError.knownHostsFile(path: path, reason: "cannot be opened for appending: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
        defer { _ = flock(fd, LOCK_UN) }
        var st = stat()
        fstat(fd, &st)
        let before = existed == nil ? nil : stamp(st)
        // Start on a fresh line when the file does not end with one.
        var text = line
        if st.st_size > 0 {
            var last: UInt8 = 0
            if pread(fd, &last, 1, off_t(st.st_size - 1)) == 1, last != 0x0A { text = "\n" + line }
        }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            throw SSHError.knownHostsFile(path: path, reason: "short write: \(String(cString: strerror(errno)))")
        }
        fsync(fd)
        fstat(fd, &st)
        return (before, stamp(st))
    }
}

let knownHostsLogger = Logger(label: "fleet.ssh")
