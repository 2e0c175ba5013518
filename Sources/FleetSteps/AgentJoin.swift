import FleetCore
import Foundation

/// `k3s_agent`: joins an agent to the first server. config.yaml names the server as
/// `https://[node_ip]:6443` and reads the token from a 0600 file uploaded over stdin; the token is
/// never on a command line. Waits until the agent is active and its log says it registered, and
/// fails fast when the server refuses the token.
///
///     action = "k3s_agent"
///     target = "agents"
///     needs = ["token"]
///     secret = "token"   # optional: the value holding the join token
///     timeout = 180      # optional: seconds to wait for the agent
public struct K3sAgentAction: Action {
    public var secret: String
    public var wait: Double

    public init(_ p: StepParams) throws {
        secret = try p.string("secret") ?? "token"
        wait = try p.number("timeout") ?? 180
        guard wait > 0 else { throw p.error("timeout", "must be > 0") }
    }

    public init(secret: String = "token", wait: Double = 180) {
        self.secret = secret
        self.wait = wait
    }

    /// The config.yaml text, the version and source, the air-gap files' hashes, the wait, and the
    /// name of the token value.
    public func inputs(host: FleetCore.Host, inventory: Inventory) throws -> K3sInstall.Inputs {
        let config = try K3sConfigFile.render(K3sConfigFile.agent(host: host, inventory: inventory))
        return try K3sInstall.inputs(role: .agent, config: config, inventory: inventory, secret: secret, wait: wait)
    }

    public func describe(_ vars: TemplateVariables) -> [String] {
        [
            "write \(K3sConfigFile.path) (0600): server \(vars["registration_url"]), node-ip \(vars["host.node_ip"]), "
                + "token-file \(K3sConfigFile.tokenPath)",
            "upload <secret \(secret)> to \(K3sConfigFile.tokenPath) mode 600",
            "install k3s \(vars["cluster.k3s_version"]) as agent (INSTALL_K3S_EXEC=agent) from [k3s] source",
            "start, or restart when the binary, config or token changed; wait ≤ \(Int(wait)) s for the agent to register",
        ]
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        let token = try ctx.value(secret)
        let job = K3sInstall.Job(inputs: try inputs(host: ctx.host, inventory: ctx.inventory), token: token)
        return try K3sInstall.run(job, ctx)
    }
}
