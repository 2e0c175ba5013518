import Foundation

/// Remote paths and shell words: every path or value that reaches a remote shell goes through here.
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
}

/// Quotes a string for POSIX sh: bare when it is plainly safe, else `'…'` with `'\''` for quotes.
/// Safe for every byte but NUL. FleetCore has the same function (it imports no project module);
/// a test checks the two agree.
func shellQuote(_ s: String) -> String {
    if !s.isEmpty, s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_./=:@,+%".contains($0)) }) {
        return s
    }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
