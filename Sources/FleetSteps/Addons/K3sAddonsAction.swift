import FleetCore
import Foundation

/// `k3s_addons`: the inventory's `[addons]` of one group as HelmChart manifests on every server, identical
/// everywhere: a local chart is copied to `static/charts/` on each server (or embedded as `chartContent`); an add-on
/// removed from the inventory loses its manifest and chart files on every server and its HelmChart (which uninstalls
/// the release). Facts (one round trip) → a pure plan (``plan(_:_:)``) → apply. Never restarts K3s: it applies
/// changed manifests by itself.
///
///     action = "k3s_addons"
///     target = "servers"
///     group = "cluster"     # optional: "storage" for playbooks/storage.toml
public struct K3sAddonsAction: Action {
    public var group: String

    public init(_ p: StepParams) throws {
        group = try p.string("group") ?? "cluster"
        guard AddonsSection.groups.contains(group) else {
            throw p.error("group", "must be one of \(AddonsSection.groups.joined(separator: ", "))")
        }
    }

    public init(group: String = "cluster") { self.group = group }

    /// One add-on as the servers get it.
    public struct Wanted: Sendable, Equatable, Encodable {
        public var name: String
        public var manifest: String
        public var manifestSHA: String
        /// The local chart and where it goes, for charts served from static/charts.
        public var localChart: String?
        public var chartPath: String?
        public var chartSHA: String?
    }

    public struct Inputs: Encodable, Sendable {
        public var group: String
        public var wanted: [Wanted]
        /// Every add-on name in the inventory, any group: fleet's files for other names are removed.
        public var known: [String]
    }

    public func inputs(host: FleetCore.Host, inventory: Inventory) throws -> Inputs {
        var wanted: [Wanted] = []
        for a in Addons.effective(inventory, group: group) {
            var w = Wanted(name: a.name, manifest: "", manifestSHA: "")
            let chart: HelmChartManifest.Chart
            switch a.source {
            case .file(let path, let embed):
                if embed {
                    chart = .content(base64: try LocalFile.contents(of: path).base64EncodedString())
                } else {
                    let sha = try LocalFile.sha256(of: path)
                    w.localChart = path
                    w.chartSHA = sha
                    w.chartPath = AddonFiles.chartPath(a.name, sha: sha)
                    chart = .staticFile(url: AddonFiles.chartURL(a.name, sha: sha))
                }
            case .repo(let url, let name): chart = .repo(url: url, chart: name)
            case .url(let url): chart = .url(url)
            }
            w.manifest = try HelmChartManifest.render(a, chart: chart)
            w.manifestSHA = sha256Hex(Data(w.manifest.utf8))
            wanted.append(w)
        }
        return Inputs(group: group, wanted: wanted, known: inventory.addons.addons.map(\.name).sorted())
    }

    public func describe(_ vars: TemplateVariables) -> [String] {
        ["write a HelmChart manifest per [addons] entry (group \(group)) to \(AddonFiles.manifestsDirectory), local "
            + "charts to \(AddonFiles.chartsDirectory); remove fleet's files and HelmCharts of add-ons no longer listed"]
    }

    /// What is on a server: fleet's files in the two directories, with their SHA-256.
    public struct Facts: Sendable, Equatable {
        public var manifests: [String: String]
        public var charts: [String: String]

        public init(manifests: [String: String] = [:], charts: [String: String] = [:]) {
            self.manifests = manifests
            self.charts = charts
        }
    }

    public enum Change: Sendable, Equatable, CustomStringConvertible {
        case uploadChart(addon: String)
        case writeManifest(addon: String)
        case removeChart(file: String)
        /// Deletes the manifest first (so a restart cannot re-create it), then the HelmChart.
        case removeAddon(addon: String)

        public var description: String {
            switch self {
            case .uploadChart(let a): return "upload \(a)'s chart"
            case .writeManifest(let a): return "write \(AddonFiles.manifestName(a))"
            case .removeChart(let f): return "remove \(f)"
            case .removeAddon(let a): return "remove add-on \(a)"
            }
        }
    }

