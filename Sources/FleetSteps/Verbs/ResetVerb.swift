import FleetCore
import Foundation

/// `fleet reset`: K3s uninstalled (agents first, then servers one at a time) and the files fleet
/// wrote removed. A playbook built here and run by the runner: `agent-reset` on the agents at once,
/// then `server-reset` on the servers with `serial = 1`, after every agent ended. When part of the
/// cluster stays, each host leaves it through a server that stays (`TaskContext.connection(to:)`).
///
/// This is the template for a verb that changes hosts: a playbook built in code from the verb's
/// options, its actions in the same file, and `PlaybookRun` for the state file, `--dry-run`,
/// `--retry-failed`, `--json` and Ctrl-C. The CLI side is `Sources/fleet/Subcommands/Reset.swift`.
public enum ResetVerb {
    public static let agentStep = "agent-reset"
    public static let serverStep = "server-reset"

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
        describe(name: host.name, role: host.role, sysctl: sysctl, staying: staying)
    }

    static func describe(name: String, role: HostRole, sysctl: Bool, staying: FleetCore.Host?) -> [String] {
        var lines: [String] = []
        if role == .server, let staying {
            lines.append("delete node \(name) through \(staying.name), which removes its etcd member (servers go one at a time)")
        }
        lines.append(role == .agent
            ? "run \(binDirectory)/k3s-agent-uninstall.sh if present (agents go first)"
            : "run \(binDirectory)/k3s-uninstall.sh if present (after every agent)")
        lines.append("remove " + (fleetFiles + (sysctl ? sysctlFiles : [])).joined(separator: ", ") + " if present")
        if role == .agent, let staying { lines.append("then delete node \(name) through \(staying.name)") }
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
    /// The links Cilium leaves on a node (`cni = "cilium"`).
    static let ciliumLinks = ["cilium_host", "cilium_net", "cilium_vxlan"]

    static func script(sysctl: Bool) -> String {
        var lines = ["did=''"]
        // Cilium's links must go before K3s's killall script runs, or the host can lose its network.
        lines.append("""
            for l in \(ciliumLinks.joined(separator: " ")); do if ip link show "$l" >/dev/null 2>&1; then \
            ip link delete "$l" 2>/dev/null && did="$did $l"; fi; done
            """)
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

    /// `ok` (nothing was installed) or `changed` (`removed: …`), from the script's output; nil
    /// with the failure's text when the script failed. Pure.
    public static func outcome(exitCode: Int32?, stdout: String, stderr: String) -> Result<ActionOutcome, TaskFailure> {
        guard exitCode == 0 else {
            let err = stderr.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: "; ")
            return .failure(TaskFailure("exit \(exitCode.map(String.init) ?? "unknown")" + (err.isEmpty ? "" : ": \(err)")))
        }
        let line = stdout.split(separator: "\n").last { $0.hasPrefix("did:") } ?? "did:"
        let done = line.dropFirst(4).split(separator: " ").map(String.init)
        if done.isEmpty { return .success(.ok("nothing installed")) }
        return .success(.changed("removed: " + done.joined(separator: ", ")))
    }

    /// Resets one host. With `staying` (a server that is not reset), the host also leaves the
    /// cluster through it: an agent's node is deleted after its uninstall (its kubelet would
    /// register it again before); a server's node is deleted before, which removes its etcd member,
    /// so the members left keep their quorum. A server that cannot be removed is not uninstalled.
    struct HostResetAction: Action {
        let sysctl: Bool
        let staying: FleetCore.Host?

        func inputs(host: FleetCore.Host, inventory: Inventory) -> [String: String] {
            ["sysctl": String(sysctl), "staying": staying?.name ?? ""]
        }

        func describe(_ vars: TemplateVariables) -> [String] {
            ResetVerb.describe(name: vars["host.name"], role: vars["host.role"] == HostRole.server.rawValue ? .server : .agent,
                               sysctl: sysctl, staying: staying)
        }

        func run(_ ctx: TaskContext) throws -> ActionOutcome {
            var removed = ""
            if ctx.host.role == .server, let staying {
                if let problem = deleteNode(ctx.host.name, through: staying, ctx) {
                    throw TaskFailure("not uninstalled: could not remove it from the cluster through \(staying.name) "
                        + "(\(problem)); uninstalling would leave an etcd member that never comes back")
                }
                removed = "node deleted through \(staying.name) (etcd member removed); "
            }
            let r = try ctx.run(script(sysctl: sysctl))
            if r.timedOut { throw TaskFailure("timed out", result: r) }
            var o: ActionOutcome
            switch outcome(exitCode: r.exitCode, stdout: r.stdoutText, stderr: r.stderrText) {
            case .failure(let f): throw TaskFailure(removed + f.message, result: r)
            case .success(let done): o = done
            }
            o.message = removed + o.message
            if ctx.host.role == .agent, let staying {
                if let problem = deleteNode(ctx.host.name, through: staying, ctx) {
                    o.message += "; still listed as a node: \(problem)"
                } else {
                    o.message += "; node deleted through \(staying.name)"
                }
            }
            return o
        }

        /// Deletes `name`'s node through `server`; nil when done, else why not.
        func deleteNode(_ name: String, through server: FleetCore.Host, _ ctx: TaskContext) -> String? {
            do {
                let r = try ctx.connection(to: server).run(deleteNodeCommand(name), stdin: nil, timeout: ctx.commandTimeout)
                return r.succeeded ? nil : r.failureText
            } catch {
                return "\(error)"
            }
        }
    }

    /// The hosts a reset touches and how: which of them, the server that stays, the playbook.
    public struct Request: Sendable {
        public var hosts: [FleetCore.Host]
        public var staying: FleetCore.Host?
        public var sysctl: Bool

        /// `hosts` in inventory order; refused (a message) when it would reset the first server
        /// while other servers stay.
        public init(inventory: Inventory, hosts: [FleetCore.Host], sysctl: Bool) throws {
            if let problem = firstServerProblem(inventory, resetting: hosts) { throw ResetRefused(message: problem) }
            self.hosts = hosts
            self.staying = stayingServer(inventory, resetting: hosts)
            self.sysctl = sysctl
        }

        /// For `--retry-failed`: only the hosts whose last reset did not end (hosts that were reset
        /// had their records dropped; hosts never reset have no reset record).
        public func retrying(_ previous: RunState?) -> Request {
            var r = self
            r.hosts = hosts.filter { h in
                let records = previous?.hosts[h.name] ?? [:]
                return records[agentStep] != nil || records[serverStep] != nil
            }
            return r
        }

        /// The playbook; `statePlaybook` is the playbook the state file names (it keeps it).
        public func playbook(statePlaybook: String) -> Playbook {
            let action = HostResetAction(sysctl: sysctl, staying: staying)
            return Playbook(name: "reset", path: statePlaybook, steps: [
                Step(name: agentStep, description: "uninstall K3s on the agents, all at once",
                     target: .hosts(hosts.filter { $0.role == .agent }.map(\.name)), actionName: "reset", action: action),
                Step(name: serverStep, description: "then on the servers, one at a time",
                     target: .hosts(hosts.filter { $0.role == .server }.map(\.name)), actionName: "reset", action: action,
                     serial: 1, after: [agentStep]),
            ])
        }
    }

    public struct ResetRefused: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var description: String { "refusing to reset: \(message)" }
    }

    /// The playbook the state file names, kept by a reset (`defaultPlaybook` when there is none).
    public static func statePlaybook(_ inventory: Inventory, default defaultPlaybook: String) throws -> String {
        try RunState.load(path: RunState.path(forInventory: inventory.path))?.playbook ?? defaultPlaybook
    }

    /// What `--dry-run` prints.
    public static func dryRun(inventory: Inventory, request: Request, retryFailed: Bool,
                              defaultPlaybook: String) throws -> String {
        let previous = retryFailed ? try RunState.load(path: RunState.path(forInventory: inventory.path)) : nil
        let r = retryFailed ? request.retrying(previous) : request
        return try PlaybookRun.dryRun(inventory: inventory,
                                      playbook: r.playbook(statePlaybook: statePlaybook(inventory, default: defaultPlaybook)),
                                      options: .init(retryFailed: retryFailed, command: "reset"))
    }

    /// Runs the reset; the hosts whose reset ended `ok` or `changed` are dropped from the state
    /// file (their records, the reset's included), the others keep their reset records for
    /// `--retry-failed`. Throws only when the state file cannot be opened or written. `lock`: the
    /// inventory's lock, taken by the caller before it read anything (else the run takes it).
    public static func run(inventory: Inventory, request: Request, retryFailed: Bool = false, forks: Int? = nil,
                           connector: Connector, reporter: Reporter, defaultPlaybook: String,
                           lock: InventoryLock? = nil, onRunner: (Runner) -> Void = { _ in }) throws -> RunSummary {
        var r = request
        if retryFailed { r = r.retrying(try RunState.load(path: RunState.path(forInventory: inventory.path))) }
        return try PlaybookRun.run(
            inventory: inventory, playbook: r.playbook(statePlaybook: statePlaybook(inventory, default: defaultPlaybook)),
            options: .init(forks: forks, retryFailed: retryFailed, command: "reset"), connector: connector,
            reporter: reporter, lock: lock, onRunner: onRunner,
            amendState: { summary, store in
                let done = r.hosts.map(\.name).filter { h in
                    let mine = summary.results.filter { $0.host == h }
                    return !mine.isEmpty && mine.allSatisfy { $0.status == .ok || $0.status == .changed }
                }
                store.forget(hosts: done)
            })
    }
}
