import FleetCore

/// The K3s steps, registered under the names playbooks use.
public enum K3sActions {
    public static func register(in registry: inout ActionRegistry) {
    }
}
