import FleetCore
import Foundation

/// What an upgrade reads before it decides anything, in one round trip per host and nothing
/// changed: each host's `k3s --version`, and the nodes as the first server's API lists them.
public struct UpgradeFacts: Sendable, Equatable {
    /// Host name → the version its binary reports (nil: not installed); hosts that could not be
    /// reached are absent.
    public var versions: [String: K3sVersion?]
    /// Nodes by name (nil: the first server's API did not answer).
    public var nodes: [String: NodeState]?
    /// Hosts that could not be read, with why.
    public var unreachable: [String: String]

    public init(versions: [String: K3sVersion?], nodes: [String: NodeState]?, unreachable: [String: String] = [:]) {
        self.versions = versions
        self.nodes = nodes
        self.unreachable = unreachable
    }

    static let step = "upgrade-facts"

    struct Reading: Sendable {
        var version: K3sVersion?
        var nodes: [String: NodeState]?
    }

    /// Reads one host: `k3s --version`, and on the first server the node list.
    struct ReadAction: Action {
        let record: @Sendable (String, Reading) -> Void

        func inputs(host: FleetCore.Host, inventory: Inventory) -> [String: String] { [:] }

        func describe(_ vars: TemplateVariables) -> [String] { ["read k3s --version (and on the first server the nodes)"] }

        func run(_ ctx: TaskContext) throws -> ActionOutcome {
            var s = FactScript()
            s.add("version", "\(K3sInstall.binaryPath) --version </dev/null 2>/dev/null | head -n 1")
            let first = ctx.host.name == ctx.inventory.firstServer.name
            if first { s.add("nodes", NodeCommands.list + " 2>/dev/null") }
            let r = try ctx.run(s.command)
            let sec = FactScript.sections(r.stdoutText)
            let reading = Reading(version: K3sVersion(versionOutput: sec["version"] ?? ""),
                                  nodes: first ? NodeState.parse(sec["nodes"] ?? "") : nil)
            record(ctx.host.name, reading)
            return .ok(reading.version?.description ?? "no k3s")
        }
    }

    /// Reads every host at once (at most `forks`), changing nothing and leaving the state file alone.
    public static func gather(inventory: Inventory, connector: Connector, forks: Int? = nil) -> UpgradeFacts {
        let readings = Locked<[String: Reading]>([:])
        let failures = Locked<[String: String]>([:])
        let book = Playbook(name: "upgrade-facts", path: "upgrade", steps: [
            Step(name: step, target: .all, actionName: "upgrade-facts",
                 action: ReadAction { host, reading in readings.withLock { $0[host] = reading } }),
        ])
        let reporter = EachResultReporter { r in
            if !r.status.succeeded { failures.withLock { $0[r.host] = r.message } }
        }
        _ = PlaybookRun.runReadOnly(inventory: inventory, playbook: book, forks: forks, command: "upgrade",
                                    connector: connector, reporter: reporter)
        let all = readings.withLock { $0 }
        var versions: [String: K3sVersion?] = [:]
        for (host, reading) in all { versions[host] = .some(reading.version) }
        return UpgradeFacts(versions: versions, nodes: all[inventory.firstServer.name]?.nodes,
                            unreachable: failures.withLock { $0 })
    }
}
