import FleetCore
import Foundation

/// `k3s_server`: a K3s server. Writes config.yaml (0600), installs K3s from `[k3s] source`,
/// starts or restarts it only when something changed, and waits until the token exists and the
/// API answers `/readyz`.
///
/// On the first server it starts the cluster (with `cluster-init` when the inventory has several
/// servers). On any other server it joins the first: config.yaml names `server` and a 0600 token
/// file, so the step needs the token and should run one host at a time (`serial = 1`), as etcd
/// adds members one by one.
///
///     action = "k3s_server"
///     target = "first-server"   # or "other-servers", with needs = ["token"] and serial = 1
///     secret = "token"          # optional: the value holding the join token (joining servers)
///     timeout = 300             # optional: seconds to wait for readiness
public struct K3sServerAction: Action {
    public var secret: String
    public var wait: Double

    public init(_ p: StepParams) throws {
        secret = try p.string("secret") ?? "token"
        wait = try p.number("timeout") ?? 300
        guard wait > 0 else { throw p.error("timeout", "must be > 0") }
    }

    public init(secret: String = "token", wait: Double = 300) {
        self.secret = secret
        self.wait = wait
    }

    /// The config.yaml text, the version and source, the air-gap files' hashes, the wait, and for a
    /// joining server the name of its token value.
    public func inputs(host: FleetCore.Host, inventory: Inventory) throws -> K3sInstall.Inputs {
        let joining = host.name != inventory.firstServer.name
        let config = try K3sConfigFile.render(K3sConfigFile.server(host: host, inventory: inventory))
        return try K3sInstall.inputs(role: .server, config: config, inventory: inventory, secret: joining ? secret : nil,
                                     wait: wait)
    }

    public func describe(_ vars: TemplateVariables) -> [String] {
        let joining = vars["host.name"] != vars["first_server.name"]
        return [
            "write \(K3sConfigFile.path) (0600): "
                + (joining ? "server \(vars["server_url"]), token-file \(K3sConfigFile.tokenPath), " : "")
                + "node-ip \(vars["host.node_ip"]), cluster-cidr \(vars["cluster.cluster_cidr"]), "
                + "service-cidr \(vars["cluster.service_cidr"]), cluster-dns \(vars["cluster.cluster_dns"]), "
                + "flannel-ipv6-masq \(vars["cluster.flannel_ipv6_masq"]), disable, tls-san and the cni and embedded_registry keys from [cluster]"
                + (!joining && vars["cluster.servers"] != "1" ? ", cluster-init" : ""),
        ] + (joining ? ["upload <secret \(secret)> to \(K3sConfigFile.tokenPath) mode 600"] : []) + [
            "install k3s \(vars["cluster.k3s_version"]) as server (INSTALL_K3S_EXEC=server) from [k3s] source",
            "start, or restart when the binary or config changed; wait ≤ \(Int(wait)) s for the token and /readyz",
        ]
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        let joining = ctx.host.name != ctx.inventory.firstServer.name
        var token: Secret?
        if joining {
            guard ctx.step.needs.contains(secret) else {
                throw TaskFailure("""
                    \(ctx.host.name) joins \(ctx.inventory.firstServer.name) as a server and needs its token: give this step \
                    needs = ["\(secret)"] (and serial = 1), or target "first-server"
                    """)
            }
            token = try ctx.value(secret)
        }
        let job = K3sInstall.Job(inputs: try inputs(host: ctx.host, inventory: ctx.inventory), token: token)
        return try K3sInstall.run(job, ctx)
    }
}
