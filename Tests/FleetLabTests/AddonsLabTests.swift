import FleetCore
import FleetRemote
import FleetSteps
import Foundation
import XCTest
import Yams

/// `[cluster] cni`, `[addons]` and `[registries]` against the K3s stand-in's helm-controller: hosts 1–2 are the
/// servers and host 3 the agent of a Cilium cluster; host 4 is a one-server cluster with `cni = "none"`.
///
/// The tests share the clusters and run in the order of their names.
final class AddonsLabTests: LabTestCase {
    override class var labSpec: (hosts: Int, name: String, net: String) { (4, "addon1", "f0") }
    static let fixed = "v1.32.10+k3s1"
    static let password = "s3cr3t-mirror-pw-\(UUID().uuidString.prefix(8))"
    nonisolated(unsafe) static var scanner: CommandLineScanner?

    override class func tearDown() {
        scanner?.stop()
        super.tearDown()
    }

    func fleetBinary() throws -> String {
        let path = Lab.repo + "/.build/debug/fleet"
        guard FileManager.default.isExecutableFile(atPath: path) else { throw LabError("\(path) is missing") }
        return path
    }

    /// An air-gap directory whose stand-in reports `version` (the lab's own reports v1.31.5+k3s1).
    func airgapDir(_ lab: Lab, version: String) throws -> String {
        let dir = lab.dir + "/k3s-\(version)"
        let files = FileManager.default
        if !files.fileExists(atPath: dir + "/k3s") {
            try files.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let source = Lab.repo + "/Tests/Fixtures/k3s"
            let text = try String(contentsOfFile: source + "/k3s", encoding: .utf8)
                .replacingOccurrences(of: "DEFAULT_VERSION = \"v1.31.5+k3s1\"", with: "DEFAULT_VERSION = \"\(version)\"")
            try text.write(toFile: dir + "/k3s", atomically: true, encoding: .utf8)
            try files.copyItem(atPath: source + "/install.sh", toPath: dir + "/install.sh")
            chmod(dir + "/k3s", 0o755)
            chmod(dir + "/install.sh", 0o755)
        }
        return dir
    }

    /// A packaged chart (`name/Chart.yaml` in a .tgz).
    func chart(_ lab: Lab, _ name: String) throws -> String {
        let out = lab.dir + "/charts/\(name).tgz"
        if FileManager.default.fileExists(atPath: out) { return out }  // tar records times: build each chart once
        let dir = lab.dir + "/charts/\(name)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "apiVersion: v2\nname: \(name)\nversion: 1.18.2\n".write(toFile: dir + "/Chart.yaml", atomically: true, encoding: .utf8)
        let r = Lab.run(["/bin/tar", "-czf", out, "-C", lab.dir + "/charts", name])
        XCTAssertEqual(r.status, 0, r.output)
        return out
    }

