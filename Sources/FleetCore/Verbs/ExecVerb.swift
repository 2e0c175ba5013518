import Foundation

/// `fleet exec`: one command on many hosts at once, bounded by `forks`: a one-step playbook built
/// here and run by the runner (connections, Ctrl-C, one result per host), printed per host.
public enum ExecVerb {
    public static let stepName = "exec"

    /// Runs the command as it is (it is the user's), read-only as far as fleet knows: `ok` when it
    /// exits 0, else failed with why (`exit 3`, timed out, killed by a signal).
    public struct CommandAction: Action {
        public var command: String
        public var timeout: Double?

        public init(command: String, timeout: Double?) {
            self.command = command
            self.timeout = timeout
        }

        public var keepsOutput: Bool { true }

        public func inputs(host: Host, inventory: Inventory) -> [String] { [command] }

        public func describe(_ vars: TemplateVariables) -> [String] { [command] }

        public func run(_ ctx: TaskContext) throws -> ActionOutcome {
            let r = try ctx.run(command, timeout: timeout)
            if r.succeeded { return .ok("exit 0") }
            if r.timedOut {
                throw TaskFailure("timed out after \(Int(timeout ?? ctx.commandTimeout)) s and was stopped", result: r)
            }
            if let s = r.exitSignal { throw TaskFailure("killed by signal \(s)", result: r) }
            throw TaskFailure(r.statusText, result: r)
        }
    }

    /// The playbook: one step, `exec`, on `hosts`.
    public static func playbook(command: String, timeout: Double?, hosts: [Host]) -> Playbook {
        Playbook(name: "exec", path: "exec", steps: [
            Step(name: stepName, target: .hosts(hosts.map(\.name)), actionName: "exec",
                 action: CommandAction(command: command, timeout: timeout)),
        ])
    }

    public struct HostResult: Sendable, Encodable {
        public var host: String
        public var address: String
        /// `ok`, `failed` or `unreachable` (`interrupted` after Ctrl-C).
        public var status: String
        public var exitCode: Int32?
        public var stdout: String
        public var stderr: String
        public var durationMs: Int
        public var error: String?
        /// Bytes each stream sent in all, and whether only its head and tail are in `stdout`/`stderr`.
        public var stdoutBytes: Int
        public var stderrBytes: Int
        public var stdoutTruncated: Bool
        public var stderrTruncated: Bool

        enum CodingKeys: String, CodingKey {
            case host, address, status, stdout, stderr, error
            case stdoutBytes = "stdout_bytes", stderrBytes = "stderr_bytes"
            case stdoutTruncated = "stdout_truncated", stderrTruncated = "stderr_truncated"
            case exitCode = "exit_code"
            case durationMs = "duration_ms"
        }

        /// From the runner's result for the host.
        public init(_ r: TaskResult, address: String) {
            host = r.host
            self.address = address
            status = r.status.rawValue
            exitCode = r.exitCode
            stdout = r.output?.stdout ?? ""
            stderr = r.output?.stderr ?? ""
            stdoutBytes = r.output?.stdoutBytes ?? 0
            stderrBytes = r.output?.stderrBytes ?? 0
            // Byte counts against the command's bytes kept (the head and tail limits of the SSH layer).
            stdoutTruncated = stdoutBytes > stdout.utf8.count
            stderrTruncated = stderrBytes > stderr.utf8.count
            durationMs = r.durationMs
            // A plain non-zero exit says it all with its code.
            let plainExit = r.exitCode.map { r.message == "exit \($0)" } ?? false
            error = r.status == .ok || plainExit ? nil : r.message
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
    /// Returns the results in inventory order, and whether the run was interrupted.
    public static func run(command: String, inventory: Inventory, hosts: [Host], forks: Int, timeout: Double?,
                           connector: Connector, onResult: @escaping @Sendable (HostResult) -> Void,
                           onRunner: (Runner) -> Void = { _ in }) -> (results: [HostResult], interrupted: Bool) {
        let addresses = Dictionary(uniqueKeysWithValues: inventory.hosts.map { ($0.name, $0.address) })
        let reporter = EachResultReporter { r in onResult(HostResult(r, address: addresses[r.host] ?? "")) }
        let summary = PlaybookRun.runReadOnly(inventory: inventory, playbook: playbook(command: command, timeout: timeout, hosts: hosts),
                                              forks: forks, command: "exec", connector: connector, reporter: reporter,
                                              onRunner: onRunner)
        let byHost = Dictionary(summary.results.map { ($0.host, $0) }, uniquingKeysWith: { a, _ in a })
        let results = hosts.compactMap { h in byHost[h.name].map { HostResult($0, address: h.address) } }
        return (results, summary.interrupted)
    }
}

/// One JSON object on one line, keys sorted (`{}` if it cannot be encoded): `exec --json`, `check --json`.
public func jsonLine(_ value: some Encodable) -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return (try? e.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
}
