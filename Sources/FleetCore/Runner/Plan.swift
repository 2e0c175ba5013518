import Foundation

/// One (host, step) pair the runner will consider.
public struct PlannedTask: Sendable {
    public var host: Host
    public var step: Step
    public var stepIndex: Int
    /// SHA-256 of the step's rendered inputs for this host (no secrets).
    public var digest: String
    /// Set when `--retry-failed` found this pair done with unchanged inputs.
    public var skipReason: String?
}

/// Decides which (host, step) pairs run: targets, `--limit`, and `--retry-failed`.
public enum Planner {
    /// - Parameters:
    ///   - limit: host names; the steps that produce values those hosts need still run where they live.
    ///   - previous: the state file's records, for `--retry-failed`.
    public static func plan(inventory: Inventory, playbook: Playbook, limit: Set<String>? = nil,
                            steps stepFilter: Set<String>? = nil,
                            retryFailed previous: RunState? = nil) -> [PlannedTask] {
        var tasks: [PlannedTask] = []
        let settings = inventorySettings(inventory)
        for (i, step) in playbook.steps.enumerated() where stepFilter?.contains(step.name) ?? true {
            for host in step.target.hosts(in: inventory) {
                let vars = TemplateVariables(host: host, inventory: inventory)
                tasks.append(PlannedTask(host: host, step: step, stepIndex: i, digest: digest(step, vars, settings: settings)))
            }
        }
        if let limit {
            // Keep the limited hosts' tasks, plus the producers of values they need, and of values those
            // producers need in turn.
            // Positions in `tasks`, which is already in (step, inventory) order.
            var kept = Set(tasks.indices.filter { limit.contains(tasks[$0].host.name) })
            var needed = Set(kept.flatMap { tasks[$0].step.needs })
            while true {
                let producers = tasks.indices.filter { i in
                    !kept.contains(i) && !tasks[i].step.action.produces.filter(needed.contains).isEmpty
                }
                if producers.isEmpty { break }
                kept.formUnion(producers)
                needed.formUnion(producers.flatMap { tasks[$0].step.needs })
            }
            tasks = tasks.indices.filter(kept.contains).map { tasks[$0] }
        }
        if let previous {
            for i in tasks.indices {
                let t = tasks[i]
                if let rec = previous.record(host: t.host.name, step: t.step.name), rec.status.succeeded, rec.digest == t.digest {
                    tasks[i].skipReason = "done in run \(rec.runId), inputs unchanged"
                }
            }
            // A value a retried task needs is fetched again, never taken from the state; so are the values
            // an un-skipped producer needs. A step that runs `after` a step with a retried task runs again too.
            var unskipped = true
            while unskipped {
                unskipped = false
                let running = tasks.filter { $0.skipReason == nil }
                let needed = Set(running.flatMap { $0.step.needs })
                let rerunSteps = Set(running.map(\.step.name))
                for i in tasks.indices where tasks[i].skipReason != nil {
                    if !tasks[i].step.action.produces.filter(needed.contains).isEmpty
                        || tasks[i].step.after.contains(where: rerunSteps.contains) {
                        tasks[i].skipReason = nil
                        unskipped = true
                    }
                }
            }
        }
        return tasks
    }

    /// Cluster-wide settings steps read without naming them in templates (`disable`, `tls_san`, the
    /// air-gap files): part of every digest, so changing one reruns what `--retry-failed` would
    /// otherwise skip. Air-gap files count by name, size and modification time, not content.
    public static func inventorySettings(_ inventory: Inventory) -> String {
        let c = inventory.cluster
        var parts = ["cluster \(c.name) \(c.clusterCIDR) \(c.serviceCIDR) \(c.effectiveClusterDNS) masq=\(c.flannelIPv6Masq)",
                     "disable=\(c.disable.joined(separator: ",")) version=\(c.k3sVersion) tls_san=\(c.tlsSAN.joined(separator: ","))",
                     "k3s source=\(inventory.k3s.source.rawValue)"]
        if inventory.k3s.source == .airgap, let dir = inventory.k3s.airgapDir {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir).sorted()) ?? []
            for name in names {
                let attrs = try? FileManager.default.attributesOfItem(atPath: (dir as NSString).appendingPathComponent(name))
                let size = (attrs?[.size] as? NSNumber)?.int64Value ?? -1
                let mtime = (attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
                parts.append("airgap \(name) \(size) \(mtime)")
            }
        }
        return parts.joined(separator: "\n")
    }

    public static func digest(_ step: Step, _ vars: TemplateVariables, settings: String = "") -> String {
        let text = ([step.actionName, step.target.description, step.needs.joined(separator: ","), settings]
            + (step.after.isEmpty ? [] : ["after " + step.after.joined(separator: ",")])
            + step.action.plan(vars)).joined(separator: "\n")
        return sha256Hex(Data(text.utf8))
    }
}
