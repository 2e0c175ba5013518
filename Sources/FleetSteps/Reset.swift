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
    public static let sysctlFiles = ["/etc/sysctl.d/90-fleet-ipv6.conf", IPv6ForwardingAction.defaultFile]

    /// What reset does on a host, for the confirmation. `staying` is the server that stays in the
    /// cluster (when only part of it is reset), through which the host is removed from it.
    public static func describe(_ host: FleetCore.Host, sysctl: Bool, staying: FleetCore.Host? = nil) -> [String] {
        var lines: [String] = []
        if host.role == .server, let staying {
            lines.append("delete node \(host.name) through \(staying.name), which removes its etcd member (servers go one at a time)")
        }
        lines.append(host.role == .agent
            ? "run \(binDirectory)/k3s-agent-uninstall.sh if present (agents go first)"
            : "run \(binDirectory)/k3s-uninstall.sh if present (after every agent)")
        lines.append("remove " + (fleetFiles + (sysctl ? sysctlFiles : [])).joined(separator: ", ") + " if present")
        if host.role == .agent, let staying { lines.append("then delete node \(host.name) through \(staying.name)") }
        return lines
    }

    /// The first server that is not being reset: the cluster goes on there.
    public static func stayingServer(_ inventory: Inventory, resetting: [FleetCore.Host]) -> FleetCore.Host? {
        let names = Set(resetting.map(\.name))
        return inventory.servers.first { !names.contains($0.name) }
    }

    /// Why resetting these hosts would break the cluster that stays, or nil. The first server may
    /// only be reset with every other server: the next `up` would start a new cluster on it (it
    /// gets `cluster-init`, a new CA and token) beside the servers still running the old one.
    public static func firstServerProblem(_ inventory: Inventory, resetting: [FleetCore.Host]) -> String? {
        let names = Set(resetting.map(\.name))
        let first = inventory.firstServer
        let staying = inventory.servers.filter { !names.contains($0.name) }.map(\.name)
        guard names.contains(first.name), !staying.isEmpty else { return nil }
        return "\(first.name) is the first server and \(staying.joined(separator: ", ")) would stay: the next up would "
            + "start a new cluster on \(first.name) beside them. Reset every server together, or first move "
            + "\(first.name)'s [[hosts]] entry after another server (which then becomes the first) and run up"
    }

    /// Deletes a node object; with embedded etcd, K3s removes a server's etcd member with it.
    public static func deleteNodeCommand(_ name: String) -> String {
        "\(K3sInstall.binaryPath) kubectl delete node \(shellQuote(name)) --ignore-not-found --timeout=60s </dev/null"
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

    /// Agents first (all at once, at most `forks`), then servers one at a time. `onResult` is called
    /// (serialised) as each host finishes. Servers are not touched when an agent could not be reset.
    ///
    /// With `staying` (a server that is not reset), each host also leaves the cluster: an agent's node
    /// is deleted after its uninstall (its kubelet would register it again before); a server's node
    /// is deleted before, which removes its etcd member, so the members left keep their quorum. A
    /// server that cannot be removed is not uninstalled, and the servers after it are skipped.
    public static func run(hosts: [FleetCore.Host], connector: Connector, forks: Int, sysctl: Bool,
                           staying: FleetCore.Host? = nil,
                           onResult: @escaping @Sendable (Outcome) -> Void = { _ in }) -> [Outcome] {
        let results = Locked<[String: Outcome]>([:])
        let script = script(sysctl: sysctl)
        @Sendable func record(_ o: Outcome) {
            results.withLock {
                $0[o.host] = o
                onResult(o)
            }
        }
        parallelEach(hosts.filter { $0.role == .agent }, limit: forks) { host in
            var o = resetOne(host, script: script, connector: connector)
            if o.succeeded, let staying {
                if let problem = deleteNode(host.name, through: staying, connector: connector) {
                    o.message += "; still listed as a node: \(problem)"
                } else {
                    o.message += "; node deleted through \(staying.name)"
                }
            }
            record(o)
        }
        let failed = results.withLock { r in r.values.filter { !$0.succeeded }.map(\.host).sorted() }
        var stop: String? = failed.isEmpty ? nil
            : "not reset: agent(s) \(failed.joined(separator: ", ")) could not be reset first; fix them, or leave them out with --limit"
        for host in hosts where host.role == .server {
            if let stop {
                record(Outcome(host: host.name, status: "skipped", message: stop))
                continue
            }
            var removed = ""
            if let staying {
                if let problem = deleteNode(host.name, through: staying, connector: connector) {
                    record(Outcome(host: host.name, status: "failed",
                                   message: "not uninstalled: could not remove it from the cluster through \(staying.name) "
                                       + "(\(problem)); uninstalling would leave an etcd member that never comes back"))
                    stop = "not reset: \(host.name) could not be removed from the cluster first"
                    continue
                }
                removed = "node deleted through \(staying.name) (etcd member removed); "
            }
            var o = resetOne(host, script: script, connector: connector)
            o.message = removed + o.message
            if !o.succeeded { stop = "not reset: \(host.name) failed, and servers go one at a time" }
            record(o)
        }
        let all = results.withLock { $0 }
        return hosts.compactMap { all[$0.name] }
    }

    /// Deletes `name`'s node through `server`; nil when done, else why not.
    static func deleteNode(_ name: String, through server: FleetCore.Host, connector: Connector) -> String? {
        do {
            let connection = try connector.connect(to: server)
            defer { connection.close() }
            let r = try connection.run(deleteNodeCommand(name), stdin: nil, timeout: server.ssh.commandTimeout)
            return r.succeeded ? nil : r.failureText
        } catch {
            return "\(error)"
        }
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
