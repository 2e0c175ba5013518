import Foundation

/// `fleet status`: per host, the last result of every step and whether it answers now. The live
/// part is a one-step playbook (`probe`) run by the runner; the rest is read from the state file.
public struct StatusReport: Sendable, Encodable {
    public struct StepStatus: Sendable, Encodable {
        public var step: String
        public var status: String
        public var at: Date?
        public var ageSeconds: Int?
        public var runId: String?
        public var message: String
        /// False for a record of a playbook step that no longer targets this host (its role changed):
        /// shown, but not part of the host's health.
        public var current = true

        enum CodingKeys: String, CodingKey {
            case step, status, at, message, current
            case ageSeconds = "age_s"
            case runId = "run_id"
        }
    }

    public struct HostStatus: Sendable, Encodable {
        public var host: String
        public var address: String
        public var role: String
        public var reachable: Bool
        /// Milliseconds a whole no-op command took over the host's connection (channel, `true`,
        /// exit status): what a one-command step costs at least, beyond connecting.
        public var noOpCommandMs: Double?
        public var error: String?
        public var steps: [StepStatus]

        enum CodingKeys: String, CodingKey {
            case host, address, role, reachable, error, steps
            case noOpCommandMs = "noop_command_ms"
        }

        public var healthy: Bool {
            reachable && steps.allSatisfy { !$0.current || (TaskStatus(rawValue: $0.status)?.succeeded ?? false) }
        }
    }

    public var inventory: String
    public var lastRun: RunState.RunRecord?
    public var hosts: [HostStatus]
    public var healthy: Bool { hosts.allSatisfy(\.healthy) }

    enum CodingKeys: String, CodingKey {
        case inventory, hosts, healthy
        case lastRun = "last_run"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(inventory, forKey: .inventory)
        try c.encodeIfPresent(lastRun, forKey: .lastRun)
        try c.encode(hosts, forKey: .hosts)
        try c.encode(healthy, forKey: .healthy)
    }

    public static let probeStep = "probe"

    /// Times a no-op command on the host's connection; hands the milliseconds to `record`.
    struct ProbeAction: Action {
        let record: @Sendable (String, Double) -> Void
        func inputs(host: Host, inventory: Inventory) -> String { "true" }
        func describe(_ vars: TemplateVariables) -> [String] { ["time a no-op command (true)"] }
        func run(_ ctx: TaskContext) throws -> ActionOutcome {
            let ms = (try ctx.connection.timeNoOpCommand() * 10000).rounded() / 10
            record(ctx.host.name, ms)
            return .ok(String(format: "a no-op command took %.1f ms", ms))
        }
    }

    struct Probe: Sendable {
        var reachable: Bool
        var noOpCommandMs: Double?
        var error: String?
    }

    /// Probes every host at once (at most `forks`) through the runner: reachable, and how long a
    /// no-op command takes. In inventory order.
    static func probe(_ inventory: Inventory, connector: Connector, forks: Int,
                      onRunner: (Runner) -> Void) -> [Probe] {
        let times = Locked<[String: Double]>([:])
        let action = ProbeAction { host, ms in times.withLock { $0[host] = ms } }
        let book = Playbook(name: "status", path: "status",
                            steps: [Step(name: probeStep, target: .all, actionName: "probe", action: action)])
        let summary = PlaybookRun.runReadOnly(inventory: inventory, playbook: book, forks: forks, command: "status",
                                              connector: connector, reporter: EachResultReporter { _ in },
                                              onRunner: onRunner)
        let measured = times.withLock { $0 }
        return inventory.hosts.map { host in
            let r = summary.result(host: host.name, step: probeStep)
            if let ms = measured[host.name], r?.status.succeeded ?? false {
                return Probe(reachable: true, noOpCommandMs: ms, error: nil)
            }
            return Probe(reachable: false, noOpCommandMs: nil, error: r?.message ?? "not probed")
        }
    }

    /// Builds the report. With a playbook, each host lists the steps that target it (those never
    /// run show `never`); steps recorded in the state but not in the playbook follow. Records of
    /// playbook steps that no longer target the host (its role changed) come last, marked not current.
    public static func make(inventory: Inventory, playbook: Playbook?, state: RunState?, connector: Connector,
                            forks: Int, now: Date = Date(), onRunner: (Runner) -> Void = { _ in }) -> StatusReport {
        let live = probe(inventory, connector: connector, forks: forks, onRunner: onRunner)

        // Each step's target hosts, once.
        let targets = (playbook?.steps ?? []).map { ($0.name, Set($0.target.hosts(in: inventory).map(\.name))) }
        let inPlaybook = Set(targets.map(\.0))
        var hosts: [HostStatus] = []
        for (host, l) in zip(inventory.hosts, live) {
            let records = state?.hosts[host.name] ?? [:]
            let steps = targets.filter { $0.1.contains(host.name) }.map(\.0)
            let others = records.keys.filter { !steps.contains($0) }.sorted()
            let names = steps + others.filter { !inPlaybook.contains($0) } + others.filter(inPlaybook.contains)
            let stepStatus = names.map { name -> StepStatus in
                guard let r = records[name] else {
                    return StepStatus(step: name, status: "never", at: nil, ageSeconds: nil, runId: nil, message: "")
                }
                let current = steps.contains(name) || !inPlaybook.contains(name)
                return StepStatus(step: name, status: r.status.rawValue, at: r.at,
                                  ageSeconds: Int(now.timeIntervalSince(r.at)), runId: r.runId,
                                  message: (current ? "" : "no longer targets this host (role changed?); ") + r.message,
                                  current: current)
            }
            hosts.append(HostStatus(host: host.name, address: host.address, role: host.role.rawValue,
                                    reachable: l.reachable, noOpCommandMs: l.noOpCommandMs, error: l.error, steps: stepStatus))
        }
        return StatusReport(inventory: inventory.path, lastRun: state?.lastRun, hosts: hosts)
    }

    public var text: String {
        var out = ""
        if let run = lastRun {
            let counts = run.counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            out += "last run \(run.id) (\(run.command)): \(run.outcome)" + (counts.isEmpty ? "" : ", \(counts)") + "\n"
        } else {
            out += "no run recorded yet for \(inventory)\n"
        }
        for h in hosts {
            let live = h.reachable ? "reachable, a no-op command took \(h.noOpCommandMs.map { String(format: "%.1f", $0) } ?? "?") ms"
                : "UNREACHABLE: \(h.error ?? "")"
            out += "\n\(h.host) [\(h.address)] \(h.role): \(live)\n"
            for s in h.steps {
                let age = s.ageSeconds.map { " \(StatusReport.age($0)) ago" } ?? ""
                out += "  \(s.step.padding(toLength: 16, withPad: " ", startingAt: 0)) \(s.status.padding(toLength: 11, withPad: " ", startingAt: 0))\(age)"
                out += s.message.isEmpty ? "\n" : "  \(s.message)\n"
            }
        }
        out += healthy ? "\nhealthy\n" : "\nNOT healthy\n"
        return out
    }

    static func age(_ s: Int) -> String {
        if s < 120 { return "\(s) s" }
        if s < 7200 { return "\(s / 60) min" }
        if s < 172_800 { return "\(s / 3600) h" }
        return "\(s / 86400) d"
    }
}
