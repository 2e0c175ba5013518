import FleetCore
import FleetSteps
import Foundation
import XCTest

/// `fleet upgrade`, `fleet snapshot` and `fleet restore` with the executable, on three servers with
/// embedded etcd and two agents, from the lab's v1.31.5+k3s1 to a v1.32 "release": a copy of the
/// stand-in whose version constant says v1.32.3+k3s1. What happened on the hosts is read from the
/// stand-in's own event record (`/var/lib/rancher/.standin/events.log`), never timed.
///
/// The tests share one cluster and run in the order of their names.
final class UpgradeLabTests: LabTestCase {
    override class var labSpec: (hosts: Int, name: String, net: String) { (5, "upgr1", "d0") }
    override class var labServers: Int { 3 }

    static let events = "/var/lib/rancher/.standin/events.log"
    static let workloads = "/var/lib/rancher/k3s/server/standin-workloads.json"
    static let from = "v1.31.5+k3s1"
    static let to = "v1.32.3+k3s1"

    struct Event {
        var host: Int
        var time: Double
        var kind: String
        var detail: String
    }

    func fleet(_ args: [String]) throws -> (status: Int32, output: String) {
        let path = Lab.repo + "/.build/debug/fleet"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw LabError("\(path) is missing: run swift build --build-tests first")
        }
        let start = Date()
        let r = Lab.run(["/bin/sh", "-c", ([path] + args).map(shellQuote).joined(separator: " ") + " 2>&1"])
        print("fleet \(args.prefix(1).joined()) \(args.dropFirst(2).joined(separator: " ")): exit \(r.status) in "
              + String(format: "%.1f", Date().timeIntervalSince(start)) + " s")
        if ProcessInfo.processInfo.environment["UPGRADE_LAB_VERBOSE"] != nil { print(r.output) }
        return r
    }

    /// A release folder: the stand-in and its installer, the stand-in claiming `version`.
    func release(_ lab: Lab, _ version: String) throws -> String {
        let dir = lab.dir + "/release-" + version
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let fixtures = Lab.repo + "/Tests/Fixtures/k3s"
        let k3s = try String(contentsOfFile: fixtures + "/k3s", encoding: .utf8)
        let changed = k3s.replacingOccurrences(of: "DEFAULT_VERSION = \"\(Self.from)\"", with: "DEFAULT_VERSION = \"\(version)\"")
        XCTAssertNotEqual(changed, k3s, "the stand-in's version constant moved")
        try changed.write(toFile: dir + "/k3s", atomically: true, encoding: .utf8)
        chmod(dir + "/k3s", 0o755)
        try? FileManager.default.removeItem(atPath: dir + "/install.sh")
        try FileManager.default.copyItem(atPath: fixtures + "/install.sh", toPath: dir + "/install.sh")
        return dir
    }

    func events(_ lab: Lab, since: Double = 0) -> [Event] {
        var out: [Event] = []
        for i in 1...5 {
            for line in lab.exec(i, "cat \(Self.events) 2>/dev/null").output.split(separator: "\n") {
                let parts = line.split(separator: " ", maxSplits: 2).map(String.init)
                guard parts.count >= 2, let t = Double(parts[0]), t >= since else { continue }
                out.append(Event(host: i, time: t, kind: parts[1], detail: parts.count > 2 ? parts[2] : ""))
            }
        }
        return out.sorted { $0.time < $1.time }
    }

    func binaryVersions(_ lab: Lab) -> [String] {
        (1...5).map { lab.exec($0, "/usr/local/bin/k3s --version | head -n 1").output.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    func kubectl(_ lab: Lab, _ args: String) throws -> (status: Int32, output: String) {
        let config = lab.dir + "/upgrade.kubeconfig"
        if !FileManager.default.fileExists(atPath: config) {
            let k = try fleet(["kubeconfig", lab.inventoryPath, "-o", config])
            XCTAssertEqual(k.status, 0, k.output)
        }
        let env = "env -u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy -u ALL_PROXY -u all_proxy HOME=\(lab.dir)/kubectl-home"
        return Lab.run(["/bin/sh", "-c", "\(env) /usr/bin/kubectl --kubeconfig \(config) --request-timeout=30s \(args) 2>&1"])
    }

    func clusterUp(_ lab: Lab) throws {
        if lab.exec(1, "test -s /etc/rancher/k3s/k3s.yaml").status == 0 { return }
        let up = try fleet(["up", lab.inventoryPath])
        XCTAssertEqual(up.status, 0, up.output)
    }

    func test1_DowngradeAndSkippedMinorAreRefusedBeforeAnyHostIsTouched() throws {
        let lab = try lab()
        try clusterUp(lab)
        let before = events(lab).count
        let inventory = try String(contentsOfFile: lab.inventoryPath, encoding: .utf8)
        let down = try fleet(["upgrade", lab.inventoryPath, "--to", "v1.31.4+k3s1", "--airgap-dir", try release(lab, "v1.31.4+k3s1"), "--yes"])
        XCTAssertEqual(down.status, 2, down.output)
        XCTAssertTrue(down.output.contains("upgr1-1: runs v1.31.5+k3s1, newer than v1.31.4+k3s1: fleet never downgrades a server"), down.output)
        let skip = try fleet(["upgrade", lab.inventoryPath, "--to", "v1.33.0+k3s1", "--airgap-dir", try release(lab, "v1.33.0+k3s1"), "--yes"])
        XCTAssertEqual(skip.status, 2, skip.output)
        XCTAssertTrue(skip.output.contains("would skip a minor release: upgrade to a v1.32 release first"), skip.output)
        let wrong = try fleet(["upgrade", lab.inventoryPath, "--to", "v1.32.4+k3s1", "--airgap-dir", try release(lab, Self.to), "--yes"])
        XCTAssertEqual(wrong.status, 2, wrong.output)
        XCTAssertTrue(wrong.output.contains("k3s --version says v1.32.3+k3s1, not v1.32.4+k3s1"), wrong.output)

        let dry = try fleet(["upgrade", lab.inventoryPath, "--to", Self.to, "--airgap-dir", try release(lab, Self.to), "--dry-run"])
        XCTAssertEqual(dry.status, 0, dry.output)
        XCTAssertTrue(dry.output.contains("to upgrade to \(Self.to): upgr1-1, upgr1-2, upgr1-3, upgr1-4, upgr1-5"), dry.output)

        XCTAssertEqual(events(lab).count, before, "a refused upgrade or a dry run changed something on a host")
        XCTAssertEqual(binaryVersions(lab), Array(repeating: "k3s version \(Self.from) (standin)", count: 5))
        XCTAssertEqual(try String(contentsOfFile: lab.inventoryPath, encoding: .utf8), inventory)
    }

    func test2_UpgradeDrainsAgentsOneAtATimeAStuckDrainStopsItAndRetryFinishes() throws {
        let lab = try lab()
        try clusterUp(lab)
        let dir = try release(lab, Self.to)
        // A pod to evict on each agent; the one on upgr1-4 is under a budget that allows no eviction.
        let pods = #"[{"name":"web-4","node":"upgr1-4","protected":true},{"name":"web-5","node":"upgr1-5"}]"#
        XCTAssertEqual(lab.exec(1, "printf '%s' '\(pods)' > \(Self.workloads)").status, 0)
        let start = Date().timeIntervalSince1970

        let first = try fleet(["upgrade", lab.inventoryPath, "--to", Self.to, "--airgap-dir", dir, "--batch", "1",
                               "--drain-timeout", "4", "--yes"])
        XCTAssertEqual(first.status, 1, first.output)
        XCTAssertTrue(first.output.contains("upgr1-4 upgrade-agents failed: draining upgr1-4 did not finish within 4 s"), first.output)
        XCTAssertTrue(first.output.contains("upgr1-5 upgrade-agents blocked"), first.output)
        let nodes = try kubectl(lab, "get nodes -o json")
        XCTAssertEqual(nodes.status, 0, nodes.output)
        let state = try XCTUnwrap(NodeState.parse(nodes.output))
        XCTAssertEqual(state["upgr1-4"]?.unschedulable, true, "the agent whose drain failed stays cordoned")
        XCTAssertEqual(state["upgr1-4"]?.kubeletVersion, Self.from)
        XCTAssertEqual(state["upgr1-5"]?.unschedulable, false, "the next agent was touched")
        XCTAssertEqual(state["upgr1-5"]?.kubeletVersion, Self.from)
        XCTAssertEqual(lab.exec(5, "/usr/local/bin/k3s --version | head -n 1").output, "k3s version \(Self.from) (standin)\n")
        XCTAssertEqual(try Inventory.load(path: lab.inventoryPath).cluster.k3sVersion, Self.from, "inventory changed by a failed upgrade")

        // The budget lifted: the retry finishes what is left.
        XCTAssertEqual(lab.exec(1, #"printf '%s' '[{"name":"web-5","node":"upgr1-5"}]' > "# + Self.workloads).status, 0)
        // (both agents at once this time: --batch is not part of a step's inputs)
        let retry = try fleet(["upgrade", lab.inventoryPath, "--to", Self.to, "--airgap-dir", dir, "--batch", "100%",
                               "--drain-timeout", "4", "--retry-failed", "--yes"])
        XCTAssertEqual(retry.status, 0, retry.output)
        XCTAssertTrue(retry.output.contains("upgr1-1 upgrade-servers skipped"), retry.output)
        XCTAssertTrue(retry.output.contains("k3s_version = \"\(Self.to)\""), retry.output)

        // Every node at the new version through a real kubectl, none cordoned; the inventory says so.
        let after = try XCTUnwrap(NodeState.parse(try kubectl(lab, "get nodes -o json").output))
        XCTAssertEqual(after.count, 5)
        for (name, node) in after {
            XCTAssertTrue(node.ready && node.kubeletVersion == Self.to && !node.unschedulable, "\(name): \(node)")
        }
        XCTAssertEqual(binaryVersions(lab), Array(repeating: "k3s version \(Self.to) (standin)", count: 5))
        let inv = try Inventory.load(path: lab.inventoryPath)
        XCTAssertEqual(inv.cluster.k3sVersion, Self.to)
        XCTAssertEqual(inv.k3s.airgapDir, dir)

        let log = events(lab, since: start)
        // The snapshot was on the first server (and here) before any server restarted.
        let saved = try XCTUnwrap(log.first { $0.kind == "snapshot-saved" }, "no snapshot")
        XCTAssertTrue(saved.detail.contains("/db/snapshots/fleet-pre-v1.32.3-k3s1-upgr1-1-"), saved.detail)
        let firstStop = try XCTUnwrap(log.first { $0.kind == "server-stopping" })
        XCTAssertLessThan(saved.time, firstStop.time)
        let local = DatastoreSnapshot.localDirectory(inv) + "/" + (saved.detail as NSString).lastPathComponent
        let data = try XCTUnwrap(FileManager.default.contents(atPath: local), local)
        XCTAssertEqual(try String(contentsOfFile: local + ".sha256", encoding: .utf8),
                       "\(sha256Hex(data))  \((local as NSString).lastPathComponent)\n")
        XCTAssertEqual(lab.exec(1, "sha256sum < \(shellQuote(saved.detail))").output.prefix(64), Substring(sha256Hex(data)))

        // Never two servers down: each server's stop-to-ready interval ends before the next begins.
        var down: [(Double, Double, Int)] = []
        for e in log where e.kind == "server-stopping" {
            let ready = try XCTUnwrap(log.first { $0.host == e.host && $0.kind == "server-ready" && $0.time > e.time },
                                      "server \(e.host) never came back")
            XCTAssertEqual(ready.detail, Self.to)
            down.append((e.time, ready.time, e.host))
        }
        XCTAssertEqual(down.map(\.2).sorted(), [1, 2, 3], "each server restarted once")
        for (a, b) in zip(down, down.dropFirst()) {
            XCTAssertLessThan(a.1, b.0, "servers \(a.2) and \(b.2) were down at the same time")
        }
        // Each agent was cordoned (on the first server's record) before its K3s stopped, and
        // after the last server was back.
        for agent in [4, 5] {
            let stop = try XCTUnwrap(log.first { $0.host == agent && $0.kind == "agent-stopping" })
            let cordon = try XCTUnwrap(log.last { $0.kind == "cordon" && $0.detail == "upgr1-\(agent)" && $0.time < stop.time },
                                       "upgr1-\(agent) was not cordoned before its restart")
            XCTAssertFalse(log.contains { $0.kind == "uncordon" && $0.detail == "upgr1-\(agent)" && $0.time > cordon.time && $0.time < stop.time })
            XCTAssertGreaterThan(cordon.time, try XCTUnwrap(down.map(\.1).max()))
        }
        XCTAssertTrue(log.contains { $0.kind == "eviction-refused" && $0.detail == "default/web-4" })
        XCTAssertTrue(log.contains { $0.kind == "evicted" && $0.detail == "default/web-5" })

        // A second upgrade and an up change nothing.
        let quiet = events(lab).count
        let again = try fleet(["upgrade", lab.inventoryPath, "--to", Self.to, "--airgap-dir", dir, "--yes"])
        XCTAssertEqual(again.status, 0, again.output)
        let lines = again.output.split(separator: "\n").filter {
            $0.range(of: #"^upgr1-[0-9] upgrade-[a-z]+ [a-z]+:"#, options: .regularExpression) != nil
        }
        XCTAssertEqual(lines.count, 6, again.output)
        XCTAssertTrue(lines.allSatisfy { $0.contains(" ok: ") }, again.output)
        let up = try fleet(["up", lab.inventoryPath, "--json"])
        XCTAssertEqual(up.status, 0, up.output)
        let finished = up.output.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }.filter { $0["event"] as? String == "task_finished" }
        XCTAssertFalse(finished.isEmpty, up.output)
        XCTAssertEqual(finished.filter { $0["status"] as? String != "ok" }.map { "\($0["host"] ?? "") \($0["step"] ?? "")" }, [],
                       "up after an upgrade changed something")
        XCTAssertEqual(events(lab).filter { $0.kind.hasSuffix("stopping") }.count,
                       events(lab).prefix(quiet).filter { $0.kind.hasSuffix("stopping") }.count, "something restarted")
    }

    func test3_RestoreBringsBackAConfigMapDeletedAfterTheSnapshot() throws {
        let lab = try lab()
        try clusterUp(lab)
        let created = try kubectl(lab, "create configmap keep-me --from-literal=answer=42 --validate=false")
        XCTAssertEqual(created.status, 0, created.output)
        let save = try fleet(["snapshot", lab.inventoryPath, "save", "before-delete"])
        XCTAssertEqual(save.status, 0, save.output)
        let list = try fleet(["snapshot", lab.inventoryPath, "list"])
        XCTAssertEqual(list.status, 0, list.output)
        let name = try XCTUnwrap(list.output.split(separator: "\n").map { String($0.split(separator: " ").first ?? "") }
                                    .first { $0.hasPrefix("before-delete-upgr1-1-") }, list.output)
        let local = DatastoreSnapshot.localDirectory(try lab.inventory()) + "/" + name
        try? FileManager.default.removeItem(atPath: local)
        let fetch = try fleet(["snapshot", lab.inventoryPath, "fetch", name])
        XCTAssertEqual(fetch.status, 0, fetch.output)
        let data = try XCTUnwrap(FileManager.default.contents(atPath: local), "fetch wrote no \(local)")
        XCTAssertEqual(lab.exec(1, "sha256sum < /var/lib/rancher/k3s/server/db/snapshots/\(name)").output.prefix(64),
                       Substring(sha256Hex(data)))
        XCTAssertEqual(try kubectl(lab, "delete configmap keep-me --wait=false").status, 0)
        XCTAssertNotEqual(try kubectl(lab, "get configmap keep-me").status, 0)

        let refused = try fleet(["restore", lab.inventoryPath, name])
        XCTAssertEqual(refused.status, 2, "no terminal, no --yes: " + refused.output)
        let restore = try fleet(["restore", lab.inventoryPath, name, "--yes"])
        XCTAssertEqual(restore.status, 0, restore.output)
        let got = try kubectl(lab, "get configmap keep-me -o jsonpath={.data.answer}")
        XCTAssertEqual(got.status, 0, got.output)
        XCTAssertEqual(got.output, "42")
        let nodes = try XCTUnwrap(NodeState.parse(try kubectl(lab, "get nodes -o json").output))
        XCTAssertEqual(nodes.count, 5, "\(nodes.keys.sorted())")

        // K3s's own refusals: no reset on a server that joins another, nor a second one while reset-flag is there.
        let joined = lab.exec(2, "/usr/local/bin/k3s server --cluster-reset 2>&1")
        XCTAssertNotEqual(joined.status, 0)
        XCTAssertTrue(joined.output.contains("--server is not compatible with --cluster-reset"), joined.output)
        let again = lab.exec(1, "/usr/local/bin/k3s server --cluster-reset 2>&1")
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.output.contains("Managed etcd cluster membership was previously reset"), again.output)
    }
}
