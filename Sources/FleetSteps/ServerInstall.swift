import FleetCore
import Foundation

/// `k3s_server`: the first server. Writes config.yaml (0600), installs K3s from `[k3s] source`,
/// starts or restarts it only when something changed, and waits until the token exists and the
/// API answers `/readyz`.
///
///     action = "k3s_server"
///     target = "first-server"
///     timeout = 300   # optional: seconds to wait for readiness
public struct K3sServerAction: Action {
    public var wait: Double

    public init(_ p: StepParams) throws {
        wait = try p.number("timeout") ?? 300
        guard wait > 0 else { throw p.error("timeout", "must be > 0") }
    }

    public init(wait: Double = 300) {
        self.wait = wait
    }

    public func plan(_ vars: TemplateVariables) -> [String] {
        [
            "write \(K3sConfigFile.path) (0600): node-ip \(vars["host.node_ip"]), cluster-cidr \(vars["cluster.cluster_cidr"]), "
                + "service-cidr \(vars["cluster.service_cidr"]), cluster-dns \(vars["cluster.cluster_dns"]), "
                + "flannel-ipv6-masq \(vars["cluster.flannel_ipv6_masq"]), disable and tls-san from [cluster]",
            "install k3s \(vars["cluster.k3s_version"]) as server (INSTALL_K3S_EXEC=server) from [k3s] source",
            "start, or restart when the binary or config changed; wait ≤ \(Int(wait)) s for the token and /readyz",
        ]
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        guard ctx.host.name == ctx.inventory.firstServer.name else {
            throw TaskFailure("""
                k3s_server runs on the first server only (\(ctx.inventory.firstServer.name)); joining more servers \
                is not supported yet: target "first-server"
                """)
        }
        let config = try K3sConfigFile.render(K3sConfigFile.server(host: ctx.host, inventory: ctx.inventory))
        let job = K3sInstall.Job(role: .server, inventory: ctx.inventory, config: config, token: nil, wait: wait)
        return try K3sInstall.run(job, ctx)
    }
}
