import FleetCore
import FleetTestSupport
@testable import FleetSteps
import Foundation
import XCTest
import Yams

/// `[cluster] cni`, `[addons]`, the HelmChart manifests and the add-on step's plan, with values only.
final class AddonsTests: XCTestCase {
    static let fixed = "v1.32.10+k3s1"

    func inventory(cni: String? = nil, version: String = AddonsTests.fixed, addons: String = "", hosts: Int = 1) throws -> Inventory {
        var text = "[cluster]\nk3s_version = \"\(version)\"\ncluster_cidr = \"fd42:1::/56\"\n"
        if let cni { text += "cni = \"\(cni)\"\n" }
        text += "\n" + addons + "\n"
        for i in 1...hosts { text += "[[hosts]]\nname = \"n\(i)\"\naddress = \"fd10::\(i)\"\nrole = \"\(i == 1 ? "server" : "agent")\"\n\n" }
        return try Inventory.parse(toml: text, path: "/srv/fleet/test.toml")
    }

    func errors(_ block: () throws -> Inventory) -> String {
        do {
            _ = try block()
            return ""
        } catch {
            return "\(error)"
        }
    }

    static let cilium = "[addons.cilium]\nrepo = \"https://helm.cilium.io/\"\nchart = \"cilium\"\nversion = \"1.18.2\"\n"

    /// Renders an add-on's manifest and parses it back.
    func manifest(_ inv: Inventory, _ name: String) throws -> [String: Any] {
        let a = try XCTUnwrap(Addons.effective(inv).first { $0.name == name })
        guard case .repo(let url, let chart) = a.source else { throw XCTSkip("repo charts only") }
        let text = try HelmChartManifest.render(a, chart: .repo(url: url, chart: chart))
        return try XCTUnwrap(try Yams.load(yaml: text) as? [String: Any])
    }

    func values(_ doc: [String: Any]) throws -> [String: Any] {
        let spec = try XCTUnwrap(doc["spec"] as? [String: Any])
        return try XCTUnwrap(try Yams.load(yaml: try XCTUnwrap(spec["valuesContent"] as? String)) as? [String: Any])
    }

    // MARK: - CNI

    func testFlannelIsTheDefaultAndAddsNoKeys() throws {
        let inv = try inventory()
        XCTAssertEqual(inv.cluster.cni, .flannel)
        let keys = K3sConfigFile.clusterWide(inv).map(\.0)
        XCTAssertFalse(keys.contains("flannel-backend"))
        XCTAssertFalse(keys.contains("disable-network-policy"))
    }

    func testNoneTurnsFlannelAndNetworkPolicyOffOnEveryServer() throws {
        let inv = try inventory(cni: "none", version: "v1.31.5+k3s1")
        let wide = K3sConfigFile.clusterWide(inv)
        XCTAssertEqual(wide.first { $0.0 == "flannel-backend" }?.1, .string("none"))
        XCTAssertEqual(wide.first { $0.0 == "disable-network-policy" }?.1, .bool(true))
        XCTAssertNil(wide.first { $0.0 == "disable-kube-proxy" })
        XCTAssertTrue(Addons.effective(inv).isEmpty)
    }

    func testCiliumAddsKubeProxyReplacementAndABootstrapChartWithIPv6OnlyValues() throws {
        let inv = try inventory(cni: "cilium", addons: Self.cilium)
        XCTAssertEqual(K3sConfigFile.clusterWide(inv).first { $0.0 == "disable-kube-proxy" }?.1, .bool(true))
        let doc = try manifest(inv, "cilium")
        XCTAssertEqual(doc["kind"] as? String, "HelmChart")
        XCTAssertEqual((doc["metadata"] as? [String: Any])?["namespace"] as? String, "kube-system")
        let spec = try XCTUnwrap(doc["spec"] as? [String: Any])
        XCTAssertEqual(spec["bootstrap"] as? Bool, true)
        XCTAssertEqual(spec["failurePolicy"] as? String, "abort")
        XCTAssertEqual(spec["backOffLimit"] as? Int, 3)
        XCTAssertEqual(spec["version"] as? String, "1.18.2")
        let v = try values(doc)
        XCTAssertEqual(v["k8sServiceHost"] as? String, "::1")
        XCTAssertEqual(v["k8sServicePort"] as? Int, 6444)
        XCTAssertEqual((v["ipv4"] as? [String: Any])?["enabled"] as? Bool, false)
        XCTAssertEqual((v["ipv6"] as? [String: Any])?["enabled"] as? Bool, true)
        XCTAssertEqual((v["ipam"] as? [String: Any])?["mode"] as? String, "kubernetes")
        XCTAssertEqual((v["k8s"] as? [String: Any])?["requireIPv6PodCIDR"] as? Bool, true)
        XCTAssertEqual(v["routingMode"] as? String, "native")
        XCTAssertEqual(v["autoDirectNodeRoutes"] as? Bool, true)
        XCTAssertEqual(v["ipv6NativeRoutingCIDR"] as? String, "fd42:1::/56")
        XCTAssertEqual(v["enableIPv6Masquerade"] as? Bool, true)
    }

