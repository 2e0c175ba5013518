import Foundation

/// Everything an action may use while it runs on one host.
public final class TaskContext: @unchecked Sendable {
    public let host: Host
    public let inventory: Inventory
    public let step: Step
    public let connection: Connection
    public let vars: TemplateVariables
    /// Values this step `needs`, produced by other hosts' steps.
    public let values: [String: Secret]
    public let redactor: Redactor
    /// Timeout for each command (the step's, else `[ssh] command_timeout`).
    public let commandTimeout: Double
    /// The last command's result, for the task's output tails.
    public private(set) var lastResult: CommandResult?
    private(set) var produced: [String: Secret] = [:]
    /// Set from another thread to stop waiting loops early (Ctrl-C).
    let isCancelled: @Sendable () -> Bool
    private let pool: ConnectionPool

    init(host: Host, inventory: Inventory, step: Step, connection: Connection, values: [String: Secret],
         redactor: Redactor, commandTimeout: Double, pool: ConnectionPool, isCancelled: @escaping @Sendable () -> Bool) {
        self.pool = pool
        self.host = host
        self.inventory = inventory
        self.step = step
        self.connection = connection
        self.vars = TemplateVariables(host: host, inventory: inventory)
        self.values = values
        self.redactor = redactor
        self.commandTimeout = commandTimeout
        self.isCancelled = isCancelled
    }

    public var cancelled: Bool { isCancelled() }

    /// A connection to another host of the inventory (a drain or a node deletion through a server):
    /// opened through the run's connector the first time a task asks, then shared by every task of
    /// the run (one command at a time), reopened after it dropped, and closed when the run ends.
    /// Its own host gives the task's own `connection`. Throws `ConnectionError` when it cannot connect.
    public func connection(to other: Host) throws -> Connection {
        if other.name == host.name { return connection }
        return try pool.connection(to: other)
    }

    /// Runs a command; a non-zero exit is returned, not thrown.
    @discardableResult
    public func run(_ command: String, stdin: Data? = nil, timeout: Double? = nil) throws -> CommandResult {
        let r = try connection.run(command, stdin: stdin, timeout: timeout ?? commandTimeout)
        lastResult = r
        return r
    }

    /// Runs a command that must succeed; throws `TaskFailure("<what>: exit N: <stderr>")` otherwise.
    @discardableResult
    public func runChecked(_ command: String, _ what: String, stdin: Data? = nil, timeout: Double? = nil) throws -> CommandResult {
        let r = try run(command, stdin: stdin, timeout: timeout)
        guard r.succeeded else {
            throw TaskFailure("\(what): \(r.failureText)", result: r)
        }
        return r
    }

    /// Writes a remote file within the step's command timeout.
    public func upload(_ data: Data, to path: String, mode: Int) throws {
        try RemotePath.check(path, file: true, host: host.name)
        try connection.upload(data, to: path, mode: mode, timeout: commandTimeout)
    }

    /// Writes a remote file unless it already has this content and mode; true when it wrote.
    public func uploadIfChanged(_ data: Data, to path: String, mode: Int) throws -> Bool {
        try RemotePath.check(path, file: true, host: host.name)
        return try connection.uploadIfChanged(data, to: path, mode: mode, timeout: commandTimeout)
    }

    /// Reads a remote file within the step's command timeout; `nil` when it does not exist.
    public func read(_ path: String) throws -> Data? {
        try connection.read(path, timeout: commandTimeout)
    }

    /// Makes a value available to steps on other hosts that `need` it. Registered for redaction.
    public func produce(_ secret: Secret) {
        redactor.register(secret)
        produced[secret.name] = secret
    }

    public func value(_ name: String) throws -> Secret {
        guard let v = values[name] else {
            throw TaskFailure("step \"\(step.name)\" needs \"\(name)\" but no earlier step produced it")
        }
        return v
    }
}
