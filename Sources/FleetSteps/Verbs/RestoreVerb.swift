import FleetCore
import Foundation

/// `fleet restore INVENTORY SNAPSHOT`: the cluster's datastore back as it was in a snapshot, by
/// K3s's documented procedure, as a playbook on the runner:
///
/// 1. `restore-stop`: K3s stopped on every server at once;
/// 2. `restore-reset` on the first server: the snapshot uploaded when it is a file on this machine,
///    `k3s server --cluster-reset --cluster-reset-restore-path=FILE` in the foreground, then K3s
///    started and `/readyz` awaited;
/// 3. `restore-rejoin` on the other servers, one at a time: `server/db` removed, K3s started, so
///    each rejoins the restored member;
/// 4. `restore-agents`: every agent restarted.
///
/// A step that fails blocks the ones after it.
public enum RestoreVerb {
    public static let stopStep = "restore-stop"
    public static let resetStep = "restore-reset"
    public static let rejoinStep = "restore-rejoin"
    public static let agentStep = "restore-agents"

    static let dbDirectory = "/var/lib/rancher/k3s/server/db"
    static let resetFlag = dbDirectory + "/reset-flag"

    /// The snapshot to restore: a file on this machine (uploaded first) or a name K3s lists.
    public enum Source: Sendable, Equatable {
        case local(String)
        case remote(String)

        /// A path that exists here is a local file; else a name in the server's snapshot directory.
        public init?(_ text: String) {
            if text.contains("/") || FileManager.default.fileExists(atPath: text) {
                guard FileManager.default.isReadableFile(atPath: text) else { return nil }
                self = .local(URL(fileURLWithPath: text).standardizedFileURL.path)
            } else {
                guard DatastoreSnapshot.validName(text) else { return nil }
                self = .remote(text)
            }
        }

        /// Where the file is on the first server.
        public var remotePath: String {
            switch self {
            case .local(let p): return (DatastoreSnapshot.directory as NSString).appendingPathComponent("fleet-restore-"
                + (p as NSString).lastPathComponent)
            case .remote(let n): return (DatastoreSnapshot.directory as NSString).appendingPathComponent(n)
            }
        }
    }

    /// Waits up to `seconds` for the local API to answer `/readyz`.
    static func waitReadyz(_ seconds: Int) -> String {
        "i=0; while [ $i -lt \(seconds) ]; do \(K3sInstall.binaryPath) kubectl get --raw /readyz >/dev/null 2>&1 </dev/null "
            + "&& exit 0; i=$((i+1)); sleep 1; done; echo 'no /readyz after \(seconds) s' >&2; exit 1"
    }

    /// The cluster reset, in the foreground. An earlier restore's `reset-flag` is removed first:
    /// K3s keeps it to stop a `--cluster-reset` left in a unit from resetting again at every start,
    /// and this one was asked for and confirmed.
    public static func resetCommand(_ path: String) -> String {
        "rm -f \(shellQuote(resetFlag)) && \(K3sInstall.binaryPath) server --cluster-reset "
            + "--cluster-reset-restore-path=\(shellQuote(path)) </dev/null 2>&1"
    }

    struct RestoreAction: Action {
        enum Phase: String, Sendable, Encodable { case stop, reset, rejoin, agent }
        let phase: Phase
        let source: Source
        let wait: Int

        func inputs(host: FleetCore.Host, inventory: Inventory) -> [String: String] {
            ["phase": phase.rawValue, "snapshot": source.remotePath]
        }

        func describe(_ vars: TemplateVariables) -> [String] {
            switch phase {
            case .stop: return ["systemctl stop k3s"]
            case .reset:
                var lines: [String] = []
                if case .local(let p) = source { lines.append("upload \(p) to \(source.remotePath) (0600)") }
                return lines + ["k3s server --cluster-reset --cluster-reset-restore-path=\(source.remotePath)",
                                "start k3s, wait ≤ \(wait) s for /readyz"]
            case .rejoin: return ["rm -rf \(dbDirectory)", "start k3s (it rejoins the restored server), wait ≤ \(wait) s for /readyz"]
            case .agent: return ["systemctl restart k3s-agent"]
            }
        }

