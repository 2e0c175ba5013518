import Foundation

extension SSHSession {
    /// Writes `data` to `path` with `mode`, atomically (temp file beside it, then rename), so the
    /// mode holds over an existing file too and readers never see half a file. The bytes travel on
    /// stdin: nothing of the content appears on a command line. `wrap` lets the caller add `sudo`.
    public func upload(_ data: Data, to path: String, mode: Int, timeout: Double? = nil,
                       wrap: (String) -> String = { $0 }) throws {
        let result = try exec(wrap(uploadScript(path: path, mode: mode)), stdin: data, timeout: timeout)
        guard result.succeeded else {
            throw SSHError.channel(host: target.host, operation: "upload to \(path)",
                                   reason: describeFailure(result))
        }
    }

    /// The remote side of an upload: few processes (this runs once per file on every host). The
    /// temp file is created by the shell under a umask that gives it its final mode when it can,
    /// so the content is never readable by others, even for a moment.
    func uploadScript(path: String, mode: Int) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        let q = shellQuote(path)
        let tmp = shellQuote(path + ".fleet-tmp.") + "$$"
        let simple = mode & 0o7111 == 0
        let umask = simple ? String(format: "%03o", ~mode & 0o777) : "077"
        // -C: the temp file is created afresh (O_EXCL), never through an existing file or link.
        var script = "set -eC; "
        if !dir.isEmpty { script += "[ -d \(shellQuote(dir)) ] || (umask 022; mkdir -p \(shellQuote(dir))); " }
        script += "umask \(umask); trap 'rm -f \(tmp)' EXIT; cat > \(tmp); "
        if !simple { script += "chmod \(String(mode, radix: 8)) \(tmp); " }
        script += "mv -f \(tmp) \(q); trap - EXIT"
        return script
    }

    /// Reads a remote file. Throws when it is missing or unreadable.
    public func readFile(_ path: String, timeout: Double? = nil, wrap: (String) -> String = { $0 }) throws -> Data {
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
