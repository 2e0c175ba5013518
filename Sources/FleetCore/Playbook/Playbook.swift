import Foundation

/// An ordered list of steps. The file only orders and parameterises: what a step does lives in
/// its action's code.
public struct Playbook: Sendable {
    public var name: String
    public var path: String
    public var description: String
    public var steps: [Step]

    public init(name: String, path: String, description: String = "", steps: [Step]) {
        self.name = name
        self.path = path
        self.description = description
        self.steps = steps
    }

    public func step(named name: String) -> Step? { steps.first { $0.name == name } }
}

/// One playbook step: an action run on a target, with parameters.
public struct Step: Sendable {
    public var name: String
    public var description: String
    public var target: Target
    public var actionName: String
    public var action: any Action
    /// Values produced by earlier steps on other hosts that this step waits for (e.g. a join secret).
    public var needs: [String]
    /// Overrides `[ssh] command_timeout` for this step's commands.
    public var timeout: Double?
    /// At most this many hosts run the step at once, started in inventory order; the first failure
    /// stops the hosts that have not started it (`serial = 1`: one at a time, e.g. members joining a quorum).
    /// `nil`: every host at once (within `forks`).
    public var serial: Int?
    /// Earlier steps that must have ended on every host before this step starts on any; if one of
    /// them did not succeed somewhere, this step is blocked (e.g. verify after the joins).
    public var after: [String]

    public init(name: String, description: String = "", target: Target, actionName: String, action: any Action,
                needs: [String] = [], timeout: Double? = nil, serial: Int? = nil, after: [String] = []) {
        self.name = name
        self.description = description
        self.target = target
        self.actionName = actionName
        self.action = action
        self.needs = needs
        self.timeout = timeout
        self.serial = serial
        self.after = after
    }
}

/// Which hosts a step runs on.
public enum Target: Sendable, Equatable, CustomStringConvertible {
    case all
    case servers
    case agents
    case firstServer
    /// Every server but the first: the ones that join it.
    case otherServers
    case hosts([String])

    public init(parsing text: String) throws {
        switch text {
        case "all": self = .all
        case "servers": self = .servers
        case "agents": self = .agents
        case "first-server": self = .firstServer
        case "other-servers": self = .otherServers
        default: self = .hosts([text])
        }
    }

    public func hosts(in inventory: Inventory) -> [Host] {
        switch self {
        case .all: return inventory.hosts
        case .servers: return inventory.servers
        case .agents: return inventory.agents
        case .firstServer: return [inventory.firstServer]
        case .otherServers: return Array(inventory.servers.dropFirst())
        case .hosts(let names): return inventory.hosts.filter { names.contains($0.name) }
        }
    }

    public var description: String {
        switch self {
        case .all: return "all"
        case .servers: return "servers"
        case .agents: return "agents"
        case .firstServer: return "first-server"
        case .otherServers: return "other-servers"
        case .hosts(let names): return names.joined(separator: ",")
        }
    }
}

/// A problem in a playbook file: names the file, the step and the key.
public struct PlaybookError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var step: String?
    public var key: String?
    public var message: String

    public init(file: String, step: String? = nil, key: String? = nil, message: String) {
        self.file = file
        self.step = step
        self.key = key
        self.message = message
    }

    public var description: String {
        var where_ = file
        if let step { where_ += ": step \"\(step)\"" }
        if let key { where_ += " key \"\(key)\"" }
        return "\(where_): \(message)"
    }
}
