import FleetCore
import Foundation

/// One `[addons.NAME]` entry: a Helm chart K3s's helm-controller installs from a HelmChart manifest.
public struct AddonConfig: Sendable, Hashable, Encodable {
    /// Where the chart comes from.
    public enum Source: Sendable, Hashable, Encodable {
        /// A local `.tgz` on the control machine: copied to every server (or embedded as `chartContent`).
        case file(path: String, embed: Bool)
        /// A chart name in a repository the nodes reach (`repo`, `chart`, `version`).
        case repo(url: String, chart: String)
        /// A chart URL (`oci://…`, `https://…`).
        case url(String)
    }

    public enum FailurePolicy: String, Sendable, Hashable, Encodable, CaseIterable {
        case reinstall, abort
    }

    /// The HelmChart's name (RFC 1123 label), the Helm release and the job `helm-install-<name>`.
    public var name: String
    /// The release's namespace (`targetNamespace`; created when missing).
    public var namespace: String
    public var source: Source
    /// The chart version (`version`; required for repositories).
    public var version: String?
    /// Values, rendered into `valuesContent`.
    public var values: InventoryValue
    /// Runs before any CNI, on the host network of the servers (CNI charts).
    public var bootstrap: Bool
    public var failurePolicy: FailurePolicy
    /// Attempts before the job counts as failed (helm-controller's default, 1000, loops for hours).
    public var backOffLimit: Int
    /// Which playbook's `k3s_addons` step installs it: `cluster` (the K3s playbook) or `storage`.
    public var group: String
    /// A chart fleet knows (`longhorn`, `velero`): its rules and base values apply.
    public var kind: String?

    public init(name: String, namespace: String = "kube-system", source: Source, version: String? = nil,
                values: InventoryValue = .table([:]), bootstrap: Bool = false, failurePolicy: FailurePolicy = .reinstall,
                backOffLimit: Int = AddonConfig.defaultBackOffLimit, group: String = "cluster", kind: String? = nil) {
        self.name = name
        self.namespace = namespace
        self.source = source
        self.version = version
        self.values = values
        self.bootstrap = bootstrap
        self.failurePolicy = failurePolicy
        self.backOffLimit = backOffLimit
        self.group = group
        self.kind = kind
    }

    public static let defaultBackOffLimit = 3
    /// helm-controller copies `chartContent` into a ConfigMap (1 MiB, base64): about 750 KiB of .tgz.
    public static let embedLimit = 750 * 1024

    /// The local chart file, when there is one.
    public var localChart: String? {
        if case .file(let path, _) = source { return path }
        return nil
    }
}

/// `[addons]`: every add-on, in name order.
public struct AddonsConfig: Sendable, Hashable {
    public var addons: [AddonConfig]

    public init(_ addons: [AddonConfig] = []) { self.addons = addons }

    public func named(_ name: String) -> AddonConfig? { addons.first { $0.name == name } }
}

extension Inventory {
    /// `[addons]` (empty when the inventory has none).
    public var addons: AddonsConfig {
        get { sections[AddonsConfig.self] ?? AddonsConfig() }
        set { sections[AddonsConfig.self] = newValue }
    }
}