    func testCiliumTunnelsOverIPv6From118AndIsRefusedBefore() throws {
        let tunnel = "[addons.cilium.values]\nroutingMode = \"tunnel\"\n"
        let v = try values(try manifest(try inventory(cni: "cilium", addons: Self.cilium + tunnel), "cilium"))
        XCTAssertEqual(v["underlayProtocol"] as? String, "ipv6")
        XCTAssertNil(v["ipv6NativeRoutingCIDR"])
        let old = Self.cilium.replacingOccurrences(of: "1.18.2", with: "1.17.4") + tunnel
        XCTAssertTrue(errors { try inventory(cni: "cilium", addons: old) }.contains("needs Cilium 1.18 or later"))
    }

    func testCalicoHasOneIPv6PoolOverTheClusterRange() throws {
        let addon = "[addons.tigera-operator]\nrepo = \"https://docs.tigera.io/calico/charts\"\nchart = \"tigera-operator\"\nversion = \"v3.30.0\"\n"
        let doc = try manifest(try inventory(cni: "calico", addons: addon), "tigera-operator")
        XCTAssertEqual((doc["spec"] as? [String: Any])?["targetNamespace"] as? String, "tigera-operator")
        let network = try XCTUnwrap(((try values(doc))["installation"] as? [String: Any])?["calicoNetwork"] as? [String: Any])
        let pools = try XCTUnwrap(network["ipPools"] as? [[String: Any]])
        XCTAssertEqual(pools.count, 1)
        XCTAssertEqual(pools[0]["cidr"] as? String, "fd42:1::/56")
        XCTAssertEqual(pools[0]["blockSize"] as? Int, 122)
        XCTAssertEqual(pools[0]["natOutgoing"] as? String, "Enabled")
        XCTAssertEqual(pools[0]["encapsulation"] as? String, "None")
    }

    func testBootstrapChartsNeedAFixedRelease() throws {
        for version in ["v1.31.5+k3s1", "v1.32.9+k3s1", "v1.33.5+k3s1", "v1.34.1+k3s1"] {
            let text = errors { try inventory(cni: "cilium", version: version, addons: Self.cilium) }
            XCTAssertTrue(text.contains("cluster.k3s_version") && text.contains("k3s#12947"), "\(version): \(text)")
        }
        for version in ["v1.32.10+k3s1", "v1.34.2+k3s1", "v1.35.0+k3s1"] {
            XCTAssertEqual(errors { try inventory(cni: "cilium", version: version, addons: Self.cilium) }, "", version)
        }
        XCTAssertEqual(errors { try inventory(cni: "none", version: "v1.31.5+k3s1") }, "", "no chart, no rule")
    }

    func testACNIWithoutItsAddonNamesWhatToAdd() {
        XCTAssertTrue(errors { try inventory(cni: "cilium") }.contains("needs [addons.cilium]"))
    }

    func testTheInstalledCNIIsReadFromConfigAndAChangeRefused() {
        XCTAssertNil(Preflight.installedCNI(config: "", manifests: ""), "not installed yet")
        XCTAssertEqual(Preflight.installedCNI(config: "node-ip: \"fd10::1\"\n", manifests: ""), .flannel)
        XCTAssertEqual(Preflight.installedCNI(config: "flannel-backend: \"none\"\n", manifests: ""), CNI.none)
        XCTAssertEqual(Preflight.installedCNI(config: "flannel-backend: \"none\"\ndisable-kube-proxy: true\n", manifests: ""), .cilium)
        XCTAssertEqual(Preflight.installedCNI(config: "flannel-backend: \"none\"\n",
                                              manifests: "/var/lib/rancher/k3s/server/manifests/fleet-tigera-operator.yaml\n"), .calico)
        XCTAssertNil(Preflight.cniChangeRefusal(installed: .cilium, wanted: .cilium))
        XCTAssertNil(Preflight.cniChangeRefusal(installed: nil, wanted: .cilium))
        XCTAssertTrue(Preflight.cniChangeRefusal(installed: .flannel, wanted: .cilium)?.contains("network stack is fixed") == true)
    }

