import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs a program on the control machine: posix_spawn, stdin from a file, stdout and stderr to
/// files, then waitpid, within a deadline (past it the program is killed). No pipes and no run
/// loop: Foundation's `Process.waitUntilExit` was seen to hang on a child that had already exited.
public enum LocalCommand {
    public struct Result: Sendable {
        /// The exit status; 128 + the signal for a killed program; 127 when it could not start.
        public var status: Int32
        public var stdout: Data
        public var stderr: Data
        public var timedOut: Bool
        public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
        public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    }

    /// `args[0]` is a path. `directory`: the program's working directory (sh changes to it: glibc's
    /// posix_spawn_file_actions_addchdir_np is not imported into Swift). `mergeStderr`: stderr goes
    /// into `stdout`, interleaved as written.
    public static func run(_ args: [String], stdin: Data = Data(), directory: String? = nil,
                           timeout: Double? = nil, mergeStderr: Bool = false) -> Result {
        let args = directory.map { ["/bin/sh", "-c", "cd -- \"$1\" && shift && exec \"$@\"", "sh", $0] + args } ?? args
        let base = NSTemporaryDirectory() + "fleet-local-\(UUID().uuidString)"
        let inPath = base + ".in", outPath = base + ".out", errPath = base + ".err"
        defer { for p in [inPath, outPath, errPath] { unlink(p) } }
        _ = FileManager.default.createFile(atPath: inPath, contents: stdin, attributes: [.posixPermissions: 0o600])

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if mergeStderr {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        }
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, args[0], &actions, nil, &argv, environ)
        guard rc == 0 else {
            let message = Data("cannot start \(args[0]): \(String(cString: strerror(rc)))".utf8)
            return Result(status: 127, stdout: mergeStderr ? message : Data(), stderr: mergeStderr ? Data() : message,
                          timedOut: false)
        }
        var status: Int32 = 0
        var timedOut = false
        if let timeout {
            let deadline = Date().addingTimeInterval(timeout)
            while true {
                let r = waitpid(pid, &status, WNOHANG)
                if r == pid || (r < 0 && errno != EINTR) { break }
                if Date() >= deadline {
                    timedOut = true
                    kill(pid, SIGKILL)
                    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                    break
                }
                usleep(10_000)
            }
        } else {
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code,
                      stdout: FileManager.default.contents(atPath: outPath) ?? Data(),
                      stderr: FileManager.default.contents(atPath: errPath) ?? Data(), timedOut: timedOut)
    }
}
