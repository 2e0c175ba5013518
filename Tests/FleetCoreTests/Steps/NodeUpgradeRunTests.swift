import FleetCore
@testable import FleetSteps
import FleetTestSupport
import Foundation
import XCTest

/// One agent's upgrade against the fake fleet: cordon and drain through the first server before
/// anything changes on the agent; a failed drain leaves it cordoned and untouched.
final class NodeUpgradeRunTests: XCTestCase {
    let old = "v1.31.5+k3s1"
    let new = K3sVersion("v1.32.3+k3s1")!

    func nodeJSON(_ version: String) -> String {
        #"{"metadata":{"name":"a1"},"spec":{},"status":{"conditions":[{"type":"Ready","status":"True"}],"nodeInfo":{"kubeletVersion":"\#(version)"}}}"#
    }

    func run(_ fleet: FakeFleet) throws -> RunSummary {
        let inv = Fixtures.inventory([("s1", .server), ("a1", .agent)],
                                     path: NSTemporaryDirectory() + "fleet-node-upgrade-\(UUID().uuidString)/t.toml")
        let w = NodeUpgrade.Wanted(role: .server, version: new, drainGrace: 5, drainTimeout: 5, wait: 10, kubectlHost: "s1")
        let book = Playbook(name: "t", path: "t", steps: [
            Step(name: "upgrade-agents", target: .agents, actionName: "node_upgrade",
                 action: NodeUpgradeAction(template: w, uncordonLeftover: false)),
        ])
        return PlaybookRun.runReadOnly(inventory: inv, playbook: book, command: "upgrade", connector: fleet,
                                       reporter: JSONLinesReporter(out: .memory()))
    }

    func agentFacts(_ fleet: FakeFleet) {
        fleet["a1"].on(contains: "@@fleet-fact:version",
                       stdout: "@@fleet-fact:version\nk3s version \(old) (x)\n@@fleet-fact:sha\n")
    }

    func testAFailedDrainStopsBeforeTheAgentIsTouchedAndLeavesItCordoned() throws {
        let fleet = FakeFleet()
        agentFacts(fleet)
        fleet["s1"].on(contains: "get node a1 -o json", stdout: nodeJSON(old))
        fleet["s1"].on(contains: "kubectl cordon a1", stdout: "node/a1 cordoned\n")
        fleet["s1"].on(contains: "kubectl drain a1", exit: 1,
                       stderr: "error: unable to drain node \"a1\" due to error: [error when evicting pods/\"web\" -n \"default\": global timeout reached: 5s]\n")
        let s = try run(fleet)
        let r = try XCTUnwrap(s.result(host: "a1", step: "upgrade-agents"))
        XCTAssertEqual(r.status, .failed, r.message)
        XCTAssertTrue(r.message.hasPrefix("draining a1 did not finish within 5 s"), r.message)
        XCTAssertTrue(r.message.contains("stays cordoned"), r.message)
        XCTAssertEqual(fleet["a1"].commands.count, 1, "only the facts ran on the agent: \(fleet["a1"].commands)")
        XCTAssertFalse(fleet["s1"].commands.contains { $0.contains("uncordon") }, "\(fleet["s1"].commands)")
        let cordon = try XCTUnwrap(fleet["s1"].commands.firstIndex { $0.contains("kubectl cordon") })
        let drain = try XCTUnwrap(fleet["s1"].commands.firstIndex { $0.contains("kubectl drain") })
        XCTAssertLessThan(cordon, drain)
        XCTAssertTrue(fleet["s1"].commands[drain].contains("--grace-period=5 --timeout=5s"), fleet["s1"].commands[drain])
    }

    func testAnAgentIsCordonedDrainedUpgradedAwaitedAtTheNewVersionThenUncordoned() throws {
        let fleet = FakeFleet()
        agentFacts(fleet)
        let restarted = Locked(false)
        let before = nodeJSON(old), after = nodeJSON(new.description)
        fleet["s1"].on(.contains("get node a1 -o json")) { _ in
            .exit(0, stdout: restarted.withLock { $0 } ? after : before)
        }
        fleet["s1"].on(contains: "kubectl cordon a1")
        fleet["s1"].on(contains: "kubectl drain a1")
        fleet["s1"].on(contains: "kubectl uncordon a1")
        fleet["a1"].on(contains: "get.k3s.io")
        fleet["a1"].on(.contains("systemctl start --no-block k3s-agent")) { _ in
            restarted.withLock { $0 = true }
            return .exit(0, stdout: "0\n")
        }
        fleet["a1"].on(contains: "@@fleet-fact:show", stdout: "@@fleet-fact:show\nActiveState=active\nSubState=running\n")
        let s = try run(fleet)
        let r = try XCTUnwrap(s.result(host: "a1", step: "upgrade-agents"))
        XCTAssertEqual(r.status, .changed, r.message)
        XCTAssertTrue(r.message.contains("\(old) → \(new): cordon, drain, run the installer, restart, wait until Ready, uncordon"),
                      r.message)
        let s1 = fleet["s1"].commands.filter { $0.contains("kubectl") && !$0.contains("get node") }
        XCTAssertEqual(s1.map { $0.split(separator: " ")[2] }, ["cordon", "drain", "uncordon"])
        let a1 = fleet["a1"].commands
        let installer = try XCTUnwrap(a1.firstIndex { $0.contains("INSTALL_K3S_VERSION=v1.32.3+k3s1") })
        let start = try XCTUnwrap(a1.firstIndex { $0.contains("systemctl start --no-block k3s-agent") })
        XCTAssertLessThan(installer, start)
        XCTAssertTrue(a1[installer].contains("INSTALL_K3S_SKIP_START=true"), a1[installer])
    }
}
