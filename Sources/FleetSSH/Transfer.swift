import Foundation

extension SSHSession {
    /// Writes `data` to `path` with `mode`, atomically (temp file beside it, then rename), so the
    /// mode holds over an existing file too and readers never see half a file. The bytes travel on
    /// stdin: nothing of the content appears on a command line. `wrap` lets the caller add `sudo`.
    public func upload(_ data: Data, to path: String, mode: Int, timeout: Double? = nil,
                       wrap: (String) -> String = { $0 }) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let octal = String(mode, radix: 8)
        let script = "set -e; umask 077; mkdir -p \(shellQuote(dir.isEmpty ? "." : dir)); "
            + "t=$(mktemp \(shellQuote(path + ".fleet-XXXXXX"))); "
            + "trap 'rm -f \"$t\"' EXIT; cat > \"$t\"; chmod \(octal) \"$t\"; mv -f \"$t\" \(shellQuote(path)); trap - EXIT"
        let result = try exec(wrap(script), stdin: data, timeout: timeout)
        guard result.succeeded else {
            throw SSHError.channel(host: target.host, operation: "upload to \(path)",
                                   reason: describeFailure(result))
        }
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
