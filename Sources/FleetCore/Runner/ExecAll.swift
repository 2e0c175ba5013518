import Foundation

/// `fleet exec`: one command on many hosts at once, bounded by `forks`.
public enum ExecAll {
    public struct HostResult: Sendable, Encodable {
        public var host: String
        public var address: String
        /// `ok`, `failed` or `unreachable`.
        public var status: String
        public var exitCode: Int32?
        public var stdout: String
        public var stderr: String
        public var durationMs: Int
        public var error: String?

        enum CodingKeys: String, CodingKey {
            case host, address, status, stdout, stderr, error
            case exitCode = "exit_code"
            case durationMs = "duration_ms"
        }

        public var jsonLine: String { FleetCore.jsonLine(self) }

        public var human: String {
            var head = "\(host) [\(address)] \(status)"
            if let c = exitCode { head += " exit \(c)" }
            head += " (\(durationMs) ms)"
            if let error { head += ": \(error)" }
            var lines = [head]
            for l in stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast(stdout.hasSuffix("\n") ? 1 : 0) where !stdout.isEmpty {
                lines.append("  \(l)")
            }
            for l in stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast(stderr.hasSuffix("\n") ? 1 : 0) where !stderr.isEmpty {
                lines.append("  stderr| \(l)")
            }
            return lines.joined(separator: "\n")
        }
    }

    /// Runs `command` on every host; `onResult` is called (serialised) as each host finishes.
    /// Returns the results in inventory order.
    public static func run(command: String, hosts: [Host], forks: Int, timeout: Double?, connector: Connector,
                           onResult: @escaping @Sendable (HostResult) -> Void) -> [HostResult] {
        parallelMap(hosts, limit: forks, { host in
            runOne(command: command, host: host, timeout: timeout ?? host.ssh.commandTimeout, connector: connector)
        }, onEach: { _, r in onResult(r) })
    }

    static func runOne(command: String, host: Host, timeout: Double, connector: Connector) -> HostResult {
        let start = Date()
        func ms() -> Int { Int(Date().timeIntervalSince(start) * 1000) }
        let connection: Connection
        do {
            connection = try connector.connect(to: host)
        } catch {
            let unreachable = (error as? ConnectionError)?.unreachable ?? true
            return HostResult(host: host.name, address: host.address, status: unreachable ? "unreachable" : "failed",
                              exitCode: nil, stdout: "", stderr: "", durationMs: ms(), error: String(describing: error))
        }
        defer { connection.close() }
        do {
            let r = try connection.run(command, stdin: nil, timeout: timeout)
            var err: String?
            if r.timedOut { err = "timed out after \(Int(timeout)) s and was stopped" }
            else if let s = r.exitSignal { err = "killed by signal \(s)" }
            return HostResult(host: host.name, address: host.address, status: r.succeeded ? "ok" : "failed",
                              exitCode: r.exitCode, stdout: r.stdoutText, stderr: r.stderrText, durationMs: ms(), error: err)
        } catch {
            let unreachable = (error as? ConnectionError)?.unreachable ?? false
            return HostResult(host: host.name, address: host.address, status: unreachable ? "unreachable" : "failed",
                              exitCode: nil, stdout: "", stderr: "", durationMs: ms(), error: String(describing: error))
        }
    }
}

/// One JSON object on one line, keys sorted (`{}` if it cannot be encoded): `exec --json`, `check --json`.
public func jsonLine(_ value: some Encodable) -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return (try? e.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
}