    /// The lab inventory with its hosts replaced by `hosts` (index, role) and `extra` TOML appended.
    func inventory(_ lab: Lab, _ file: String, hosts: [(Int, String)], cluster: String, extra: String) throws -> String {
        var text = try String(contentsOfFile: lab.inventoryPath, encoding: .utf8)
        if let cut = text.range(of: "\n[[hosts]]") { text = String(text[..<cut.lowerBound]) }
        text = text.replacingOccurrences(of: "[cluster]\n", with: "[cluster]\n" + cluster)
        for (i, role) in hosts {
            text += "\n[[hosts]]\nname = \"addon1-\(i)\"\naddress = \"\(lab.hosts[i - 1].address)\"\nrole = \"\(role)\"\n"
        }
        let path = lab.dir + "/" + file
        try (text + "\n" + extra).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func ciliumInventory(_ lab: Lab, withExtra: Bool) throws -> String {
        let chartPath = try chart(lab, "cilium")
        let extraChart = try chart(lab, "extra")
        let pwFile = lab.dir + "/mirror.password"
        try (Self.password + "\n").write(toFile: pwFile, atomically: true, encoding: .utf8)
        var extra = """
            [k3s]
            source = "airgap"
            airgap_dir = "\(try airgapDir(lab, version: Self.fixed))"

            [addons.cilium]
            version = "1.18.2"
            chart = "\(chartPath)"
            [addons.cilium.values]
            hubble = { enabled = false }

            [registries.mirrors."docker.io"]
            endpoint = ["https://mirror.addon1.test:5000"]
            [registries.mirrors."docker.io".rewrite]
            "^rancher/(.*)" = "mirrored/$1"
            [registries.configs."mirror.addon1.test:5000".auth]
            username = "fleet"
            password_file = "\(pwFile)"

            """
        if withExtra {
            extra += """

                [addons.extra]
                chart = "\(extraChart)"
                embed = true
                namespace = "extra"
                [addons.extra.values]
                replicas = 1
                """
        }
        var text = try inventory(lab, withExtra ? "cilium.toml" : "cilium-less.toml", hosts: [(1, "server"), (2, "server"), (3, "agent")],
                                 cluster: "cni = \"cilium\"\n", extra: "")
        text = try String(contentsOfFile: text, encoding: .utf8)
        text = text.replacingOccurrences(of: "k3s_version = \"v1.31.5+k3s1\"", with: "k3s_version = \"\(Self.fixed)\"")
        // The lab's own [k3s] table is replaced by the one above.
        if let start = text.range(of: "[k3s]\n"), let end = text.range(of: "[ssh]", range: start.upperBound..<text.endIndex) {
            text.removeSubrange(start.lowerBound..<end.lowerBound)
        }
        let path = lab.dir + "/cilium.toml"
        try (text + "\n" + extra).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func run(_ path: String) throws -> (RunSummary, String) {
        let inv = try Inventory.load(path: path)
        let book = try Playbook.load(path: Lab.repo + "/playbooks/k3s-ipv6.toml", registry: K3sActions.registry)
        let sink = OutputSink.memory()
        let start = Date()
        let summary = try PlaybookRun.run(inventory: inv, playbook: book, options: .init(), connector: SSHConnector(),
                                          reporter: JSONLinesReporter(out: sink))
        print("fleet up \((path as NSString).lastPathComponent): \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        return (summary, sink.text)
    }

    func describe(_ s: RunSummary) -> String {
        s.results.map { "\($0.host)/\($0.step)=\($0.status.rawValue) \($0.message)" }.joined(separator: "\n")
    }

    func sshdLines(_ lab: Lab, _ i: Int) -> Int {
        (FileManager.default.contents(atPath: "\(lab.dir)/hosts/\(i)/sshd.log") ?? Data()).filter { $0 == 0x0A }.count
    }

    // MARK: - Tests

    func test1_CiliumOnAnUnfixedReleaseIsRefusedBeforeAnyHostIsTouched() throws {
        let lab = try lab()
        let fleet = try fleetBinary()
        var path = try ciliumInventory(lab, withExtra: false)
        let text = try String(contentsOfFile: path, encoding: .utf8)
            .replacingOccurrences(of: "k3s_version = \"\(Self.fixed)\"", with: "k3s_version = \"v1.31.5+k3s1\"")
        path = lab.dir + "/cilium-old.toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let before = (1...3).map { sshdLines(lab, $0) }
        let r = Lab.run([fleet, "up", path])
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.output.contains("k3s_version") && r.output.contains("k3s#12947"), r.output)
        XCTAssertEqual((1...3).map { sshdLines(lab, $0) }, before, "a host was contacted")
        for i in 1...3 {
            XCTAssertEqual(lab.exec(i, "find /etc/rancher /etc/sysctl.d -type f 2>/dev/null | wc -l").output, "0\n")
        }
    }

    func test2_CniNoneSetsTheFlagsAndVerifySaysNodesWaitForACNI() throws {
        let lab = try lab()
        let path = try inventory(lab, "none.toml", hosts: [(4, "server")], cluster: "cni = \"none\"\n", extra: "")
        let (summary, _) = try run(path)
        XCTAssertTrue(summary.succeeded, describe(summary))
        let config = try XCTUnwrap(try Yams.load(yaml: lab.exec(4, "cat /etc/rancher/k3s/config.yaml").output) as? [String: Any])
        XCTAssertEqual(config["flannel-backend"] as? String, "none")
        XCTAssertEqual(config["disable-network-policy"] as? Bool, true)
        XCTAssertNil(config["disable-kube-proxy"])
        let verify = try XCTUnwrap(summary.result(host: "addon1-4", step: "verify"))
        XCTAssertEqual(verify.status, .ok, verify.message)
        XCTAssertTrue(verify.message.contains("nodes stay NotReady until a CNI runs"), verify.message)
        XCTAssertTrue(verify.message.contains("NotReady"), verify.message)

        // The stand-in refuses what K3s v1.31.5 cannot do: a bootstrap chart on an IPv6-only node fails its job,
        // dialling 127.0.0.1:6444 (k3s#12947). fleet refuses it before; here the manifest is put there by hand.
        let manifest = "apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata:\n  name: boot\n  namespace: kube-system\n"
            + "spec:\n  repo: https://charts.example.test\n  chart: boot\n  bootstrap: true\n"
        XCTAssertEqual(lab.exec(4, "mkdir -p /var/lib/rancher/k3s/server/manifests && printf '%s' '\(manifest)' > /var/lib/rancher/k3s/server/manifests/boot.yaml").status, 0)
        var jobs = ""
        for _ in 0..<40 where !jobs.contains("BackoffLimitExceeded") {
            Thread.sleep(forTimeInterval: 0.5)  // polling the stand-in's API, bounded
            jobs = lab.exec(4, "k3s kubectl get jobs.batch -n kube-system -o json").output
        }
        XCTAssertTrue(jobs.contains("helm-install-boot") && jobs.contains("BackoffLimitExceeded"), jobs)
        let pods = lab.exec(4, "k3s kubectl get pods -n kube-system -l job-name=helm-install-boot -o name").output
        let logs = lab.exec(4, "k3s kubectl logs -n kube-system \(pods.trimmingCharacters(in: .whitespacesAndNewlines)) --tail=5").output
        XCTAssertTrue(logs.contains("127.0.0.1:6444"), logs)
        XCTAssertEqual(lab.exec(4, "rm /var/lib/rancher/k3s/server/manifests/boot.yaml && "
                                + "k3s kubectl delete helmchart -n kube-system boot --wait=false").status, 0)

        // The network stack is fixed: cilium on the same server is refused, and nothing changes.
        let fleet = try fleetBinary()
        let changed = try inventory(lab, "none-to-cilium.toml", hosts: [(4, "server")], cluster: "cni = \"calico\"\n",
                                    extra: "[addons.tigera-operator]\nversion = \"3.30.0\"\nchart = \"\(try chart(lab, "tigera-operator"))\"\n")
        var text = try String(contentsOfFile: changed, encoding: .utf8)
        text = text.replacingOccurrences(of: "k3s_version = \"v1.31.5+k3s1\"", with: "k3s_version = \"\(Self.fixed)\"")
        try text.write(toFile: changed, atomically: true, encoding: .utf8)
        let sum = lab.exec(4, "sha256sum /etc/rancher/k3s/config.yaml").output
        let r = Lab.run([fleet, "up", changed])
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.output.contains("network stack is fixed"), r.output)
        XCTAssertEqual(lab.exec(4, "sha256sum /etc/rancher/k3s/config.yaml").output, sum)
    }

    func test3_CiliumOnAFixedReleaseInstallsTheSameChartEverywhere() throws {
        let lab = try lab()
        let path = try ciliumInventory(lab, withExtra: true)
        let scanner = CommandLineScanner()
        Self.scanner = scanner
        scanner.start()
        let (summary, output) = try run(path)
        scanner.stop()
        XCTAssertTrue(summary.succeeded, describe(summary))
        let inv = try Inventory.load(path: path)

        for i in 1...2 {
            let config = try XCTUnwrap(try Yams.load(yaml: lab.exec(i, "cat /etc/rancher/k3s/config.yaml").output) as? [String: Any])
            XCTAssertEqual(config["flannel-backend"] as? String, "none", "addon1-\(i)")
            XCTAssertEqual(config["disable-network-policy"] as? Bool, true)
            XCTAssertEqual(config["disable-kube-proxy"] as? Bool, true)
        }
        let manifest = "/var/lib/rancher/k3s/server/manifests/fleet-cilium.yaml"
        let text = lab.exec(1, "cat \(manifest)").output
        XCTAssertEqual(lab.exec(2, "cat \(manifest)").output, text, "the manifest differs between the servers")
        XCTAssertEqual(lab.exec(3, "test -e \(manifest) && echo yes || echo no").output, "no\n", "agents hold no manifests")
        let doc = try XCTUnwrap(try Yams.load(yaml: text) as? [String: Any])
        let spec = try XCTUnwrap(doc["spec"] as? [String: Any])
        XCTAssertEqual(spec["bootstrap"] as? Bool, true)
        XCTAssertEqual(spec["failurePolicy"] as? String, "abort")
        let url = try XCTUnwrap(spec["chart"] as? String)
        XCTAssertTrue(url.hasPrefix("https://%{KUBERNETES_API}%/static/charts/fleet-cilium-"), url)
        let chartFile = "/var/lib/rancher/k3s/server/static/charts/" + (url as NSString).lastPathComponent
        let localSHA = try LocalFile.sha256(of: lab.dir + "/charts/cilium.tgz")
        for i in 1...2 { XCTAssertEqual(lab.exec(i, "sha256sum < \(chartFile)").output.prefix(64), Substring(localSHA)) }
        let values = try XCTUnwrap(try Yams.load(yaml: try XCTUnwrap(spec["valuesContent"] as? String)) as? [String: Any])
        XCTAssertEqual((values["ipv4"] as? [String: Any])?["enabled"] as? Bool, false)
        XCTAssertEqual((values["ipv6"] as? [String: Any])?["enabled"] as? Bool, true)
        XCTAssertEqual((values["ipam"] as? [String: Any])?["mode"] as? String, "kubernetes")
        XCTAssertEqual((values["k8s"] as? [String: Any])?["requireIPv6PodCIDR"] as? Bool, true)
        XCTAssertEqual(values["k8sServiceHost"] as? String, "::1", "unbracketed")
        XCTAssertEqual(values["k8sServicePort"] as? Int, 6444)
        XCTAssertEqual(values["routingMode"] as? String, "native")
        XCTAssertEqual(values["ipv6NativeRoutingCIDR"] as? String, inv.cluster.clusterCIDR.description)
        XCTAssertEqual((values["hubble"] as? [String: Any])?["enabled"] as? Bool, false, "the inventory's values are kept")

        let verify = try XCTUnwrap(summary.result(host: "addon1-1", step: "verify"))
        XCTAssertTrue(verify.message.contains("helm-install-cilium") && verify.message.contains("helm-install-extra"), verify.message)
        XCTAssertTrue(verify.message.contains("3 node(s) Ready"), verify.message)
        let jobs = lab.exec(1, "k3s kubectl get jobs -n kube-system -o json").output
        XCTAssertTrue(jobs.contains("\"helm-install-cilium\"") && jobs.contains("\"Complete\""), jobs)

        // registries.yaml on every node, 0600, with the password; the password nowhere else.
        for i in 1...3 {
            XCTAssertEqual(lab.exec(i, "stat -c %a /etc/rancher/k3s/registries.yaml").output, "600\n")
            let reg = try XCTUnwrap(try Yams.load(yaml: lab.exec(i, "cat /etc/rancher/k3s/registries.yaml").output) as? [String: Any])
            let mirror = (reg["mirrors"] as? [String: Any])?["docker.io"] as? [String: Any]
            XCTAssertEqual(mirror?["endpoint"] as? [String], ["https://mirror.addon1.test:5000"])
            XCTAssertEqual((mirror?["rewrite"] as? [String: String])?["^rancher/(.*)"], "mirrored/$1")
            let auth = ((reg["configs"] as? [String: Any])?["mirror.addon1.test:5000"] as? [String: Any])?["auth"] as? [String: Any]
            XCTAssertEqual(auth?["username"] as? String, "fleet")
            XCTAssertEqual(auth?["password"] as? String, Self.password)
            let log = lab.exec(i, "cat /var/lib/rancher/.standin/\(i < 3 ? "k3s" : "k3s-agent").log").output
            XCTAssertTrue(log.contains("Using private registry config file at /etc/rancher/k3s/registries.yaml"), "addon1-\(i)")
            XCTAssertFalse(log.contains(Self.password))
        }
        XCTAssertFalse(output.contains(Self.password), "the password is in fleet's output")
        let state = try String(contentsOfFile: RunState.path(forInventory: path), encoding: .utf8)
        XCTAssertFalse(state.contains(Self.password), "the password is in the state file")
        XCTAssertGreaterThan(scanner.seen.count, 20)
        XCTAssertEqual(scanner.seen.filter { $0.contains(Self.password) }, [], "the password was on a command line")
    }

    func test4_ASecondRunChangesNothing() throws {
        let lab = try lab()
        let (summary, _) = try run(try ciliumInventory(lab, withExtra: true))
        let notOK = summary.results.filter { $0.status != .ok }.map { "\($0.host) \($0.step) \($0.status): \($0.message)" }
        XCTAssertEqual(notOK, [], "a second run changes nothing")
    }

    func test5_AnAddonRemovedFromTheInventoryIsRemovedEverywhere() throws {
        let lab = try lab()
        let manifest = "/var/lib/rancher/k3s/server/manifests/fleet-extra.yaml"
        XCTAssertEqual(lab.exec(2, "test -e \(manifest) && echo yes").output, "yes\n")
        let (summary, _) = try run(try ciliumInventory(lab, withExtra: false))
        XCTAssertTrue(summary.succeeded, describe(summary))
        for i in 1...2 {
            XCTAssertEqual(summary.result(host: "addon1-\(i)", step: "addons")?.status, .changed)
            XCTAssertEqual(lab.exec(i, "test -e \(manifest) && echo yes || echo gone").output, "gone\n", "addon1-\(i)")
            XCTAssertEqual(lab.exec(i, "test -e /var/lib/rancher/k3s/server/manifests/fleet-cilium.yaml && echo yes").output, "yes\n")
        }
        let charts = lab.exec(1, "k3s kubectl get helmcharts.helm.cattle.io -n kube-system -o json").output
        XCTAssertTrue(charts.contains("\"cilium\""), charts)
        XCTAssertFalse(charts.contains("\"extra\""), charts)
    }

    func test6_AFailingChartIsNamedWithItsPodAndLogLines() throws {
        let lab = try lab()
        let broken = lab.dir + "/charts/broken.tgz"
        try Data("not a gzip archive".utf8).write(to: URL(fileURLWithPath: broken))
        let base = try ciliumInventory(lab, withExtra: false)
        let path = lab.dir + "/broken.toml"
        try (try String(contentsOfFile: base, encoding: .utf8) + "\n[addons.broken]\nchart = \"\(broken)\"\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let (summary, _) = try run(path)
        let verify = try XCTUnwrap(summary.result(host: "addon1-1", step: "verify"))
        XCTAssertEqual(verify.status, .failed, verify.message)
        XCTAssertTrue(verify.message.contains("job helm-install-broken failed"), verify.message)
        XCTAssertTrue(verify.message.contains("pod helm-install-broken-"), verify.message)
        XCTAssertTrue(verify.message.contains("does not appear to be a gzipped archive"), verify.message)
        XCTAssertLessThan(Double(verify.durationMs) / 1000, 60, "a failed job fails verify without waiting out its timeout")

        // Gone from the inventory: removed from both servers again.
        let (again, _) = try run(base)
        XCTAssertTrue(again.succeeded, describe(again))
        for i in 1...2 {
            XCTAssertEqual(lab.exec(i, "ls /var/lib/rancher/k3s/server/static/charts/ | grep -c broken || true").output, "0\n")
        }
    }
}
