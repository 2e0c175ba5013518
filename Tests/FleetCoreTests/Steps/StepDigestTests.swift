import FleetCore
import FleetTestSupport
@testable import FleetSteps
import Foundation
import XCTest

/// A step's digest is its inputs (exactly the settings it reads), not its dry-run words.
final class StepDigestTests: XCTestCase {
    /// An action whose dry-run words and inputs are set apart.
    struct Probe: Action {
        var words: String
        var value: String
        func inputs(host: FleetCore.Host, inventory: Inventory) -> [String: String] { ["value": value] }
        func describe(_ vars: TemplateVariables) -> [String] { [words] }
        func run(_ ctx: TaskContext) throws -> ActionOutcome { .ok(words) }
    }

    func digest(_ action: any Action, _ inventory: Inventory, host: Int = 0) -> String {
        Planner.digest(Step(name: "s", target: .all, actionName: "probe", action: action), host: inventory.hosts[host],
                       inventory: inventory)
    }

    func testDryRunWordsDoNotFeedTheDigest() {
        let inv = Fixtures.inventory([("s1", .server)])
        XCTAssertEqual(digest(Probe(words: "write the file", value: "a"), inv),
                       digest(Probe(words: "write the file (reworded)", value: "a"), inv))
        XCTAssertNotEqual(digest(Probe(words: "same", value: "a"), inv), digest(Probe(words: "same", value: "b"), inv))
    }

    func testPreflightsDigestFollowsProbeAndCheckInternet() {
        let inv = Fixtures.inventory([("s1", .server)])
        let action = K3sPreflightAction()
        var probed = inv
        probed.preflight.probe = IPv6Address("fd00:99::1")
        var offline = inv
        offline.preflight.checkInternet.toggle()
        let digests = [inv, probed, offline].map { digest(action, $0) }
        XCTAssertEqual(Set(digests).count, 3, "probe and check_internet each change preflight's digest")
        var renamed = inv
        renamed.cluster.name = "other"
        XCTAssertEqual(digest(action, renamed), digests[0], "a setting preflight does not read leaves it alone")
    }

    func testServerDigestFollowsWhatItInstallsAndShellStepsDoNot() throws {
        let inv = Fixtures.inventory([("s1", .server), ("a1", .agent)])
        let server = K3sServerAction()
        let shell = try ShellAction(StepParams(file: "p.toml", step: "s", values: ["command": .string("uptime")]))
        var changed: [Inventory] = []
        for edit in [{ (i: inout Inventory) in i.cluster.disable = ["traefik"] },
                     { $0.cluster.tlsSAN = ["api.example.org"] },
                     { $0.cluster.k3sVersion = "v1.31.6+k3s1" },
                     { $0.cluster.flannelIPv6Masq = false }] {
            var copy = inv
            edit(&copy)
            changed.append(copy)
        }
        let serverDigests = ([inv] + changed).map { digest(server, $0) }
        XCTAssertEqual(Set(serverDigests).count, 5, "each setting the server's install reads changes its digest")
        XCTAssertEqual(Set(([inv] + changed).map { digest(shell, $0) }).count, 1, "a shell step reads none of them")
    }

    /// `[preflight] probe` changed after a successful run: `--retry-failed` runs preflight again.
    func testChangedProbeRerunsPreflightWithRetryFailed() throws {
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "preflight"
            action = "k3s_preflight"
            """, registry: K3sActions.registry)
        let before = Fixtures.inventory([("s1", .server)])
        let done = Planner.tasks(inventory: before, playbook: book)
        let previous = try Fixtures.runState(done.map { Fixtures.StateRecord($0.host.name, $0.step.name, .ok, digest: $0.digest) },
                                             inventory: before)

        let unchanged = FakeFleet()
        let same = FakeRun.run(book, inventory: before, fleet: unchanged, previous: previous)
        XCTAssertEqual(same.result(host: "s1", step: "preflight")?.status, .skipped)
        XCTAssertEqual(unchanged.host("s1").commands, [], "unchanged inputs: preflight is skipped")

        var after = before
        after.preflight.probe = IPv6Address("fd00:dead::1")
        let fleet = FakeFleet()
        let summary = FakeRun.run(book, inventory: after, fleet: fleet, previous: previous)
        XCTAssertNotEqual(summary.result(host: "s1", step: "preflight")?.status, .skipped)
        let commands = fleet.host("s1").commands
        XCTAssertEqual(commands.count, 1)
        XCTAssertTrue(commands.first?.contains("fd00:dead::1") ?? false, commands.first ?? "")
    }
}
