import FleetCore
import Foundation

/// The template variables for K3s values (the engine adds `host.name`, `host.address`, `host.role`,
/// `host.user`, `first_server.name`, `first_server.address` and `inventory_dir`).
enum K3sTemplateVariables {
    static let all: [TemplateVariable] = [
        TemplateVariable("host.node_ip") { host, _ in host.nodeIP.description },
        TemplateVariable("host.ra_interface") { host, _ in host.raInterface ?? "" },
        TemplateVariable("cluster.name") { _, inventory in inventory.cluster.name },
        TemplateVariable("cluster.cluster_cidr") { _, inventory in inventory.cluster.clusterCIDR.description },
        TemplateVariable("cluster.service_cidr") { _, inventory in inventory.cluster.serviceCIDR.description },
        TemplateVariable("cluster.cluster_dns") { _, inventory in inventory.cluster.effectiveClusterDNS.description },
        TemplateVariable("cluster.k3s_version") { _, inventory in inventory.cluster.k3sVersion },
        TemplateVariable("cluster.flannel_ipv6_masq") { _, inventory in inventory.cluster.flannelIPv6Masq ? "true" : "false" },
        TemplateVariable("cluster.servers") { _, inventory in String(inventory.servers.count) },
        TemplateVariable("first_server.node_ip") { _, inventory in inventory.firstServer.nodeIP.description },
        TemplateVariable("server_url") { _, inventory in serverURL(inventory.firstServer.nodeIP) },
        TemplateVariable("registration_url") { _, inventory in inventory.registrationURL },
    ]

    /// Every variable a K3s playbook may name: the engine's, then these.
    static var names: [String] { Template.engineVariables + all.map(\.name) }
}