    // MARK: - Add-ons

    func testNamesAreRFC1123LabelsAndNotPackagedComponents() {
        for bad in ["My_App", "a.b", "traefik", "coredns", "-x"] {
            let text = errors { try inventory(addons: "[addons.\"\(bad)\"]\nrepo = \"https://x.test/\"\nchart = \"c\"\nversion = \"1\"\n") }
            XCTAssertTrue(text.contains("addons.\(bad)") || text.contains(bad), "\(bad): \(text)")
            XCTAssertFalse(text.isEmpty, bad)
        }
        XCTAssertTrue(errors { try inventory(addons: "[addons.x]\nrepo = \"https://x.test/\"\nchart = \"c\"\n") }
            .contains("addons.x.version"))
        let unknown = errors { try inventory(addons: "[addons.x]\nrepo = \"https://x.test/\"\nchart = \"c\"\nversion = \"1\"\nvalue = 1\n") }
        XCTAssertTrue(unknown.contains("addons.x.value") && unknown.contains("did you mean \"values\""), unknown)
    }

    func testValuesAreRenderedTypedAndSorted() throws {
        let addon = """
            [addons.app]
            repo = "https://charts.example.test/"
            chart = "app"
            version = "2.0.0"
            namespace = "apps"
            failure_policy = "abort"
            backoff_limit = 1
            [addons.app.values]
            mode = "0600"
            port = 8080
            ratio = 0.5
            on = true
            list = ["a", "b"]
            nested = { host = "::1", "true" = "yes" }
            """
        let doc = try manifest(try inventory(addons: addon), "app")
        let spec = try XCTUnwrap(doc["spec"] as? [String: Any])
        XCTAssertEqual(spec["targetNamespace"] as? String, "apps")
        XCTAssertEqual(spec["failurePolicy"] as? String, "abort")
        XCTAssertEqual(spec["backOffLimit"] as? Int, 1)
        XCTAssertNil(spec["bootstrap"])
        let v = try values(doc)
        XCTAssertEqual(v["mode"] as? String, "0600", "a string stays a string")
        XCTAssertEqual(v["port"] as? Int, 8080)
        XCTAssertEqual(v["ratio"] as? Double, 0.5)
        XCTAssertEqual(v["on"] as? Bool, true)
        XCTAssertEqual(v["list"] as? [String], ["a", "b"])
        XCTAssertEqual((v["nested"] as? [String: Any])?["host"] as? String, "::1")
        XCTAssertEqual((v["nested"] as? [String: Any])?["true"] as? String, "yes")
    }

    func testAStaticChartIsServedFromEveryServerUnderItsDigest() throws {
        let a = AddonConfig(name: "app", source: .file(path: "/x.tgz", embed: false))
        let sha = String(repeating: "ab", count: 32)
        let text = try HelmChartManifest.render(a, chart: .staticFile(url: AddonFiles.chartURL("app", sha: sha)))
        let spec = try XCTUnwrap((try Yams.load(yaml: text) as? [String: Any])?["spec"] as? [String: Any])
        XCTAssertEqual(spec["chart"] as? String, "https://%{KUBERNETES_API}%/static/charts/fleet-app-abababababab.tgz")
        XCTAssertNil(spec["valuesContent"], "no values, no valuesContent")
        XCTAssertEqual(AddonFiles.addon(ofChart: "fleet-my-app-0123456789ab.tgz"), "my-app")
        XCTAssertNil(AddonFiles.addon(ofChart: "other.tgz"))
        XCTAssertEqual(AddonFiles.addon(ofManifest: "fleet-my-app.yaml"), "my-app")
        XCTAssertNil(AddonFiles.addon(ofManifest: "traefik.yaml"))
    }

