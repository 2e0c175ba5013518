import Foundation

/// Replacing a file so that readers see the old or the new content, never a mix: the inventory
/// (`add-worker`), the state file and the kubeconfig.
public enum AtomicFile {
    /// Why a write failed: the step and the system's reason.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let reason: String
        public var description: String { reason }
    }

    /// Writes `data` to a temporary file in the same directory, flushes it to disk, renames it over
    /// `path`, then flushes the directory. With `mode`, the file gets that mode (from its creation
    /// on, so it is never readable by others even for a moment); without, the target's mode and
    /// owner are kept (0644 for a new file; a owner fleet cannot restore is an error).
    ///
    /// A symbolic link at `path` is refused (someone may have planted it in a shared folder to make
    /// fleet write elsewhere), unless `followLink` (the inventory the user named): then its target
    /// is rewritten.
    public static func write(_ data: Data, to path: String, mode: mode_t? = nil, followLink: Bool = false) throws {
        var target = path
        var existing = stat()
        var exists = lstat(path, &existing) == 0
        if exists && (existing.st_mode & S_IFMT) == S_IFLNK {
            guard followLink else {
                throw Failure(reason: "\(path) is a symbolic link; fleet does not write through one "
                                  + "(remove it, or choose another path)")
            }
            target = (path as NSString).resolvingSymlinksInPath
            exists = stat(target, &existing) == 0
        }
        if exists && (existing.st_mode & S_IFMT) != S_IFREG {
            throw Failure(reason: "\(target) is not a regular file")
        }
        let parent = (target as NSString).deletingLastPathComponent
        let directory = parent.isEmpty ? "." : parent
        let base = (target as NSString).lastPathComponent
        let permissions = mode ?? (exists ? existing.st_mode & 0o7777 : 0o644)
        // Without a mode of its own the file keeps its owner too (root rewriting a user's inventory).
        let owner: (uid_t, gid_t)? = (mode == nil && exists && (existing.st_uid != geteuid() || existing.st_gid != getegid()))
            ? (existing.st_uid, existing.st_gid) : nil
        let temporary = "\(directory)/.\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

        func failure(_ step: String) -> Failure {
            Failure(reason: "\(step): \(String(cString: strerror(errno)))")
        }
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions)
        guard descriptor >= 0 else { throw failure("creating \(temporary)") }
        var succeeded = false
        defer {
            if !succeeded { unlink(temporary) }
        }
        do {
            defer { close(descriptor) }
            try data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
                var offset = 0
                while offset < buffer.count {
                    guard let base = buffer.baseAddress else { break }
                    let written = Foundation.write(descriptor, base + offset, buffer.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw failure("writing \(temporary)")
                    }
                    offset += written
                }
            }
            if let owner, fchown(descriptor, owner.0, owner.1) != 0 {
                throw failure("keeping the owner (uid \(owner.0), gid \(owner.1)) on \(temporary)")
            }
            if fchmod(descriptor, permissions) != 0 { throw failure("setting permissions on \(temporary)") }
            if fsync(descriptor) != 0 { throw failure("flushing \(temporary)") }
        }
        if rename(temporary, target) != 0 { throw failure("renaming \(temporary) to \(target)") }
        succeeded = true
        let directoryDescriptor = open(directory, O_RDONLY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }
}
