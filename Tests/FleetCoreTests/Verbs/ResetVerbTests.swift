import FleetCore
@testable import FleetSteps
import FleetTestSupport
import Foundation
import XCTest

/// `fleet reset` as a playbook on the runner: agents first, servers one at a time, node deletion
/// through a server that stays; the state file, `--dry-run`, `--retry-failed` and JSON results.
final class ResetVerbTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "fleet-reset-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/inventory", withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func inventory(_ hosts: [(String, HostRole)]) -> Inventory {
        Fixtures.inventory(hosts, path: dir + "/inventory/test.toml")
    }

    func reset(_ inv: Inventory, _ names: [String]? = nil, fleet: FakeFleet, retryFailed: Bool = false,
               out: OutputSink = .memory()) throws -> RunSummary {
        let hosts = names.map { n in inv.hosts.filter { n.contains($0.name) } } ?? inv.hosts
        let request = try ResetVerb.Request(inventory: inv, hosts: hosts, sysctl: false)
        return try ResetVerb.run(inventory: inv, request: request, retryFailed: retryFailed, connector: fleet,
                                 reporter: JSONLinesReporter(out: out), defaultPlaybook: "playbooks/k3s-ipv6.toml")
    }

    func lines(_ s: RunSummary) -> [String] {
        s.results.map { "\($0.host) \($0.step) \($0.status.rawValue): \($0.message)" }
    }

    func testAgentsBeforeServersAndServersUntouchedWhenAnAgentFails() throws {
        let inv = inventory([("s1", .server), ("a1", .agent), ("a2", .agent)])
        let fleet = FakeFleet()
        for name in ["s1", "a1", "a2"] { fleet[name].on(contains: "did=", stdout: "did: /var/lib/rancher/fleet\n") }
        let summary = try reset(inv, fleet: fleet)
        XCTAssertTrue(summary.succeeded, lines(summary).joined(separator: "\n"))
        XCTAssertEqual(summary.result(host: "s1", step: "server-reset")?.status, .changed)
        XCTAssertEqual(summary.result(host: "a1", step: "agent-reset")?.message, "removed: /var/lib/rancher/fleet")
        let server = fleet.events.first { $0.kind == .commandStarted && $0.host == "s1" }!.seq
        XCTAssertTrue(fleet.events.filter { $0.kind == .commandFinished && $0.host != "s1" }.allSatisfy { $0.seq < server },
                      "the server starts after every agent finished")

        let failing = FakeFleet()
        failing["s1"].on(contains: "did=", stdout: "did:\n")
        failing["a1"].on(contains: "did=", exit: 1, stderr: "k3s-agent-uninstall.sh failed\n")
        failing["a2"].on(contains: "did=", stdout: "did:\n")
        let second = try reset(inv, fleet: failing)
        XCTAssertEqual(second.result(host: "a1", step: "agent-reset")?.status, .failed)
        XCTAssertEqual(second.result(host: "a1", step: "agent-reset")?.message, "exit 1: k3s-agent-uninstall.sh failed")
        XCTAssertEqual(second.result(host: "a2", step: "agent-reset")?.status, .ok)
        XCTAssertEqual(second.result(host: "a2", step: "agent-reset")?.message, "nothing installed")
        let s1 = try XCTUnwrap(second.result(host: "s1", step: "server-reset"))
        XCTAssertEqual(s1.status, .blocked)
        XCTAssertEqual(s1.message, "blocked: runs after \"agent-reset\", which ended failed on a1")
        XCTAssertFalse(failing.events.contains { $0.host == "s1" && $0.kind == .commandStarted })
    }

    func testPartialResetLeavesTheClusterThroughOneConnectionToAServerThatStays() throws {
        let inv = inventory([("s1", .server), ("s2", .server), ("s3", .server), ("a1", .agent), ("a2", .agent)])
        let fleet = FakeFleet()
        for name in ["s2", "s3", "a1", "a2"] { fleet[name].on(contains: "did=", stdout: "did: k3s-uninstall.sh\n") }
        fleet["s1"].on(contains: "kubectl delete node", stdout: "node deleted\n")
        let summary = try reset(inv, ["s2", "s3", "a1", "a2"], fleet: fleet)
        XCTAssertTrue(summary.succeeded, lines(summary).joined(separator: "\n"))
        let s2 = try XCTUnwrap(summary.result(host: "s2", step: "server-reset"))
        XCTAssertTrue(s2.message.hasPrefix("node deleted through s1 (etcd member removed); removed:"), s2.message)
        let a1 = try XCTUnwrap(summary.result(host: "a1", step: "agent-reset"))
        XCTAssertTrue(a1.message.hasSuffix("; node deleted through s1"), a1.message)
        XCTAssertEqual(fleet["s1"].connectCount, 1, "every node deletion goes over the run's one connection to s1")
        XCTAssertFalse(fleet["s1"].commands.contains { $0.contains("did=") }, "the staying server is not reset")

        // Per server: its node deleted, then it is uninstalled, one server after the other, after the agents.
        let order = fleet.events.filter { $0.kind == .commandStarted }.map { e -> String in
            e.host == "s1" ? "delete " + (e.text.components(separatedBy: "delete node ").last?.split(separator: " ").first ?? "")
                           : "uninstall \(e.host)"
        }
        XCTAssertEqual(Array(order.suffix(4)), ["delete s2", "uninstall s2", "delete s3", "uninstall s3"])
        XCTAssertEqual(Set(order.prefix(4)), ["uninstall a1", "delete a1", "uninstall a2", "delete a2"])
        XCTAssertLessThan(order.firstIndex(of: "uninstall a1")!, order.firstIndex(of: "delete a1")!)

        // A server that cannot be removed is left installed, and the next one is not touched.
        let failing = FakeFleet()
        for name in ["s2", "s3"] { failing[name].on(contains: "did=", stdout: "did: k3s-uninstall.sh\n") }
        failing["s1"].on(contains: "kubectl delete node", exit: 1, stderr: "Error from server: etcdserver: unhealthy cluster\n")
        let second = try reset(inv, ["s2", "s3"], fleet: failing)
        let f2 = try XCTUnwrap(second.result(host: "s2", step: "server-reset"))
        XCTAssertEqual(f2.status, .failed)
        XCTAssertTrue(f2.message.contains("could not remove it from the cluster through s1 (exit 1: Error from server: etcdserver: unhealthy cluster)"),
                      f2.message)
        XCTAssertEqual(second.result(host: "s3", step: "server-reset")?.status, .blocked)
        XCTAssertTrue(failing["s2"].commands.isEmpty && failing["s3"].commands.isEmpty, "nothing was uninstalled")
    }

    func testTheFirstServerIsNotResetWhileOtherServersStay() throws {
        let inv = inventory([("s1", .server), ("s2", .server), ("a1", .agent)])
        XCTAssertThrowsError(try ResetVerb.Request(inventory: inv, hosts: inv.hosts.filter { $0.name == "s1" }, sysctl: false)) {
            XCTAssertTrue("\($0)".hasPrefix("refusing to reset: s1 is the first server and s2 would stay"), "\($0)")
        }
        XCTAssertNil(try ResetVerb.Request(inventory: inv, hosts: inv.hosts, sysctl: false).staying, "the whole cluster: nothing to leave")
        XCTAssertEqual(ResetVerb.deleteNodeCommand("it's"),
                       "/usr/local/bin/k3s kubectl delete node 'it'\\''s' --ignore-not-found --timeout=60s </dev/null")
    }

    func testDryRunChangesNothing() throws {
        let inv = inventory([("s1", .server), ("s2", .server), ("a1", .agent)])
        let statePath = RunState.path(forInventory: inv.path)
        // A state file from an earlier `up`.
        let fleet = FakeFleet()
        let up = try PlaybookRun.run(inventory: inv, playbook: try Fixtures.playbook("[[steps]]\nname = \"a\"\naction = \"shell\"\ncommand = \"true\""),
                                     options: .init(), connector: fleet, reporter: JSONLinesReporter(out: .memory()))
        XCTAssertTrue(up.succeeded)
        let before = try Data(contentsOf: URL(fileURLWithPath: statePath))
        let eventsBefore = fleet.events.count

        let request = try ResetVerb.Request(inventory: inv, hosts: inv.hosts.filter { $0.name != "s1" }, sysctl: true)
        let text = try ResetVerb.dryRun(inventory: inv, request: request, retryFailed: false, defaultPlaybook: "p.toml")
        XCTAssertTrue(text.hasPrefix("dry run: 2 task(s), nothing is changed\n"), text)
        XCTAssertTrue(text.contains("a1 [fd00:10::3] agent-reset (reset)\n    run /usr/local/bin/k3s-agent-uninstall.sh if present"), text)
        XCTAssertTrue(text.contains("    then delete node a1 through s1\n"), text)
        XCTAssertTrue(text.contains("s2 [fd00:10::2] server-reset (reset), at most 1 host(s) at once, in inventory order, after agent-reset ended everywhere\n"
                                    + "    delete node s2 through s1"), text)
        XCTAssertTrue(text.contains("/etc/sysctl.d/90-fleet-ipv6.conf"), "--sysctl is shown")
        XCTAssertEqual(fleet.events.count, eventsBefore, "no host was contacted")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: statePath)), before, "the state file is unchanged")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/inventory/.fleet/other"))
    }

    func testJSONGivesOneResultPerHostAndStep() throws {
        let inv = inventory([("s1", .server), ("s2", .server), ("a1", .agent), ("a2", .agent)])
        let fleet = FakeFleet()
        fleet["a1"].on(contains: "did=", stdout: "did:\n")
        fleet["a2"].reachability = .unreachable("no route to host")
        let out = OutputSink.memory()
        _ = try reset(inv, fleet: fleet, out: out)
        let events = out.text.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let finished = events.filter { $0["event"] as? String == "task_finished" }
        let pairs = finished.map { "\($0["host"]!) \($0["step"]!) \($0["status"]!)" }.sorted()
        XCTAssertEqual(pairs, ["a1 agent-reset ok", "a2 agent-reset unreachable", "s1 server-reset blocked", "s2 server-reset blocked"])
        XCTAssertEqual(events.last?["event"] as? String, "run_finished")
        XCTAssertEqual(events.last?["status"] as? String, "failed")
    }

    func testTheStateForgetsResetHostsAndRetryFailedRedoesOnlyWhatDidNotFinish() throws {
        let inv = inventory([("s1", .server), ("a1", .agent), ("a2", .agent)])
        let statePath = RunState.path(forInventory: inv.path)
        let fleet = FakeFleet()
        _ = try PlaybookRun.run(inventory: inv, playbook: try Fixtures.playbook("[[steps]]\nname = \"a\"\naction = \"shell\"\ncommand = \"true\""),
                                options: .init(), connector: fleet, reporter: JSONLinesReporter(out: .memory()))
        for name in ["s1", "a2"] { fleet[name].on(contains: "did=", stdout: "did: k3s-uninstall.sh\n") }
        fleet["a1"].on(contains: "did=", exit: 1, stderr: "busy\n")
        let first = try reset(inv, fleet: fleet)
        XCTAssertFalse(first.succeeded)
        var state = try XCTUnwrap(try RunState.load(path: statePath))
        XCTAssertNil(state.hosts["a2"], "a2 was reset: its records are gone")
        XCTAssertEqual(state.hosts["a1"]?["agent-reset"]?.status, .failed)
        XCTAssertEqual(state.hosts["a1"]?["a"]?.status, .changed, "a host not reset keeps its records")
        XCTAssertEqual(state.hosts["s1"]?["server-reset"]?.status, .blocked)
        XCTAssertEqual(state.playbook, "/nonexistent/fleet-tests/playbooks/test.toml", "the state keeps the playbook it names")
        XCTAssertEqual(state.lastRun?.command, "reset")

        // Fixed; --retry-failed touches a1 and s1 only.
        fleet["a1"].on(contains: "did=", stdout: "did: k3s-agent-uninstall.sh\n")
        let a2Before = fleet["a2"].commands.count
        let request = try ResetVerb.Request(inventory: inv, hosts: inv.hosts, sysctl: false)
        let dry = try ResetVerb.dryRun(inventory: inv, request: request, retryFailed: true, defaultPlaybook: "p.toml")
        XCTAssertTrue(dry.hasPrefix("dry run: 2 task(s)"), dry)
        XCTAssertFalse(dry.contains("a2"), dry)
        let retry = try reset(inv, fleet: fleet, retryFailed: true)
        XCTAssertTrue(retry.succeeded, lines(retry).joined(separator: "\n"))
        XCTAssertEqual(retry.results.map(\.host).sorted(), ["a1", "s1"])
        XCTAssertEqual(fleet["a2"].commands.count, a2Before, "a2 was not touched again")
        state = try XCTUnwrap(try RunState.load(path: statePath))
        XCTAssertEqual(state.hosts.keys.sorted(), [], "every host is reset now")
    }
}
