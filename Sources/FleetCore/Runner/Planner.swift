import Foundation

/// One (host, step) pair the runner will consider.
public struct PlannedTask: Sendable {
    public var host: Host
    public var step: Step
    public var stepIndex: Int
    /// SHA-256 of the step's inputs for this host (no secrets): see ``Planner/digest(_:host:inventory:)``.
    public var digest: String
    /// Set when `--retry-failed` found this pair done with unchanged inputs.
    public var skipReason: String?
}

/// Decides which (host, step) pairs run: targets, `--limit`, and `--retry-failed` (`tasks`).
///
/// Words kept apart: the planner picks a run's *tasks*; an action *describes* what it would do for
/// `--dry-run` (`Action.describe`); its *inputs* are the digest; a step's *plan* is only its pure
/// diff from facts to changes, in the steps themselves.
public enum Planner {
    /// - Parameters:
    ///   - limit: host names; the steps that produce values those hosts need still run where they live.
    ///   - previous: the state file's records, for `--retry-failed`.
    public static func tasks(inventory: Inventory, playbook: Playbook, limit: Set<String>? = nil,
                            steps stepFilter: Set<String>? = nil,
                            retryFailed previous: RunState? = nil) -> [PlannedTask] {
        var tasks: [PlannedTask] = []
        for (i, step) in playbook.steps.enumerated() where stepFilter?.contains(step.name) ?? true {
            for host in step.target.hosts(in: inventory) {
                tasks.append(PlannedTask(host: host, step: step, stepIndex: i, digest: digest(step, host: host, inventory: inventory)))
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

    /// SHA-256 of what a step is on one host: its action, target, `needs` and `after`, and the JSON
    /// (sorted keys) of its action's ``Action/inputs(host:inventory:)``. The words `--dry-run`
    /// prints are not part of it. Inputs that cannot be read (a missing local file) give a digest
    /// naming the error, so the step runs and reports it.
    public static func digest(_ step: Step, host: Host, inventory: Inventory) -> String {
        let inputs: String
        do {
            inputs = try inputsJSON(step.action, host: host, inventory: inventory)
        } catch {
            inputs = "inputs unreadable: \(error)"
        }
        let text = ([step.actionName, step.target.description, step.needs.joined(separator: ","), inputs]
            + (step.after.isEmpty ? [] : ["after " + step.after.joined(separator: ",")])).joined(separator: "\n")
        return sha256Hex(Data(text.utf8))
    }

    /// The action's inputs for one host as canonical JSON (keys sorted).
    public static func inputsJSON(_ action: any Action, host: Host, inventory: Inventory) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(action.inputs(host: host, inventory: inventory)), as: UTF8.self)
    }
}
