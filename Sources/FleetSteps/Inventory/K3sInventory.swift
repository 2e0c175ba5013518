import FleetCore
import Foundation

/// The K3s part of the inventory, declared to FleetCore's reader: the `[cluster]`, `[k3s]`, `[preflight]`,
/// `[addons.NAME]` and `[registries]` sections, each host's `node_ip` and `ra_interface`, the checks across them,
/// and the template variables playbooks use for K3s values.
///
/// A new section is a type in this folder with its own
/// `InventorySection` (keys, and a reader that stores its value in `reader.sections`), added to
/// ``schema``, and a computed property on `Inventory` to read it back; nothing in FleetCore changes.
public enum K3sInventory {
    public static let schema = InventorySchema(
        sections: [ClusterSection.section, K3sSection.section, PreflightSection.section, AddonsSection.section,
                   RegistriesSection.section],
        hostKeys: [NodeKeys.hostKeys],
        checks: ClusterChecks.all + AddonChecks.all,
        variables: K3sTemplateVariables.all
    )
}

extension Inventory {
    /// Reads and validates a K3s inventory file (``K3sInventory/schema``).
    /// `defaultSSHConfig`: the ssh config read when `[ssh] config` is unset (the CLI: `~/.ssh/config`).
    public static func load(path: String, defaultSSHConfig: String? = nil) throws -> Inventory {
        try load(path: path, schema: K3sInventory.schema, defaultSSHConfig: defaultSSHConfig)
    }

    /// Validates K3s inventory text; `path` names the file in messages and anchors relative paths.
    public static func parse(toml: String, path: String) throws -> Inventory {
        try parse(toml: toml, path: path, schema: K3sInventory.schema)
    }

    /// A K3s inventory from values. Throws when `hosts` has no server.
    public init(
        path: String, cluster: ClusterConfig, k3s: K3sConfig = K3sConfig(), ssh: SSHSettings = SSHSettings(),
        preflight: PreflightConfig = PreflightConfig(), hosts: [FleetCore.Host], warnings: [InventoryWarning] = []
    ) throws {
        var sections = SectionValues()
        sections[ClusterConfig.self] = cluster
        sections[K3sConfig.self] = k3s
        sections[PreflightConfig.self] = preflight
        try self.init(path: path, ssh: ssh, hosts: hosts, sections: sections, warnings: warnings, schema: K3sInventory.schema)
    }

    /// `[cluster]`.
    public var cluster: ClusterConfig {
        get { sections.required(ClusterConfig.self) }
        set { sections[ClusterConfig.self] = newValue }
    }

    /// `[k3s]`.
    public var k3s: K3sConfig {
        get { sections.required(K3sConfig.self) }
        set { sections[K3sConfig.self] = newValue }
    }

    /// `[preflight]`.
    public var preflight: PreflightConfig {
        get { sections.required(PreflightConfig.self) }
        set { sections[PreflightConfig.self] = newValue }
    }

    /// The URL agents register with: `[cluster] registration_address`, else the first server
    /// (`https://[node_ip]:6443`; IPv6 literals are bracketed).
    public var registrationURL: String {
        guard let address = cluster.registrationAddress else { return serverURL(firstServer.nodeIP) }
        return IPv6Address(address).map { serverURL($0) } ?? "https://\(address):6443"
    }

    /// Adds a `[[hosts]]` entry to a K3s inventory file (for `fleet add-worker`); see
    /// ``Inventory/appendHost(toFile:name:address:role:user:port:identity:extraKeys:schema:)``.
    @discardableResult
    public static func appendHost(
        toFile path: String, name: String, address: String, role: HostRole, user: String?, port: Int?,
        identity: String?, nodeIP: String?
    ) throws -> (inventory: Inventory, added: Bool) {
        try appendHost(toFile: path, name: name, address: address, role: role, user: user, port: port, identity: identity,
                       extraKeys: nodeIP.map { [(key: "node_ip", value: $0)] } ?? [], schema: K3sInventory.schema)
    }
}

extension FleetCore.Host {
    /// A K3s host from values.
    public init(
        name: String, address: String, role: HostRole, nodeIP: IPv6Address, raInterface: String? = nil,
        ssh: SSHSettings = SSHSettings()
    ) {
        var values = SectionValues()
        values[NodeSettings.self] = NodeSettings(nodeIP: nodeIP, raInterface: raInterface)
        self.init(name: name, address: address, role: role, ssh: ssh, values: values)
    }

    /// The node's IPv6 address inside the cluster (K3s `node-ip`).
    public var nodeIP: IPv6Address {
        get { values.required(NodeSettings.self).nodeIP }
        set {
            var settings = values[NodeSettings.self] ?? NodeSettings(nodeIP: newValue)
            settings.nodeIP = newValue
            values[NodeSettings.self] = settings
        }
    }

    /// The interface that must keep accepting Router Advertisements once forwarding is on.
    public var raInterface: String? {
        values[NodeSettings.self]?.raInterface
    }
}

/// `https://[addr]:6443`: an IPv6 literal in a URL must be bracketed.
public func serverURL(_ ip: IPv6Address, port: Int = 6443) -> String {
    "https://[\(ip)]:\(port)"
}
