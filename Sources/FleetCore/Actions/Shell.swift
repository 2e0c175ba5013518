import Foundation

/// `shell`: runs a command. With `check`, a command whose success means "already done": the task
/// is then `ok` and `command` does not run.
///
///     action = "shell"
///     command = "mkdir -p /etc/myapp"
///     check = "test -d /etc/myapp"
public struct ShellAction: Action {
    public var command: Template
    public var check: Template?
    /// `false` for a command that only reads (a fact): the task then ends `ok`, not `changed`.
    public var changes: Bool

    public init(_ p: StepParams) throws {
        command = try p.requiredShellTemplate("command")
        check = try p.shellTemplate("check")
        changes = try p.bool("changes") ?? true
    }

    public struct Inputs: Encodable {
        public var check: String?
        public var command: String
        public var changes: Bool
    }

    public func inputs(host: Host, inventory: Inventory) -> Inputs {
        let vars = TemplateVariables(host: host, inventory: inventory)
        return Inputs(check: check?.render(vars, .shell), command: command.render(vars, .shell), changes: changes)
    }

    public func describe(_ vars: TemplateVariables) -> [String] {
        (check.map { ["check: " + $0.render(vars, .shell)] } ?? []) + [command.render(vars, .shell)]
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        if let check {
            let r = try ctx.run(check.render(ctx.vars, .shell))
            if r.succeeded { return .ok("check passed: nothing to do") }
        }
        let r = try ctx.runChecked(command.render(ctx.vars, .shell), "command failed")
        // Redacted before the 120-character cut, which could otherwise leave a piece of a secret.
        let line = ctx.redactor.redact(r.stdoutText).split(separator: "\n").last.map(String.init) ?? ""
        let message = line.isEmpty ? "ran" : String(line.prefix(120))
        return changes ? .changed(message) : .ok(message)
    }
}

/// `wait_for`: retries a command until it succeeds or `timeout` seconds pass.
///
///     action = "wait_for"
///     command = "test -e /var/lib/myapp/ready"
///     timeout = 120
///     interval = 2
public struct WaitForAction: Action {
    public var command: Template
    public var timeout: Double
    public var interval: Double

    public init(_ p: StepParams) throws {
        command = try p.requiredShellTemplate("command")
        timeout = try p.number("timeout") ?? 60
        interval = try p.number("interval") ?? 1
        guard timeout > 0 else { throw p.error("timeout", "must be > 0") }
        guard interval > 0 else { throw p.error("interval", "must be > 0") }
    }

    public struct Inputs: Encodable {
        public var command: String
        public var timeout: Double
        public var interval: Double
    }

    public func inputs(host: Host, inventory: Inventory) -> Inputs {
        Inputs(command: command.render(TemplateVariables(host: host, inventory: inventory), .shell), timeout: timeout,
               interval: interval)
    }

    public func describe(_ vars: TemplateVariables) -> [String] {
        ["until \(command.render(vars, .shell)) (every \(interval) s, at most \(timeout) s)"]
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        let cmd = command.render(ctx.vars, .shell)
        let outcome = try poll(ctx, timeout: timeout, interval: interval) { try ctx.run(cmd, timeout: min(ctx.commandTimeout, timeout)) }
        let (attempts, elapsed) = outcome
        return .ok("succeeded after \(attempts) attempt(s), \(String(format: "%.1f", elapsed)) s")
    }
}

/// Retries `attempt` until it succeeds, the timeout passes (→ `TaskFailure`) or the run is cancelled.
/// Returns the number of attempts and the seconds it took.
public func poll(_ ctx: TaskContext, timeout: Double, interval: Double,
                 _ attempt: () throws -> CommandResult) throws -> (Int, Double) {
    let start = Date()
    var attempts = 0
    while true {
        attempts += 1
        let r = try attempt()
        let elapsed = Date().timeIntervalSince(start)
        if r.succeeded { return (attempts, elapsed) }
        if elapsed + interval > timeout || ctx.cancelled {
            throw TaskFailure("still failing after \(attempts) attempt(s) in \(Int(elapsed)) s: \(r.failureText)", result: r)
        }
        Thread.sleep(forTimeInterval: interval)
    }
}
