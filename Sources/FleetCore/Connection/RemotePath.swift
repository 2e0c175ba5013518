import Foundation

/// Paths on a remote host. FleetSSH checks the same rules again before it sends a command (it
/// imports no project module, so it has its own copy; a test checks the two agree).
public enum RemotePath {
    /// Why `path` cannot name a file on a remote host, or `nil` when it can: it must be absolute
    /// and hold no NUL byte (a C string would end there) and no newline (a shell would split there).
    public static func problem(_ path: String) -> String? {
        if !path.hasPrefix("/") { return "is not an absolute path" }
        if path.utf8.contains(0) { return "contains a NUL byte" }
        if path.utf8.contains(10) || path.utf8.contains(13) { return "contains a line break" }
        return nil
    }

    /// `problem(path)`, and for a file to be written: it must not end in `/`, `/.` or `/..`.
    public static func fileProblem(_ path: String) -> String? {
        if let p = problem(path) { return p }
        if path.hasSuffix("/") || path.hasSuffix("/.") || path.hasSuffix("/..") { return "does not name a file" }
        return nil
    }

    /// At playbook load: a template with no variables is the path itself, checked now; one with
    /// variables is checked when rendered, on each host.
    static func checkAtLoad(_ t: Template, file: Bool, _ p: StepParams, _ key: String) throws {
        guard !t.source.contains("{{") else {
            if !t.source.hasPrefix("/") && !t.source.hasPrefix("{{") { throw p.error(key, "must be an absolute path") }
            return
        }
        if let problem = file ? fileProblem(t.source) : problem(t.source) {
            throw p.error(key, "\(String(reflecting: t.source)) \(problem)")
        }
    }

    /// Throws `TaskFailure` naming the path (escaped) and what is wrong with it.
    static func check(_ path: String, file: Bool, host: String) throws {
        if let problem = file ? fileProblem(path) : problem(path) {
            throw TaskFailure("remote path \(String(reflecting: path)) on \(host) \(problem)")
        }
    }
}
