import Foundation

/// One fleet process at a time per inventory. Every verb that changes hosts or files (`up`,
/// `add-worker`, `reset`, `kubeconfig`) takes this lock before it reads the inventory's state or
/// touches anything, and holds it until it ends: an exclusive `flock` on
/// `<inventory dir>/.fleet/<name>.state.json.lock`, which holds the holder's pid for the message the
/// next process prints. The kernel drops the lock when the process ends, however it ends.
///
/// The lock belongs to the open file, not to the process: a second acquire in the same process is
/// refused like one from another process.
public final class InventoryLock: @unchecked Sendable {
    /// The inventory as the user named it (for messages).
    public let inventory: String
    /// The lock file.
    public let path: String
    private let mutex = NSLock()
    private var descriptor: Int32

    /// The inventory is locked by another fleet process (or another holder in this one).
    public struct Busy: Error, CustomStringConvertible, Sendable {
        public let inventory: String
        public let pid: Int32?
        public let lockFile: String
        public var description: String {
            "\(inventory): in use by " + (pid.map { "pid \($0)" } ?? "another fleet process")
                + " (lock \(lockFile)); wait for it to end"
        }
    }

    /// The lock file of an inventory: beside its state file.
    public static func path(forInventory inventory: String) -> String {
        RunState.path(forInventory: inventory) + ".lock"
    }

    /// Takes the inventory's lock, or throws ``Busy`` at once (never waits).
    public static func acquire(inventory: String) throws -> InventoryLock {
        try InventoryLock(inventory: inventory, path: path(forInventory: inventory))
    }

    /// Takes the lock in `path` (a state file's path + `.lock`).
    init(inventory: String, path: String) throws {
        self.inventory = inventory
        self.path = path
        try StateDirectory.ensure((path as NSString).deletingLastPathComponent)
        // O_NOFOLLOW: a link planted in place of the lock file is refused, not followed.
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw StateError(path: path, message: "cannot open the lock file: \(String(cString: strerror(errno)))")
        }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let err = errno
            if err == EINTR { continue }
            let holder = Self.recordedPid(fd)
            close(fd)
            if err == EWOULDBLOCK { throw Busy(inventory: inventory, pid: holder, lockFile: path) }
            throw StateError(path: path, message: "cannot lock: \(String(cString: strerror(err)))")
        }
        descriptor = fd
        let text = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit { release() }

    /// Whether this object still holds the lock.
    public var isHeld: Bool {
        mutex.lock(); defer { mutex.unlock() }
        return descriptor >= 0
    }

    /// Lets the next process in. Idempotent.
    public func release() {
        mutex.lock(); defer { mutex.unlock() }
        guard descriptor >= 0 else { return }
        _ = ftruncate(descriptor, 0)
        close(descriptor)
        descriptor = -1
    }

    /// The pid the holder wrote, if it has yet (parsed without trapping).
    static func recordedPid(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = pread(fd, &buffer, buffer.count, 0)
        guard n > 0 else { return nil }
        let text = String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let pid = Int32(text), pid > 0 else { return nil }
        return pid
    }
}

/// The `.fleet` folder beside an inventory: created 0700, never followed when it is a symbolic link
/// (someone else may have planted one in a shared directory to make fleet write elsewhere).
public enum StateDirectory {
    public static func ensure(_ dir: String) throws {
        let directory = dir.isEmpty ? "." : dir
        let parent = (directory as NSString).deletingLastPathComponent
        if !parent.isEmpty, !FileManager.default.fileExists(atPath: parent) {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        }
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw StateError(path: directory, message: "cannot create the state folder: \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard lstat(directory, &info) == 0 else {
            throw StateError(path: directory, message: "cannot read the state folder: \(String(cString: strerror(errno)))")
        }
        if (info.st_mode & S_IFMT) == S_IFLNK {
            throw StateError(path: directory, message: "is a symbolic link; fleet does not follow it for its state "
                                 + "(remove the link, or move the inventory out of a shared folder)")
        }
        if (info.st_mode & S_IFMT) != S_IFDIR {
            throw StateError(path: directory, message: "is not a folder; fleet keeps its state and lock there")
        }
    }
}
