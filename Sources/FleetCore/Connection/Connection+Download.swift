import Foundation

extension Connection {
    /// Copies a remote file of any size to this machine, in base64 chunks small enough for one
    /// command's output (`read` stops at what one command may print). Each chunk has its own
    /// `timeout`. nil when the file does not exist.
    public func download(_ path: String, chunkSize: Int = 384 * 1024, timeout: Double? = nil) throws -> Data? {
        try RemotePath.check(path, file: false, host: hostName)
        let q = shellQuote(path)
        let size = try run("if [ -f \(q) ]; then stat -c %s -- \(q); else exit 44; fi", stdin: nil, timeout: timeout)
        if size.exitCode == 44 { return nil }
        guard size.succeeded, let total = Int(size.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ConnectionError("cannot read \(path) on \(hostName): \(size.failureText)", unreachable: false)
        }
        var out = Data(capacity: total)
        var block = 0
        while out.count < total {
            let r = try run("dd if=\(q) bs=\(chunkSize) skip=\(block) count=1 2>/dev/null | base64 -w 0", stdin: nil,
                            timeout: timeout)
            guard r.succeeded, !r.stdoutTruncated,
                  let chunk = Data(base64Encoded: r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw ConnectionError("cannot read \(path) on \(hostName) at byte \(out.count): \(r.failureText)",
                                      unreachable: false)
            }
            if chunk.isEmpty { break }
            out.append(chunk)
            block += 1
        }
        guard out.count == total else {
            throw ConnectionError("\(path) on \(hostName) changed while it was read (\(out.count) of \(total) bytes)",
                                  unreachable: false)
        }
        return out
    }
}
