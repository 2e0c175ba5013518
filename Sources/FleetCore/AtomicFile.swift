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
    /// on, so it is never readable by others even for a moment); without, the target's permissions
    /// are kept (0644 for a new file). A symbolic link is followed, not replaced.
    public static func write(_ data: Data, to path: String, mode: mode_t? = nil) throws {
        let target = (path as NSString).resolvingSymlinksInPath
        let parent = (target as NSString).deletingLastPathComponent
        let directory = parent.isEmpty ? "." : parent
        let base = (target as NSString).lastPathComponent
        let permissions = mode
            ?? (try? FileManager.default.attributesOfItem(atPath: target)[.posixPermissions] as? NSNumber)?
                .map { mode_t($0.intValue) } ?? 0o644
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
