import FleetCore
import Foundation

/// Reads `[addons.NAME]` tables: one Helm chart each.
enum AddonsSection {
    static let keys = [
        "chart", "repo", "version", "namespace", "embed", "bootstrap", "failure_policy", "backoff_limit", "group",
        "kind", "values",
    ]
    /// Names K3s's own components use: a HelmChart of that name would fight the packaged one.
    static let packaged = [
        "coredns", "traefik", "traefik-crd", "local-storage", "metrics-server", "servicelb", "ccm", "rolebindings",
        "runtimes", "network-policy", "helm-controller",
    ]
    static let groups = ["cluster", "storage"]
    static let kinds = ["longhorn", "velero"]

    static let section = InventorySection(name: "addons", keys: keys, openKeys: true) { reader, table in
        read(&reader, table)
    }

    static func read(_ r: inout InventoryReader, _ t: InventoryTable) {
        var addons: [AddonConfig] = []
        for name in r.keys(of: t) {
            guard case .present(let entry) = r.table(t, name) else { continue }
            if let problem = nameProblem(name) {
                r.fail(t, name, "add-on name \(InventorySyntax.tomlQuoted(name)) \(problem)")
                continue
            }
            if let addon = readAddon(&r, entry, name: name) { addons.append(addon) }
        }
        r.sections[AddonsConfig.self] = AddonsConfig(addons)
    }

    /// Why `name` cannot name a HelmChart and its manifest file, or nil.
    static func nameProblem(_ name: String) -> String? {
        let valid = !name.isEmpty && name.utf8.count <= 53
            && name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
            && name.first?.isLetter == true && name.last != "-"
        if !valid {
            return "is not an RFC 1123 label of at most 53 characters: lower-case letters, digits and '-', starting "
                + "with a letter (it names the HelmChart, the Helm release and the manifest file; no dots or '_')"
        }
        if packaged.contains(name) {
            return "is a component K3s packages itself; a HelmChart of that name would fight it (override its values "
                + "with a HelmChartConfig instead, or disable it in [cluster] disable and pick another name)"
        }
        return nil
    }

    static func readAddon(_ r: inout InventoryReader, _ t: InventoryTable, name: String) -> AddonConfig? {
        let before = r.errorCount
        r.checkKnownKeys(t, allowed: keys)
        let version = r.string(t, "version").value
        let namespace = r.string(t, "namespace").value ?? "kube-system"
        if !isLabel(namespace) {
            r.fail(t, "namespace", "\(InventorySyntax.tomlQuoted(namespace)) is not a namespace name (an RFC 1123 label)")
        }
        let source = readSource(&r, t, version: version)
        let kind = readChoice(&r, t, "kind", kinds)
        let group = readChoice(&r, t, "group", groups) ?? (kind == nil ? "cluster" : "storage")
        var policy = AddonConfig.FailurePolicy.reinstall
        if case .present(let p) = r.enumeration(t, "failure_policy", AddonConfig.FailurePolicy.self) { policy = p }
        var backOff = AddonConfig.defaultBackOffLimit
        if case .present(let n) = r.integer(t, "backoff_limit") {
            if (0...100).contains(n) { backOff = n } else { r.fail(t, "backoff_limit", "\(n) is not between 0 and 100") }
        }
        var values = InventoryValue.table([:])
        if case .present(let v) = r.plain(t, "values") {
            if v.entries == nil {
                r.fail(t, "values", "expected a table ([addons.\(name).values]) of chart values")
            } else {
                values = v
            }
        }
        let bootstrap = r.boolean(t, "bootstrap").value ?? false
        guard r.errorCount == before, let source else { return nil }
        return AddonConfig(name: name, namespace: namespace, source: source, version: version, values: values,
                           bootstrap: bootstrap, failurePolicy: policy, backOffLimit: backOff, group: group, kind: kind)
    }

    static func isLabel(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 63 && text.first != "-" && text.last != "-"
            && text.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
    }

    static func readChoice(_ r: inout InventoryReader, _ t: InventoryTable, _ key: String, _ choices: [String]) -> String? {
        guard case .present(let text) = r.string(t, key) else { return nil }
        guard choices.contains(text) else {
            r.fail(t, key, "\(InventorySyntax.tomlQuoted(text)) is not one of "
                   + choices.map { "\"\($0)\"" }.joined(separator: ", "))
            return nil
        }
        return text
    }

    /// `chart` (a local .tgz, or a chart name with `repo`, or an oci:// / https:// URL), `repo`, `embed`.
    static func readSource(_ r: inout InventoryReader, _ t: InventoryTable, version: String?) -> AddonConfig.Source? {
        let embed = r.boolean(t, "embed").value ?? false
        let repo = r.string(t, "repo").value
        guard case .present(let chart) = r.string(t, "chart") else {
            if repo != nil || t.contains("chart") { r.fail(t, "chart", "is required: a local .tgz, or the chart's name in repo") }
            return nil
        }
        if let repo {
            guard repo.hasPrefix("https://") || repo.hasPrefix("http://") || repo.hasPrefix("oci://") else {
                r.fail(t, "repo", "\(InventorySyntax.tomlQuoted(repo)) is not a chart repository URL (https://…)")
                return nil
            }
            if version == nil { r.fail(t, "version", "is required with repo: pin the chart version every server installs") }
            if embed { r.warn(t, "embed", "is ignored for a chart from repo") }
            return .repo(url: repo, chart: chart)
        }
        if chart.contains("://") {
            if embed { r.warn(t, "embed", "is ignored for a chart URL") }
            return .url(chart)
        }
        guard case .present(let path) = r.path(t, "chart") else { return nil }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            r.fail(t, "chart", "\"\(path)\" is not a file on this machine: give a packaged chart (.tgz, from helm package "
                   + "or helm pull), or repo and version")
            return nil
        }
        guard path.hasSuffix(".tgz") || path.hasSuffix(".tar.gz") else {
            r.fail(t, "chart", "\"\(path)\" is not a packaged chart (.tgz)")
            return nil
        }
        if embed, let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int,
           size > AddonConfig.embedLimit {
            r.fail(t, "embed", """
                "\(path)" is \(size / 1024) KiB; chartContent goes through a ConfigMap (1 MiB, base64), so at most \
                \(AddonConfig.embedLimit / 1024) KiB fits: set embed = false to serve it from every server's \
                static/charts directory
                """)
            return nil
        }
        return .file(path: path, embed: embed)
    }
}
