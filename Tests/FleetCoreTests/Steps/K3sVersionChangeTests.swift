import FleetCore
import FleetTestSupport
@testable import FleetSteps
import Foundation
import XCTest

/// `up` and a changed `k3s_version`: a node already running K3s is left alone (an upgrade's job),
/// through the runner with the fake fleet.
final class K3sVersionChangeTests: XCTestCase {
    /// A fake host whose install facts say: K3s `version` installed as a server and running.
    func runK3s(_ host: FakeHost, version: String) {
        host.on(contains: "@@fleet-fact:version", stdout: """
            @@fleet-fact:version
            k3s version \(version) (fake)
            @@fleet-fact:sha
            @@fleet-fact:mode
            600
            @@fleet-fact:unit
            yes
            @@fleet-fact:show
            ActiveState=active
            SubState=running
            NRestarts=0

            """)
    }

    func testUpRefusesToChangeTheVersionOfARunningServerAndChangesNothing() throws {
        let fleet = FakeFleet()
        let inventory = Fixtures.inventory([("s1", .server)])
        runK3s(fleet.host("s1"), version: "v1.30.9+k3s1")
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "k3s-server"
            action = "k3s_server"
            target = "first-server"
            """, registry: K3sActions.registry)
        let summary = FakeRun.run(book, inventory: inventory, fleet: fleet)

        let result = try XCTUnwrap(summary.result(host: "s1", step: "k3s-server"))
        XCTAssertEqual(result.status, .refused, result.message)
        XCTAssertTrue(summary.refused)
        XCTAssertFalse(summary.succeeded)
        XCTAssertTrue(result.message.contains("K3s v1.30.9+k3s1 runs here and the inventory wants v1.31.5+k3s1"), result.message)
        XCTAssertTrue(result.message.contains("fleet upgrade"), result.message)
        let host = fleet.host("s1")
        XCTAssertEqual(host.uploads.map(\.text), [], "nothing written")
        XCTAssertEqual(host.commands.count, 1, "only the facts were gathered: \(host.commands)")
        XCTAssertFalse(host.commands.joined().contains("INSTALL_K3S"), "the installer never ran")
    }

    func testTheSameVersionIsNotRefused() throws {
        let fleet = FakeFleet()
        let inventory = Fixtures.inventory([("s1", .server)])
        runK3s(fleet.host("s1"), version: "v1.31.5+k3s1")
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "k3s-server"
            action = "k3s_server"
            target = "first-server"
            timeout = 1
            """, registry: K3sActions.registry)
        let summary = FakeRun.run(book, inventory: inventory, fleet: fleet)
        XCTAssertFalse(summary.refused, summary.results.map(\.message).joined())
        XCTAssertTrue(fleet.host("s1").uploads.contains { $0.text == K3sConfigFile.path }, "it goes on to write its config")
    }
}