    func testEmbeddingAChartOverTheConfigMapLimitIsRefused() throws {
        let scratch = try ScratchDirectory()
        let big = scratch.file("big.tgz")
        try Data(count: AddonConfig.embedLimit + 1).write(to: URL(fileURLWithPath: big))
        let text = errors { try inventory(addons: "[addons.big]\nchart = \"\(big)\"\nembed = true\n") }
        XCTAssertTrue(text.contains("addons.big.embed") && text.contains("750 KiB"), text)
        XCTAssertEqual(errors { try inventory(addons: "[addons.big]\nchart = \"\(big)\"\n") }, "", "served from static/charts")
    }

    // MARK: - The plan

    func wanted(_ name: String, chartSHA: String? = nil) -> K3sAddonsAction.Wanted {
        K3sAddonsAction.Wanted(name: name, manifest: "m", manifestSHA: "sha-\(name)", localChart: chartSHA.map { _ in "/l.tgz" },
                               chartPath: chartSHA.map { AddonFiles.chartPath(name, sha: $0) }, chartSHA: chartSHA)
    }

    func testThePlanUploadsWhatDiffersAndRemovesWhatIsNoLongerListed() {
        let sha = String(repeating: "1", count: 64)
        let old = String(repeating: "2", count: 64)
        let inputs = K3sAddonsAction.Inputs(group: "cluster", wanted: [wanted("a", chartSHA: sha), wanted("b")], known: ["a", "b", "s"])
        let facts = K3sAddonsAction.Facts(
            manifests: ["fleet-a.yaml": "sha-a", "fleet-gone.yaml": "x", "fleet-s.yaml": "y", "traefik.yaml": "z"],
            charts: [AddonFiles.chartName("a", sha: old): old, AddonFiles.chartName("gone", sha: old): old,
                     AddonFiles.chartName("s", sha: old): old])
        XCTAssertEqual(K3sAddonsAction.plan(facts, inputs), [
            .uploadChart(addon: "a"), .writeManifest(addon: "b"), .removeAddon(addon: "gone"),
            .removeChart(file: AddonFiles.chartName("a", sha: old)), .removeChart(file: AddonFiles.chartName("gone", sha: old)),
        ], "another group's add-on (s) and files fleet did not write (traefik.yaml) stay")
        let done = K3sAddonsAction.Facts(manifests: ["fleet-a.yaml": "sha-a", "fleet-b.yaml": "sha-b"],
                                         charts: [AddonFiles.chartName("a", sha: sha): sha])
        XCTAssertEqual(K3sAddonsAction.plan(done, inputs), [])
    }

    // MARK: - Verify

    func job(_ name: String, _ type: String?) throws -> AddonStatus.Job {
        let cond = type.map { "{\"type\":\"\($0)\",\"status\":\"True\",\"reason\":\"BackoffLimitExceeded\"}" } ?? ""
        let json = "{\"metadata\":{\"name\":\"\(name)\"},\"status\":{\"conditions\":[\(cond)]}}"
        return try JSONDecoder().decode(AddonStatus.Job.self, from: Data(json.utf8))
    }

    func testVerifyWaitsForEachJobAndNamesTheFailedPod() throws {
        let pod = try JSONDecoder().decode(KubeJSON.Pod.self, from: Data(
            "{\"metadata\":{\"name\":\"helm-install-b-x1\",\"labels\":{\"job-name\":\"helm-install-b\"}},\"status\":{\"phase\":\"Failed\"}}".utf8))
        let states = AddonStatus.evaluate(addons: ["a", "b", "c", "d"], charts: ["a", "b", "c"],
                                          jobs: [try job("helm-install-a", "Complete"), try job("helm-install-b", "Failed"),
                                                 try job("helm-install-c", nil)], pods: [pod])
        XCTAssertEqual(states["a"], .complete)
        XCTAssertEqual(states["b"], .failed(job: "helm-install-b", pod: "helm-install-b-x1", reason: "BackoffLimitExceeded"))
        guard case .waiting? = states["c"], case .waiting(let why)? = states["d"] else { return XCTFail("\(states)") }
        XCTAssertTrue(why.contains("not applied yet"), why)
    }

    // MARK: - Storage

