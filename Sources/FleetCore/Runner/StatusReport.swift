import Foundation

/// `fleet status`: per host, the last result of every step and whether it answers now.
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
        public var rttMs: Double?
        public var error: String?
        public var steps: [StepStatus]

        enum CodingKeys: String, CodingKey {
            case host, address, role, reachable, error, steps
            case rttMs = "rtt_ms"
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

    /// Builds the report. With a playbook, each host lists the steps that target it (those never
    /// run show `never`); steps recorded in the state but not in the playbook follow. Records of
    /// playbook steps that no longer target the host (its role changed) come last, marked not current.
    struct Probe: Sendable {
        var reachable: Bool
        var rttMs: Double?
        var error: String?
    }

    public static func make(inventory: Inventory, playbook: Playbook?, state: RunState?, connector: Connector,
                            forks: Int, now: Date = Date()) -> StatusReport {
        // Per host, in inventory order: reachable, round trip in ms, error.
        let live = parallelMap(inventory.hosts, limit: forks) { host -> Probe in
            do {
                let c = try connector.connect(to: host)
                defer { c.close() }
                let rtt = try c.ping()
                return Probe(reachable: true, rttMs: (rtt * 10000).rounded() / 10, error: nil)
            } catch {
                return Probe(reachable: false, rttMs: nil, error: String(describing: error))
            }
        }

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
                                    reachable: l.reachable, rttMs: l.rttMs, error: l.error, steps: stepStatus))
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
            let live = h.reachable ? "reachable, rtt \(h.rttMs.map { String(format: "%.1f", $0) } ?? "?") ms" : "UNREACHABLE: \(h.error ?? "")"
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
