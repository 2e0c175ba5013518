import FleetCore
import Foundation
import Yams

/// A HelmChart manifest (`helm.cattle.io/v1`) for K3s's helm-controller, built as a YAML node tree with Yams.
public enum HelmChartManifest {
    /// How the chart is named in the manifest.
    public enum Chart: Sendable, Equatable {
        /// Served by the apiserver from `static/charts/` (the file is copied to every server).
        case staticFile(url: String)
        /// The .tgz itself, base64 (`chartContent`).
        case content(base64: String)
        case repo(url: String, chart: String)
        case url(String)
    }

    /// The manifest's text. `chart` says where the chart comes from (resolved by the step from the add-on's source).
    public static func render(_ a: AddonConfig, chart: Chart) throws -> String {
        func str(_ s: String) -> Node { Node(s, Tag(.str), .doubleQuoted) }
        func key(_ s: String) -> Node { Node(s, Tag(.str), .plain) }
        func bool(_ b: Bool) -> Node { Node(b ? "true" : "false", Tag(.bool), .plain) }
        func int(_ n: Int) -> Node { Node(String(n), Tag(.int), .plain) }

        var spec: [(Node, Node)] = []
        switch chart {
        case .staticFile(let url): spec.append((key("chart"), str(url)))
        case .content(let data): spec.append((key("chartContent"), str(data)))
        case .repo(let url, let name):
            spec.append((key("repo"), str(url)))
            spec.append((key("chart"), str(name)))
        case .url(let url): spec.append((key("chart"), str(url)))
        }
        if let version = a.version, case .repo = chart { spec.append((key("version"), str(version))) }
        if let version = a.version, case .url = chart { spec.append((key("version"), str(version))) }
        spec.append((key("targetNamespace"), str(a.namespace)))
        spec.append((key("createNamespace"), bool(true)))
        if a.bootstrap { spec.append((key("bootstrap"), bool(true))) }
        spec.append((key("backOffLimit"), int(a.backOffLimit)))
        spec.append((key("failurePolicy"), str(a.failurePolicy.rawValue)))
        let values = try valuesText(a.values)
        if !values.isEmpty { spec.append((key("valuesContent"), Node(values, Tag(.str), .literal))) }

        var labels: [(Node, Node)] = [(key("app.kubernetes.io/managed-by"), str("fleet"))]
        if let kind = a.kind { labels.append((key("fleet.k3s/kind"), str(kind))) }
        let metadata: [(Node, Node)] = [
            (key("name"), str(a.name)),
            (key("namespace"), str(AddonFiles.helmChartNamespace)),
            (key("labels"), Node(labels, Tag(.map), .block)),
        ]
        let root: [(Node, Node)] = [
            (key("apiVersion"), str("helm.cattle.io/v1")),
            (key("kind"), str("HelmChart")),
            (key("metadata"), Node(metadata, Tag(.map), .block)),
            (key("spec"), Node(spec, Tag(.map), .block)),
        ]
        let text = try Yams.serialize(node: Node(root, Tag(.map), .block), width: -1)
        return "# Written by fleet from [addons.\(a.name)]. Changes here are overwritten on the next run.\n" + text
    }

    /// The values as YAML (keys sorted, strings quoted so that `::1` or `0600` stay strings); empty for no values.
    public static func valuesText(_ v: InventoryValue) throws -> String {
        if case .table(let t) = v, t.isEmpty { return "" }
        return try Yams.serialize(node: node(v), width: -1)
    }

    static func node(_ v: InventoryValue) -> Node {
        switch v {
        case .string(let s): return Node(s, Tag(.str), .doubleQuoted)
        case .integer(let n): return Node(String(n), Tag(.int), .plain)
        case .float(let d): return Node(d.isFinite ? String(d) : (d.isNaN ? ".nan" : (d > 0 ? ".inf" : "-.inf")), Tag(.float), .plain)
        case .bool(let b): return Node(b ? "true" : "false", Tag(.bool), .plain)
        case .array(let items): return Node(items.map(node), Tag(.seq), .block)
        case .table(let t):
            return Node(t.keys.sorted().map { (keyNode($0), node(t[$0]!)) }, Tag(.map), .block)
        }
    }

    /// A mapping key: plain when YAML reads it back as that same string, quoted otherwise.
    static func keyNode(_ k: String) -> Node {
        let words = ["true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"]
        let safe = k.first.map { $0.isASCII && $0.isLetter } == true
            && k.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_./".contains($0)) }
            && !words.contains(k.lowercased())
        return Node(k, Tag(.str), safe ? .plain : .doubleQuoted)
    }
}
