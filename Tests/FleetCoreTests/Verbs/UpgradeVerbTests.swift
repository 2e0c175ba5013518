import FleetCore
@testable import FleetSteps
import FleetTestSupport
import Foundation
import XCTest

/// `fleet upgrade`'s playbook as built from a request (pure): the order of its steps, who runs them,
/// how many at once, and that a cluster already at the target gets no snapshot.
final class UpgradeVerbTests: XCTestCase {
    let target = K3sVersion("v1.32.3+k3s1")!

    func inventory(agents: Int) -> Inventory {
        Fixtures.inventory([("s1", .server), ("s2", .server), ("s3", .server)]
                           + (1...agents).map { ("a\($0)", HostRole.agent) },
                           path: NSTemporaryDirectory() + "fleet-upgrade-\(UUID().uuidString)/test.toml")
    }

    func testSnapshotThenServersOneAtATimeThenAgentsInBatchesThenVerify() throws {
        let inv = inventory(agents: 20)
        let book = try UpgradeVerb.Request(target: target).playbook(inv, snapshot: true, retryFailed: false,
                                                                     statePlaybook: "playbooks/k3s-ipv6.toml")
        XCTAssertEqual(book.steps.map(\.name), ["upgrade-snapshot", "upgrade-servers", "upgrade-agents", "upgrade-verify"])
        XCTAssertEqual(book.steps.map(\.target), [.firstServer, .servers, .agents, .firstServer])
        XCTAssertEqual(book.steps.map(\.serial), [nil, 1, 2, nil], "servers one at a time, 10 % of 20 agents")
        XCTAssertEqual(book.steps.map(\.after), [[], ["upgrade-snapshot"], ["upgrade-servers"], ["upgrade-servers", "upgrade-agents"]])
        XCTAssertEqual(book.path, "playbooks/k3s-ipv6.toml", "the state file keeps naming up's playbook")
    }

    func testNothingToDoMeansNoSnapshotAndABatchCountIsKept() throws {
        let inv = inventory(agents: 3)
        let book = try UpgradeVerb.Request(target: target, batch: BatchSize("2")!)
            .playbook(inv, snapshot: false, retryFailed: false, statePlaybook: "p")
        XCTAssertEqual(book.steps.map(\.name), ["upgrade-servers", "upgrade-agents", "upgrade-verify"])
        XCTAssertEqual(book.steps[0].after, [])
        XCTAssertEqual(book.steps[1].serial, 2)
    }

    func testTheNodeStepsDigestHoldsTheVersionAndDrainSettingsButNotTheBatch() throws {
        let inv = inventory(agents: 2)
        func inputs(_ r: UpgradeVerb.Request) throws -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            return String(decoding: try encoder.encode(try r.template(inv)), as: UTF8.self)
        }
        let base = try inputs(UpgradeVerb.Request(target: target))
        XCTAssertEqual(try inputs(UpgradeVerb.Request(target: target, batch: BatchSize("100%")!)), base)
        XCTAssertNotEqual(try inputs(UpgradeVerb.Request(target: target, drainTimeout: 60)), base)
        XCTAssertNotEqual(try inputs(UpgradeVerb.Request(target: K3sVersion("v1.32.4+k3s1")!)), base)
        XCTAssertTrue(base.contains("v1.32.3+k3s1"), base)
    }
}
