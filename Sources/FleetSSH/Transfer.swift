import Foundation

extension SSHSession {
    /// Writes `data` to `path` with `mode`, atomically (temp file beside it, then rename), so the
    /// mode holds over an existing file too and readers never see half a file. The bytes travel on
    /// stdin: nothing of the content appears on a command line. `wrap` lets the caller add `sudo`.
    ///
    /// `unlessSame`: the file is left as it is when it already has this content and mode (the
    /// bytes are compared on the host, after they arrived), in the same round trip. Returns whether
    /// the file was written.
    @discardableResult
    public func upload(_ data: Data, to path: String, mode: Int, timeout: Double? = nil,
                       wrap: (String) -> String = { $0 }, unlessSame: Bool = false) throws -> Bool {
        if let problem = RemotePath.fileProblem(path) {
            throw SSHError.channel(host: target.host, operation: "upload", reason: "remote path \(debugQuoted(path)) \(problem)")
        }
        let script = Self.uploadScript(path: path, mode: mode, unlessSame: unlessSame)
        let result = try exec(wrap(script), stdin: data, timeout: timeout)
        guard result.succeeded else {
            throw SSHError.channel(host: target.host, operation: "upload to \(path)",
                                   reason: describeFailure(result))
        }
        return !(unlessSame && result.stdoutText == Self.sameMarker + "\n")
    }

    /// What the upload script prints when `unlessSame` found the file as wanted.
    static let sameMarker = "fleet-upload: same"

    /// The remote side of an upload: few processes (this runs once per file on every host). The
    /// temp file is created by the shell under a umask that gives it its final mode when it can,
    /// so the content is never readable by others, even for a moment. Each path is quoted once,
    /// as a whole word; the temp name lives in `$t`, which the trap reads when it fires.
    static func uploadScript(path: String, mode: Int, unlessSame: Bool = false) -> String {
        // The directory as written (no normalising): everything before the last `/`.
        let slash = path.lastIndex(of: "/") ?? path.startIndex
        let dir = slash == path.startIndex ? "/" : String(path[..<slash])
        let simple = mode & 0o7111 == 0
        let umask = simple ? String(format: "%03o", ~mode & 0o777) : "077"
        // -C: the temp file is created afresh (O_EXCL), never through an existing file or link.
        var script = "set -eC; t=\(shellQuote(path + ".fleet-tmp."))$$; "
        script += "[ -d \(shellQuote(dir)) ] || (umask 022; mkdir -p -- \(shellQuote(dir))); "
        // mv would put the file inside a directory of that name: refuse instead.
        script += "if [ -d \(shellQuote(path)) ]; then echo 'is a directory' >&2; exit 1; fi; "
        script += "umask \(umask); trap 'rm -f -- \"$t\"' EXIT; cat > \"$t\"; "
        if !simple { script += "chmod \(String(mode, radix: 8)) -- \"$t\"; " }
        if unlessSame {
            // A regular file (not a link) with the wanted mode and these bytes stays; the trap
            // removes the temp file.
            let q = shellQuote(path)
            script += "if [ -f \(q) ] && [ ! -L \(q) ] && [ \"$(stat -c %a -- \(q))\" = \(String(mode, radix: 8)) ] "
                + "&& cmp -s -- \"$t\" \(q); then echo '\(sameMarker)'; exit 0; fi; "
        }
        script += "mv -f -- \"$t\" \(shellQuote(path)); trap - EXIT"
        return script
    }

    /// Reads a remote file. Throws when it is missing or unreadable.
    public func readFile(_ path: String, timeout: Double? = nil, wrap: (String) -> String = { $0 }) throws -> Data {
        if let problem = RemotePath.problem(path) {
            throw SSHError.channel(host: target.host, operation: "read", reason: "remote path \(debugQuoted(path)) \(problem)")
        }
        let result = try exec(wrap("cat -- \(shellQuote(path))"), timeout: timeout)
        guard result.succeeded else {
            throw SSHError.channel(host: target.host, operation: "read \(path)", reason: describeFailure(result))
        }
        return result.stdout
    }

    private func describeFailure(_ r: ExecResult) -> String {
        if r.timedOut { return "timed out" }
        let err = r.stderrText.trimmingCharacters(in: .whitespacesAndNewlines)
        let status = r.exitSignal.map { "signal \($0)" } ?? "exit \(r.exitCode.map(String.init) ?? "?")"
        return err.isEmpty ? status : "\(status): \(err)"
    }
}

/// A path as Swift would write it in source: quotes around it, control bytes escaped.
func debugQuoted(_ s: String) -> String { String(reflecting: s) }
