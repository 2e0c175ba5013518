/// Bookkeeping for steps with `serial = N`: which host may start next, and when the rest must stop.
/// Not thread-safe; the runner calls it under its lock.
struct SerialGate {
    private struct StepState {
        /// The hosts that run the step, in inventory order.
        var order: [String]
        var limit: Int
        var started: Set<String> = []
        var ended: Set<String> = []
        /// Set by the first host that started the step and did not succeed.
        var failure: String?

        var running: Int { started.subtracting(ended).count }
    }

    enum Decision: Equatable {
        case start
        case wait
        /// An earlier host failed this step: do not start it.
        case stop(String)
    }

    private var steps: [Int: StepState] = [:]

    /// `tasks` in the planner's order: within a step, inventory order.
    init(tasks: [PlannedTask]) {
        for t in tasks {
            guard let limit = t.step.serial else { continue }
            steps[t.stepIndex, default: StepState(order: [], limit: limit)].order.append(t.host.name)
        }
    }

    /// Whether `host` may start step `stepIndex` now. It may when every host before it has started
    /// or ended the step and fewer than `serial` are running it.
    func decide(stepIndex: Int, host: String) -> Decision {
        guard let s = steps[stepIndex] else { return .start }
        if let failure = s.failure { return .stop(failure) }
        guard let position = s.order.firstIndex(of: host) else { return .start }
        let earlier = s.order[..<position]
        if earlier.allSatisfy({ s.started.contains($0) || s.ended.contains($0) }), s.running < s.limit {
            return .start
        }
        return .wait
    }

    mutating func started(stepIndex: Int, host: String) {
        steps[stepIndex]?.started.insert(host)
    }

    /// The host's task for the step ended, whether it ran or not. A task that ran and did not
    /// succeed stops the hosts after it.
    mutating func ended(stepIndex: Int, stepName: String, host: String, status: TaskStatus) {
        guard var s = steps[stepIndex] else { return }
        let ran = s.started.contains(host)
        s.ended.insert(host)
        if ran, !status.succeeded, s.failure == nil {
            s.failure = "not run: \(stepName) ended \(status.rawValue) on \(host), and a step with serial = \(s.limit) "
                + "stops at the first failure"
        }
        steps[stepIndex] = s
    }
}
