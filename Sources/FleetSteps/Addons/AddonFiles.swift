import FleetCore
import Foundation

/// Where add-ons live on a server, and the names fleet gives its files there (so that fleet removes only its own).
public enum AddonFiles {
    /// K3s applies every manifest here at start and when a file changes (servers only).
    public static let manifestsDirectory = "/var/lib/rancher/k3s/server/manifests"
    /// Served anonymously by every apiserver under `/static/`.
    public static let chartsDirectory = "/var/lib/rancher/k3s/server/static/charts"
    /// The namespace fleet's HelmCharts live in (the release goes to the add-on's `namespace`).
    public static let helmChartNamespace = "kube-system"

    /// `fleet-<name>.yaml`: K3s names the Addon after the text before the first dot, so no other dot is used.
    public static func manifestName(_ addon: String) -> String { "fleet-\(addon).yaml" }

    public static func manifestPath(_ addon: String) -> String { "\(manifestsDirectory)/\(manifestName(addon))" }

    /// `fleet-<name>-<12 hex of its SHA-256>.tgz`: a new chart is a new URL, so helm-controller reinstalls.
    public static func chartName(_ addon: String, sha: String) -> String { "fleet-\(addon)-\(sha.prefix(12)).tgz" }

    public static func chartPath(_ addon: String, sha: String) -> String { "\(chartsDirectory)/\(chartName(addon, sha: sha))" }

    /// The chart's URL as helm-controller resolves it: K3s replaces `%{KUBERNETES_API}%` with its API address.
    public static func chartURL(_ addon: String, sha: String) -> String {
        "https://%{KUBERNETES_API}%/static/charts/\(chartName(addon, sha: sha))"
    }

    /// The add-on a manifest file of fleet's belongs to, or nil for any other file.
    public static func addon(ofManifest file: String) -> String? {
        guard file.hasPrefix("fleet-"), file.hasSuffix(".yaml") else { return nil }
        let name = String(file.dropFirst(6).dropLast(5))
        return name.isEmpty || name.contains(".") ? nil : name
    }

    /// The add-on a chart file of fleet's belongs to, or nil.
    public static func addon(ofChart file: String) -> String? {
        guard file.hasPrefix("fleet-"), file.hasSuffix(".tgz") else { return nil }
        let stem = file.dropFirst(6).dropLast(4)
        guard let dash = stem.lastIndex(of: "-") else { return nil }
        let hash = stem[stem.index(after: dash)...]
        guard hash.count == 12, hash.allSatisfy(\.isHexDigit) else { return nil }
        let name = String(stem[..<dash])
        return name.isEmpty ? nil : name
    }
}
