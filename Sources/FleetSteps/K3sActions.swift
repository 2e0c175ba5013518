import FleetCore

/// The K3s steps, registered under the names playbooks use.
public enum K3sActions {
    public static func register(in registry: inout ActionRegistry) {
        registry.register("k3s_preflight") { try K3sPreflightAction($0) }
        registry.register("ipv6_forwarding") { try IPv6ForwardingAction($0) }
        registry.register("k3s_server") { try K3sServerAction($0) }
        registry.register("k3s_agent") { try K3sAgentAction($0) }
        registry.register("k3s_verify") { try K3sVerifyAction($0) }
        registry.register("longhorn_prereqs") { try LonghornPrereqsAction($0) }
        registry.register("k3s_addons") { try K3sAddonsAction($0) }
        registry.register("k3s_registries") { try K3sRegistriesAction($0) }
    }

    /// The built-in actions plus the K3s steps, and the K3s template variables.
    public static var registry: ActionRegistry {
        var r = ActionRegistry.builtIn
        register(in: &r)
        r.variables = K3sTemplateVariables.names
        return r
    }

    /// Every template variable a K3s playbook may name.
    public static var templateVariables: [String] { K3sTemplateVariables.names }
}
