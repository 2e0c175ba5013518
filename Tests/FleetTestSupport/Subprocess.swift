import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs a local program for a test: posix_spawn, stdin from a file, stdout and stderr to files,
/// then waitpid. No pipes and no run loop, so it cannot hang on a child that has already exited
/// (Foundation's `Process.waitUntilExit` did, once, under heavy load).
public enum Subprocess {
    public struct Result {
        public var status: Int32
        public var stdout: Data
        public var stderr: Data
        public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
        public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    }

    /// `args[0]` is a path. `directory`: the child's working directory (default: this process's).
    /// A signal-killed child has status 128 + the signal number; one that cannot start, 127.
    public static func run(_ args: [String], stdin: Data = Data(), directory: String? = nil) -> Result {
        // posix_spawn cannot change directory here (glibc's addchdir_np is not imported): sh does it.
        let args = directory.map { ["/bin/sh", "-c", "cd -- \"$1\" && shift && exec \"$@\"", "sh", $0] + args } ?? args
        let base = NSTemporaryDirectory() + "fleet-subprocess-\(UUID().uuidString)"
        let inPath = base + ".in", outPath = base + ".out", errPath = base + ".err"
        defer { for p in [inPath, outPath, errPath] { unlink(p) } }
        FileManager.default.createFile(atPath: inPath, contents: stdin)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, args[0], &actions, nil, &argv, environ)
        guard rc == 0 else {
            return Result(status: 127, stdout: Data(), stderr: Data("cannot start \(args[0]): \(String(cString: strerror(rc)))".utf8))
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code,
                      stdout: FileManager.default.contents(atPath: outPath) ?? Data(),
                      stderr: FileManager.default.contents(atPath: errPath) ?? Data())
    }
}
