import Foundation

/// What a step does. One type per action; the playbook names it and passes parameters.
///
/// An action reads facts first, then changes only what is not yet as wanted (pyinfra's model):
/// `ok` when nothing had to change, `changed` when something did.
public protocol Action: Sendable {
    /// What ``inputs(host:inventory:)`` returns: a value of exactly the settings the step reads.
    associatedtype Inputs: Encodable

    /// Values this step produces for other hosts' steps (`needs`), e.g. a join secret.
    var produces: [String] { get }
    /// Exactly the settings this step reads for one host (rendered templates, inventory values, the
    /// hashes of local files it sends), as a value. Its JSON is the step's digest in the state file,
    /// so `--retry-failed` reruns a step whose settings changed. Never holds a secret. `run` reads
    /// its settings from this same value, so a setting cannot be used and yet left out of the digest.
    func inputs(host: Host, inventory: Inventory) throws -> Inputs
    /// What the step will do on one host, in words, for `--dry-run`. Not part of the digest.
    /// Never contains a secret.
    func describe(_ vars: TemplateVariables) -> [String]
    /// Runs the step on one host. Throws `TaskFailure` when it fails.
    func run(_ ctx: TaskContext) throws -> ActionOutcome
    /// The task's result carries its last command's whole output (`TaskResult.output`), for a verb
    /// that prints it; otherwise only the tails are kept.
    var keepsOutput: Bool { get }
}

extension Action {
    public var produces: [String] { [] }
    public var keepsOutput: Bool { false }
}

/// How an action ended when it did not fail.
public struct ActionOutcome: Sendable {
    public enum Status: Sendable { case ok, changed, skipped }

    public var status: Status
    public var message: String

    public init(_ status: Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public static func ok(_ message: String) -> ActionOutcome { ActionOutcome(.ok, message) }
    public static func changed(_ message: String) -> ActionOutcome { ActionOutcome(.changed, message) }
    public static func skipped(_ message: String) -> ActionOutcome { ActionOutcome(.skipped, message) }
}

/// A step failed on a host: a one-line message, and the command output that explains it.
///
/// `refused`: the step declined before changing anything, because what it was asked for is another
/// verb's job; the task ends `refused` rather than `failed`.
public struct TaskFailure: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var result: CommandResult?
    public var refused: Bool

    public init(_ message: String, result: CommandResult? = nil, refused: Bool = false) {
        self.message = message
        self.result = result
        self.refused = refused
    }

    public var description: String { message }
}

/// Builds an action from a step's parameters; registered by name.
public typealias ActionFactory = @Sendable (StepParams) throws -> any Action

/// The actions a playbook may name.
public struct ActionRegistry: Sendable {
    public private(set) var factories: [String: ActionFactory] = [:]
    /// The template variables steps may name: the engine's, plus a module's (``InventorySchema/variables``).
    public var variables: [String] = Template.engineVariables

    public init() {}

    public mutating func register(_ name: String, _ factory: @escaping ActionFactory) {
        factories[name] = factory
    }

    public func make(_ name: String, _ params: StepParams) throws -> any Action {
        guard let factory = factories[name] else {
            throw params.error("action", "unknown action \"\(name)\"" + suggestion(for: name, among: Array(factories.keys))
                + "; known: " + factories.keys.sorted().joined(separator: ", "))
        }
        let action = try factory(params)
        try params.finish(action: name)
        return action
    }

    /// shell, sysctl, upload, fetch_secret, wait_for.
    public static var builtIn: ActionRegistry {
        var r = ActionRegistry()
        r.register("shell") { try ShellAction($0) }
        r.register("sysctl") { try SysctlAction($0) }
        r.register("upload") { try UploadAction($0) }
        r.register("fetch_secret") { try FetchSecretAction($0) }
        r.register("wait_for") { try WaitForAction($0) }
        return r
    }
}
