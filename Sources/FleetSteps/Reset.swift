import FleetCore
import Foundation

/// `fleet reset`: K3s uninstalled (agents first, then servers) and the files fleet wrote removed.
public enum Reset {
    public static let binDirectory = "/usr/local/bin"
    /// The uninstall scripts K3s's installer writes, agent first.
    public static let uninstallScripts = ["k3s-agent-uninstall.sh", "k3s-uninstall.sh"]
    /// Files and folders fleet itself writes on a host.
    public static let fleetFiles = [K3sConfigFile.tokenPath, K3sConfigFile.path,
                                    (K3sInstall.installerPath as NSString).deletingLastPathComponent]
    /// The sysctl.d files of the k3s-ipv6 playbook: removed only when asked.
    public static let sysctlFiles = ["/etc/sysctl.d/90-fleet-ipv6.conf", "/etc/sysctl.d/91-fleet-ipv6-forwarding.conf"]

    /// What reset does on a host, for the confirmation.
    public static func describe(_ host: FleetCore.Host, sysctl: Bool) -> [String] {
        var lines = host.role == .agent
            ? ["run \(binDirectory)/k3s-agent-uninstall.sh if present (agents go first)"]
            : ["run \(binDirectory)/k3s-uninstall.sh if present (after every agent)"]
        lines.append("remove " + (fleetFiles + (sysctl ? sysctlFiles : [])).joined(separator: ", ") + " if present")
        return lines
    }

    /// The shell script: runs the uninstall scripts that exist, removes fleet's files, and prints
    /// `did: …` with what it changed (nothing when nothing was installed).
    public static func script(sysctl: Bool) -> String {
        var lines = ["did=''"]
        for name in uninstallScripts {
            let path = shellQuote(binDirectory + "/" + name)
            lines.append("""
                if [ -x \(path) ]; then out=$(\(path) </dev/null 2>&1) || { printf '%s\\n' "$out" | tail -n 5 >&2; \
                echo '\(name) failed' >&2; exit 1; }; did="$did \(name)"; fi
                """)
        }
        for path in fleetFiles + (sysctl ? sysctlFiles : []) {
            let q = shellQuote(path)
            lines.append("if [ -e \(q) ]; then rm -rf -- \(q) || exit 1; did=\"$did \(path)\"; fi")
        }
        lines.append("echo \"did:$did\"")
        return lines.joined(separator: "\n")
    }

    public struct Outcome: Sendable, Equatable {
        public var host: String
        /// `ok` (nothing was installed), `changed`, `failed`, `unreachable` or `skipped` (a server, when an agent failed).
        public var status: String
        public var message: String

        public var line: String { "\(host) \(status): \(message)" }
        /// `ok` or `changed`: the host is reset.
        public var succeeded: Bool { status == "ok" || status == "changed" }
    }

    /// Pure: the script's result → the outcome.
    public static func outcome(host: String, exitCode: Int32?, stdout: String, stderr: String) -> Outcome {
        guard exitCode == 0 else {
            let err = stderr.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: "; ")
            return Outcome(host: host, status: "failed",
                           message: "exit \(exitCode.map(String.init) ?? "unknown")" + (err.isEmpty ? "" : ": \(err)"))
        }
        let line = stdout.split(separator: "\n").last { $0.hasPrefix("did:") } ?? "did:"
        let done = line.dropFirst(4).split(separator: " ").map(String.init)
        if done.isEmpty { return Outcome(host: host, status: "ok", message: "nothing installed") }
        return Outcome(host: host, status: "changed", message: "removed: " + done.joined(separator: ", "))
    }

    /// Agents first (all at once, at most `forks`), then servers. `onResult` is called (serialised)
    /// as each host finishes. Servers are not touched when an agent could not be reset.
    public static func run(hosts: [FleetCore.Host], connector: Connector, forks: Int, sysctl: Bool,
                           onResult: @escaping @Sendable (Outcome) -> Void = { _ in }) -> [Outcome] {
        let results = Locked<[String: Outcome]>([:])
        let script = script(sysctl: sysctl)
        func phase(_ group: [FleetCore.Host]) {
            parallelEach(group, limit: forks) { host in
                let o = resetOne(host, script: script, connector: connector)
                results.withLock {
                    $0[host.name] = o
                    onResult(o)
                }
            }
        }
        phase(hosts.filter { $0.role == .agent })
        let failed = results.withLock { r in r.values.filter { !$0.succeeded }.map(\.host).sorted() }
        let servers = hosts.filter { $0.role == .server }
        if failed.isEmpty {
            phase(servers)
        } else {
            for host in servers {
                let o = Outcome(host: host.name, status: "skipped",
                                message: "not reset: agent(s) \(failed.joined(separator: ", ")) could not be reset first; "
                                    + "fix them, or leave them out with --limit")
                results.withLock {
                    $0[host.name] = o
                    onResult(o)
                }
            }
        }
        let all = results.withLock { $0 }
        return hosts.compactMap { all[$0.name] }
    }

    static func resetOne(_ host: FleetCore.Host, script: String, connector: Connector) -> Outcome {
        let connection: Connection
        do {
            connection = try connector.connect(to: host)
        } catch {
            return Outcome(host: host.name, status: "unreachable", message: "\(error)")
        }
        defer { connection.close() }
        do {
            let r = try connection.run(script, stdin: nil, timeout: host.ssh.commandTimeout)
            if r.timedOut { return Outcome(host: host.name, status: "failed", message: "timed out") }
            return outcome(host: host.name, exitCode: r.exitCode, stdout: r.stdoutText, stderr: r.stderrText)
        } catch {
            return Outcome(host: host.name, status: "failed", message: "\(error)")
        }
    }

    /// Drops the reset hosts' records from the inventory's state file.
    /// The state keeps the playbook it last recorded.
    public static func forgetInState(inventory: Inventory, hosts: [String], playbook: String) throws {
        let path = RunState.path(forInventory: inventory.path)
        let recorded = try RunState.load(path: path)?.playbook
        let store = try StateStore(path: path, inventory: inventory.path, playbook: recorded ?? playbook)
        store.forget(hosts: hosts)
        try store.close()
    }
}
