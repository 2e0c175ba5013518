import FleetCore
import Foundation

/// `[cluster] cni`: the pod network. Fixed when the cluster is created.
public enum CNI: String, Sendable, Codable, CaseIterable {
    /// K3s's own flannel (VXLAN over IPv6).
    case flannel
    /// No CNI: K3s runs without flannel and network policy; nodes stay NotReady until one is installed.
    case none
    /// Cilium as a bootstrap HelmChart, with kube-proxy replacement.
    case cilium
    /// Calico through the Tigera operator as a bootstrap HelmChart.
    case calico

    /// The add-on that installs this CNI (`[addons.NAME]` gives its chart and version), nil for flannel and none.
    public var addonName: String? {
        switch self {
        case .flannel, .none: return nil
        case .cilium: return "cilium"
        case .calico: return "tigera-operator"
        }
    }

    /// The chart repository used when the add-on names no local chart.
    public var defaultRepo: String? {
        switch self {
        case .cilium: return "https://helm.cilium.io/"
        case .calico: return "https://docs.tigera.io/calico/charts"
        default: return nil
        }
    }

    /// The namespace the CNI's release goes to.
    public var targetNamespace: String? {
        switch self {
        case .cilium: return "kube-system"
        case .calico: return "tigera-operator"
        default: return nil
        }
    }

    /// K3s's flannel is off: `flannel-backend: none` and `disable-network-policy`.
    public var replacesFlannel: Bool { self != .flannel }

    /// What config.yaml holds for this choice, as K3s reads it back: the installed value is found from
    /// `flannel-backend` and `disable-kube-proxy` (calico and none look alike there; the manifest tells them apart).
    public static func installed(flannelBackend: String?, disableKubeProxy: Bool, cniManifests: [String]) -> CNI {
        guard flannelBackend == "none" else { return .flannel }
        if disableKubeProxy || cniManifests.contains(AddonFiles.manifestName("cilium")) { return .cilium }
        if cniManifests.contains(AddonFiles.manifestName("tigera-operator")) { return .calico }
        return .none
    }
}

/// Which K3s releases run bootstrap charts (a CNI's HelmChart) on IPv6-only nodes.
public enum BootstrapCharts {
    /// Before these, helm-controller's bootstrap jobs dial 127.0.0.1:6444 while K3s listens on [::1]:6444
    /// (k3s#12947, fixed by k3s#12990): v1.32.10+k3s1 on the 1.32 line, v1.34.2+k3s1 from 1.34 on.
    public static let fixed132 = K3sVersion(major: 1, minor: 32, patch: 10, revision: 1)
    public static let fixed134 = K3sVersion(major: 1, minor: 34, patch: 2, revision: 1)

    /// Why `version` cannot run a bootstrap chart on IPv6-only nodes, or nil.
    public static func problem(_ version: K3sVersion) -> String? {
        if version.major == 1, version.minor == 32, version >= fixed132 { return nil }
        if version >= fixed134 { return nil }
        return """
            K3s \(version) cannot run bootstrap charts (a CNI's HelmChart) on IPv6-only nodes: its helm-controller \
            dials 127.0.0.1:6444 while K3s listens on [::1]:6444 (k3s#12947); use \(fixed132) or later on the 1.32 \
            line, or \(fixed134) or later
            """
    }
}

/// Which K3s releases the embedded registry mirror (Spegel) works with on IPv6.
public enum EmbeddedRegistry {
    /// containerd 1.x mishandled the `[::1]` mirror endpoint (k3s#9897); containerd 2.0 ships from v1.32.2+k3s1.
    public static let firstIPv6 = K3sVersion(major: 1, minor: 32, patch: 2, revision: 1)
}
