import FleetCore
import Foundation

/// Checks across `[cluster]` and `[addons]`: the CNI's add-on, which K3s releases run bootstrap charts and the
/// embedded registry on IPv6-only nodes, and the storage charts' rules. All before any host is touched.
enum AddonChecks {
    static let all = [
        InventoryCheck { reader, entries in cniAddon(&reader) },
        InventoryCheck { reader, entries in bootstrapVersion(&reader) },
        InventoryCheck { reader, entries in embeddedRegistry(&reader) },
        InventoryCheck { reader, entries in storage(&reader, nodes: entries.count) },
        InventoryCheck { reader, entries in helmController(&reader) },
    ]

    /// Add-ons need K3s's helm-controller; a CNI's chart name under another `cni` is an ordinary chart.
    static func helmController(_ r: inout InventoryReader) {
        guard let cluster = r.sections[ClusterConfig.self] else { return }
        let addons = (r.sections[AddonsConfig.self] ?? AddonsConfig()).addons
        if cluster.disable.contains("helm-controller"), !addons.isEmpty {
            r.fail(.section("cluster"), "disable", """
                "helm-controller" is disabled, but [addons] (\(addons.map(\.name).joined(separator: ", "))) are installed \
                by it: drop it from disable, or the add-ons
                """)
        }
        for cni in [CNI.cilium, .calico] where cluster.cni != cni {
            guard let name = cni.addonName, addons.contains(where: { $0.name == name }) else { continue }
            r.warn(.section("addons.\(name)"), nil, """
                is installed as an ordinary chart: cni is "\(cluster.cni.rawValue)", so it gets neither fleet's \
                IPv6-only values nor bootstrap = true; set cni = "\(cni.rawValue)" to make it the cluster's CNI
                """)
        }
    }

    static func cniAddon(_ r: inout InventoryReader) {
        guard let cluster = r.sections[ClusterConfig.self], let name = cluster.cni.addonName else { return }
        let addons = r.sections[AddonsConfig.self] ?? AddonsConfig()
        guard let addon = addons.named(name) else {
            r.fail(.section("cluster"), "cni", """
                "\(cluster.cni.rawValue)" needs [addons.\(name)] with the chart version (version = "…"), and chart = a \
                local .tgz for nodes that cannot reach \(cluster.cni.defaultRepo ?? "its repository") (or repo = …)
                """)
            return
        }
        guard let version = addon.version else {
            r.fail(.section("addons.\(name)"), "version", "is required: \(cluster.cni.rawValue)'s IPv6-only values depend on it")
            return
        }
        if cluster.cni == .cilium, addon.values.entries?["routingMode"] == .string("tunnel") {
            if let (major, minor) = CNIValues.majorMinor(version), (major, minor) < CNIValues.firstIPv6Tunnel {
                r.fail(.section("addons.\(name)"), "values", """
                    routingMode = "tunnel" needs Cilium 1.18 or later on IPv6-only nodes (tunnelling over an IPv6 \
                    underlay); \(version) routes natively only: drop routingMode or use Cilium ≥ 1.18
                    """)
            }
        }
    }

    /// A bootstrap chart (a CNI's) on IPv6-only K3s needs a release with k3s#12947 fixed.
    static func bootstrapVersion(_ r: inout InventoryReader) {
        guard let cluster = r.sections[ClusterConfig.self], let version = K3sVersion(cluster.k3sVersion) else { return }
        let addons = r.sections[AddonsConfig.self] ?? AddonsConfig()
        let bootstrap = addons.addons.filter { $0.bootstrap || $0.name == cluster.cni.addonName }.map(\.name)
        guard !bootstrap.isEmpty || cluster.cni.addonName != nil, let problem = BootstrapCharts.problem(version) else { return }
        let what = cluster.cni.addonName != nil ? "cni = \"\(cluster.cni.rawValue)\"" : "bootstrap = true ([addons.\(bootstrap[0])])"
        r.fail(.section("cluster"), "k3s_version", "\(what): \(problem)")
    }

    static func embeddedRegistry(_ r: inout InventoryReader) {
        if let cluster = r.sections[ClusterConfig.self], cluster.embeddedRegistry,
           (r.sections[RegistriesConfig.self] ?? RegistriesConfig()).mirrors.isEmpty {
            r.warn(.section("cluster"), "embedded_registry", """
                shares only the registries listed under [registries] mirrors, and there are none: add e.g. \
                [registries.mirrors."docker.io"] (an entry may be empty) or [registries.mirrors."*"]
                """)
        }
        guard let cluster = r.sections[ClusterConfig.self], cluster.embeddedRegistry,
              let version = K3sVersion(cluster.k3sVersion), version < EmbeddedRegistry.firstIPv6 else { return }
        r.fail(.section("cluster"), "embedded_registry", """
            needs K3s \(EmbeddedRegistry.firstIPv6) or later on IPv6: before, containerd 1.x could not use the \
            [::1] mirror endpoint (k3s#9897); k3s_version is \(version)
            """)
    }

    static func storage(_ r: inout InventoryReader, nodes: Int) {
        for addon in (r.sections[AddonsConfig.self] ?? AddonsConfig()).addons {
            for p in StorageAddons.problems(addon, nodes: nodes) {
                if p.warning {
                    r.warn(.section("addons.\(addon.name)"), p.key, p.message)
                } else {
                    r.fail(.section("addons.\(addon.name)"), p.key, p.message)
                }
            }
        }
    }
}