        func run(_ ctx: TaskContext) throws -> ActionOutcome {
            switch phase {
            case .stop:
                try ctx.runChecked("systemctl stop k3s", "stopping k3s")
                return .changed("k3s stopped")
            case .reset:
                if case .local(let p) = source {
                    try ctx.upload(try LocalFile.contents(of: p), to: source.remotePath, mode: 0o600)
                }
                let r = try ctx.run(RestoreVerb.resetCommand(source.remotePath), timeout: Double(wait))
                guard r.succeeded else {
                    let why = K3sLog.lastError(r.stdoutText.split(separator: "\n").map(String.init)) ?? r.failureText
                    throw TaskFailure("k3s server --cluster-reset failed: \(why); K3s stays stopped on the servers", result: r)
                }
                try ctx.runChecked(K3sInstall.startCommand(.server, stopFirst: false), "starting k3s")
                try ctx.runChecked(RestoreVerb.waitReadyz(wait), "waiting for /readyz")
                return .changed("restored \(source.remotePath), k3s started, /readyz ok")
            case .rejoin:
                try ctx.runChecked("rm -rf -- \(shellQuote(dbDirectory))", "removing \(dbDirectory)")
                try ctx.runChecked(K3sInstall.startCommand(.server, stopFirst: false), "starting k3s")
                try ctx.runChecked(RestoreVerb.waitReadyz(wait), "waiting for /readyz")
                return .changed("\(dbDirectory) removed, k3s rejoined, /readyz ok")
            case .agent:
                try ctx.runChecked("systemctl restart k3s-agent", "restarting k3s-agent")
                return .changed("k3s-agent restarted")
            }
        }
    }

    /// The playbook, in K3s's order.
    public static func playbook(_ source: Source, wait: Int = 300) -> Playbook {
        func action(_ p: RestoreAction.Phase) -> RestoreAction { RestoreAction(phase: p, source: source, wait: wait) }
        return Playbook(name: "restore", path: "restore", steps: [
            Step(name: stopStep, description: "stop K3s on every server", target: .servers, actionName: "restore",
                 action: action(.stop)),
            Step(name: resetStep, description: "cluster-reset from the snapshot on the first server", target: .firstServer,
                 actionName: "restore", action: action(.reset), after: [stopStep]),
            Step(name: rejoinStep, description: "the other servers rejoin, one at a time", target: .otherServers,
                 actionName: "restore", action: action(.rejoin), serial: 1, after: [resetStep]),
            Step(name: agentStep, description: "restart the agents", target: .agents, actionName: "restore",
                 action: action(.agent), after: [rejoinStep]),
        ])
    }

    /// What the confirmation lists.
    public static func describe(_ inventory: Inventory, _ source: Source) -> [String] {
        let others = inventory.servers.dropFirst().map(\.name)
        return ["stop K3s on " + inventory.servers.map(\.name).joined(separator: ", ")
                + " (the API is down until the first server is back)",
                "\(inventory.firstServer.name): k3s server --cluster-reset --cluster-reset-restore-path=\(source.remotePath)"
                + " (every change since the snapshot is lost), then start"]
            + (others.isEmpty ? [] : ["\(others.joined(separator: ", ")): remove \(dbDirectory), start, rejoin (one at a time)"])
            + (inventory.agents.isEmpty ? [] : ["restart k3s-agent on \(inventory.agents.map(\.name).joined(separator: ", "))"])
    }

    public static func dryRun(inventory: Inventory, source: Source) throws -> String {
        try PlaybookRun.dryRun(inventory: inventory, playbook: playbook(source), options: .init(command: "restore"))
    }

    public static func run(inventory: Inventory, source: Source, connector: Connector, reporter: Reporter,
                           onRunner: (Runner) -> Void = { _ in }) -> RunSummary {
        PlaybookRun.runReadOnly(inventory: inventory, playbook: playbook(source), command: "restore", connector: connector,
                                reporter: reporter, onRunner: onRunner)
    }
}