    func testLonghornNeeds110AndNoMoreReplicasThanNodes() throws {
        let base = "[addons.longhorn]\nkind = \"longhorn\"\nrepo = \"https://charts.longhorn.io\"\nchart = \"longhorn\"\n"
        XCTAssertTrue(errors { try inventory(addons: base + "version = \"1.9.2\"\n") }.contains("from 1.10 on"))
        let many = base + "version = \"1.10.0\"\n[addons.longhorn.values]\npersistence = { defaultClassReplicaCount = 3 }\n"
        XCTAssertTrue(errors { try inventory(addons: many, hosts: 2) }.contains("more than the 2 node(s)"))
        let inv = try inventory(addons: base + "version = \"1.10.0\"\n", hosts: 2)
        let a = try XCTUnwrap(Addons.effective(inv).first)
        XCTAssertEqual(a.group, "storage")
        XCTAssertEqual(a.namespace, "longhorn-system")
        let doc = try manifest(inv, "longhorn")
        XCTAssertEqual((doc["spec"] as? [String: Any])?["failurePolicy"] as? String, "abort")
        let v = try values(doc)
        XCTAssertEqual((v["persistence"] as? [String: Any])?["defaultClassReplicaCount"] as? Int, 2)
        XCTAssertEqual((v["defaultSettings"] as? [String: Any])?["defaultReplicaCount"] as? Int, 2)
        XCTAssertTrue(K3sAddonsAction.removeCommand("longhorn").contains("deleting-confirmation-flag"))
    }

    func testVeleroGetsAnEmptyChecksumAlgorithmAndAWarningForIPv6Literals() throws {
        let addon = """
            [addons.velero]
            kind = "velero"
            repo = "https://vmware-tanzu.github.io/helm-charts"
            chart = "velero"
            version = "10.0.0"
            [[addons.velero.values.configuration.backupStorageLocation]]
            provider = "aws"
            bucket = "backups"
            config = { region = "minio", s3ForcePathStyle = "true", s3Url = "https://[fd42::9]:9000" }
            """
        let inv = try inventory(addons: addon)
        XCTAssertTrue(inv.warnings.contains { $0.description.contains("IPv6 literal") }, "\(inv.warnings)")
        let v = try values(try manifest(inv, "velero"))
        XCTAssertEqual(v["deployNodeAgent"] as? Bool, false, "node-agent is optional, off by default")
        let bsl = try XCTUnwrap(((v["configuration"] as? [String: Any])?["backupStorageLocation"] as? [[String: Any]])?.first)
        let config = try XCTUnwrap(bsl["config"] as? [String: Any])
        XCTAssertEqual(config["checksumAlgorithm"] as? String, "")
        XCTAssertEqual(config["s3ForcePathStyle"] as? String, "true")
    }
}

extension AddonsTests {
    func testAddonsNeedTheHelmControllerAndACNIChartElsewhereIsOrdinary() throws {
        let text = errors {
            try Inventory.parse(toml: "[cluster]\nk3s_version = \"v1.32.10+k3s1\"\ndisable = [\"helm-controller\"]\n\n"
                                + Self.cilium + "\n[[hosts]]\nname = \"n1\"\naddress = \"fd10::1\"\nrole = \"server\"\n",
                                path: "/srv/fleet/test.toml")
        }
        XCTAssertTrue(text.contains("cluster.disable") && text.contains("helm-controller"), text)
        let inv = try inventory(addons: Self.cilium)
        XCTAssertTrue(inv.warnings.contains { $0.description.contains("ordinary chart") }, "\(inv.warnings)")
        XCTAssertEqual(Addons.effective(inv).first?.bootstrap, false)
    }
}

extension AddonsTests {
    /// The step's digest follows every setting it renders: a changed value is a new manifest.
    func testTheDigestFollowsTheValues() throws {
        let one = try inventory(addons: Self.cilium, hosts: 1)
        let two = try inventory(addons: Self.cilium + "[addons.cilium.values]\nhubble = { enabled = true }\n", hosts: 1)
        let a = try K3sAddonsAction().inputs(host: one.hosts[0], inventory: one)
        let b = try K3sAddonsAction().inputs(host: two.hosts[0], inventory: two)
        XCTAssertEqual(a.wanted.map(\.name), ["cilium"])
        XCTAssertNotEqual(a.wanted[0].manifestSHA, b.wanted[0].manifestSHA)
        XCTAssertEqual(try K3sAddonsAction(group: "storage").inputs(host: one.hosts[0], inventory: one).wanted.count, 0)
        XCTAssertEqual(a.known, ["cilium"], "removal looks at every group's names")
    }
}