    static func factScript() -> FactScript {
        var s = FactScript()
        for (name, dir, pattern) in [("manifests", AddonFiles.manifestsDirectory, "fleet-*.yaml"),
                                     ("charts", AddonFiles.chartsDirectory, "fleet-*.tgz")] {
            s.add(name, "cd \(dir) 2>/dev/null && for f in \(pattern); do test -f \"$f\" && sha256sum -- \"$f\"; done; true")
        }
        return s
    }

    static func parseFacts(_ output: String) -> Facts {
        let s = FactScript.sections(output)
        return Facts(manifests: K3sInstall.parseHashes(s["manifests"] ?? ""), charts: K3sInstall.parseHashes(s["charts"] ?? ""))
    }

    /// Pure: uploads first (charts before the manifests naming them), then removals of what is no longer wanted.
    public static func plan(_ f: Facts, _ inputs: Inputs) -> [Change] {
        var changes: [Change] = []
        var keepCharts: Set<String> = []
        for w in inputs.wanted {
            if let path = w.chartPath, let sha = w.chartSHA {
                let file = (path as NSString).lastPathComponent
                keepCharts.insert(file)
                if f.charts[file] != sha { changes.append(.uploadChart(addon: w.name)) }
            }
            if f.manifests[AddonFiles.manifestName(w.name)] != w.manifestSHA { changes.append(.writeManifest(addon: w.name)) }
        }
        let wantedNames = Set(inputs.wanted.map(\.name))
        for file in f.manifests.keys.sorted() {
            guard let addon = AddonFiles.addon(ofManifest: file), !inputs.known.contains(addon) else { continue }
            changes.append(.removeAddon(addon: addon))
        }
        for file in f.charts.keys.sorted() where !keepCharts.contains(file) {
            guard let addon = AddonFiles.addon(ofChart: file) else { continue }
            // A chart of an add-on of another group stays, unless that add-on is gone from the inventory.
            if wantedNames.contains(addon) || !inputs.known.contains(addon) { changes.append(.removeChart(file: file)) }
        }
        return changes
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        let inputs = try inputs(host: ctx.host, inventory: ctx.inventory)
        let r = try ctx.run(Self.factScript().command)
        guard r.succeeded else { throw TaskFailure("gathering facts: \(r.statusText)", result: r) }
        let changes = Self.plan(Self.parseFacts(r.stdoutText), inputs)
        if changes.isEmpty {
            return .ok("\(inputs.wanted.count) add-on(s) of group \(group) in place, nothing to remove")
        }
        let byName = Dictionary(uniqueKeysWithValues: inputs.wanted.map { ($0.name, $0) })
        for change in changes {
            switch change {
            case .uploadChart(let addon):
                guard let w = byName[addon], let local = w.localChart, let remote = w.chartPath else { continue }
                try ctx.upload(try LocalFile.contents(of: local), to: remote, mode: 0o600)
            case .writeManifest(let addon):
                guard let w = byName[addon] else { continue }
                try ctx.upload(Data(w.manifest.utf8), to: AddonFiles.manifestPath(addon), mode: 0o600)
            case .removeChart(let file):
                try ctx.runChecked("rm -f -- \(shellQuote("\(AddonFiles.chartsDirectory)/\(file)"))", "removing \(file)")
            case .removeAddon(let addon):
                try ctx.runChecked(Self.removeCommand(addon), "removing add-on \(addon)")
            }
        }
        return .changed(changes.map(\.description).joined(separator: ", "))
    }

    /// Deletes the manifest, then the HelmChart (helm-controller then uninstalls the release). A Longhorn
    /// release refuses to uninstall unless its deleting-confirmation-flag is true: removing it from the
    /// inventory is that confirmation, so the flag is set first when the manifest says it is Longhorn.
    static func removeCommand(_ addon: String) -> String {
        let manifest = shellQuote(AddonFiles.manifestPath(addon))
        let k = K3sInstall.binaryPath + " kubectl"
        return "if grep -q 'fleet.k3s/kind: \"longhorn\"' \(manifest) 2>/dev/null; then "
            + "\(k) -n longhorn-system patch settings.longhorn.io deleting-confirmation-flag --type merge "
            + "-p '{\"value\":\"true\"}' </dev/null >/dev/null 2>&1 || true; fi; "
            + "rm -f -- \(manifest) && "
            + "\(k) delete helmchart -n \(AddonFiles.helmChartNamespace) \(shellQuote(addon)) --ignore-not-found --wait=false </dev/null"
    }
}
