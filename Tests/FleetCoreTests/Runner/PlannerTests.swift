import FleetCore
import FleetTestSupport
import Foundation
import XCTest

final class PlannerTests: XCTestCase {
    let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent)])

    /// base (all) → token (first server, produces token) → join (agents, needs token) → after (all).
    let bookText = """
        [[steps]]
        name = "base"
        action = "shell"
        command = "base {{ host.name }}"

        \(Fixtures.fetchTokenStep)

        \(Fixtures.tokenUploadStep(name: "join"))

        [[steps]]
        name = "after"
        action = "shell"
        command = "after"
        """

    struct Rec {
        var host: String
        var step: String
        var status: TaskStatus
        var digest: String?
    }

    /// A state file's records, decoded the way fleet reads them. `digest: nil` means: the current digest.
    func previousState(_ records: [Rec], plan: [PlannedTask]) throws -> RunState {
        try Fixtures.runState(records.map { r in
            let current = plan.first { $0.host.name == r.host && $0.step.name == r.step }?.digest ?? ""
            return Fixtures.StateRecord(r.host, r.step, r.status, digest: r.digest ?? current)
        }, inventory: inventory)
    }

    func pairs(_ tasks: [PlannedTask]) -> [String] { tasks.map { "\($0.host.name)/\($0.step.name)" } }
    func running(_ tasks: [PlannedTask]) -> [String] { pairs(tasks.filter { $0.skipReason == nil }) }
    func skipped(_ tasks: [PlannedTask]) -> [String] { pairs(tasks.filter { $0.skipReason != nil }) }

    // MARK: Plain plans

    func testPlanIsStepMajorInInventoryOrder() throws {
        let tasks = Planner.tasks(inventory: inventory, playbook: try Fixtures.playbook(bookText))
        XCTAssertEqual(pairs(tasks), ["s1/base", "a1/base", "a2/base", "s1/token", "a1/join", "a2/join",
                                      "s1/after", "a1/after", "a2/after"])
        XCTAssertEqual(tasks.map(\.stepIndex), [0, 0, 0, 1, 2, 2, 3, 3, 3])
        XCTAssertTrue(tasks.allSatisfy { $0.skipReason == nil })
    }

    func testDigestFollowsRenderedInputs() throws {
        let book = try Fixtures.playbook(bookText)
        let tasks = Planner.tasks(inventory: inventory, playbook: book)
        let base = tasks.filter { $0.step.name == "base" }.map(\.digest)
        XCTAssertEqual(Set(base).count, 3, "base renders the host name: one digest per host")
        let after = tasks.filter { $0.step.name == "after" }.map(\.digest)
        XCTAssertEqual(Set(after).count, 1, "same inputs, same digest")
        XCTAssertEqual(after[0].count, 64)
        XCTAssertEqual(pairs(Planner.tasks(inventory: inventory, playbook: book)), pairs(tasks))
        XCTAssertEqual(Planner.tasks(inventory: inventory, playbook: book).map(\.digest), tasks.map(\.digest), "stable")

        let edited = try Fixtures.playbook(bookText.replacingOccurrences(of: "command = \"after\"", with: "command = \"after --now\""))
        let editedAfter = Planner.tasks(inventory: inventory, playbook: edited).filter { $0.step.name == "after" }.map(\.digest)
        XCTAssertNotEqual(editedAfter[0], after[0])
    }

    func testStepFilter() throws {
        let tasks = Planner.tasks(inventory: inventory, playbook: try Fixtures.playbook(bookText), steps: ["base", "after"])
        XCTAssertEqual(Set(tasks.map(\.step.name)), ["base", "after"])
    }

    // MARK: --limit

    func testLimitKeepsProducersOnOtherHosts() throws {
        let tasks = Planner.tasks(inventory: inventory, playbook: try Fixtures.playbook(bookText), limit: ["a2"])
        XCTAssertEqual(pairs(tasks), ["a2/base", "s1/token", "a2/join", "a2/after"])
    }

    func testLimitWithoutNeedsKeepsOnlyLimitedHosts() throws {
        let tasks = Planner.tasks(inventory: inventory, playbook: try Fixtures.playbook(bookText), limit: ["s1"])
        XCTAssertEqual(pairs(tasks), ["s1/base", "s1/token", "s1/after"])
    }

    /// a1 needs `token`, produced on s2 by a step that itself needs `ca` from s1: both producers must run.
    func testLimitKeepsProducersOfProducers() throws {
        let inventory = Fixtures.inventory([("s1", .server), ("s2", .server), ("a1", .agent)])
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "ca"
            action = "fetch_secret"
            target = "s1"
            path = "/ca"
            secret = "ca"

            [[steps]]
            name = "relay"
            action = "fetch_secret"
            target = "s2"
            needs = ["ca"]
            path = "/token"
            secret = "token"

            [[steps]]
            name = "join"
            action = "shell"
            target = "a1"
            needs = ["token"]
            command = "join"
            """)
        let tasks = Planner.tasks(inventory: inventory, playbook: book, limit: ["a1"])
        XCTAssertEqual(pairs(tasks), ["s1/ca", "s2/relay", "a1/join"])

        let fleet = FakeFleet()
        fleet.host("s1").setFile("/ca", "ca-value")
        fleet.host("s2").setFile("/token", "token-value")
        let summary = FakeRun.run(book, inventory: inventory, fleet: fleet, limit: ["a1"])
        XCTAssertTrue(summary.succeeded, summary.results.map { "\($0.host)/\($0.step) \($0.status) \($0.message)" }.joined(separator: "\n"))
    }

    func testLimitRunsOnlyThoseHostsWithTheFake() throws {
        let fleet = FakeFleet()
        fleet.host("s1").setFile(Fixtures.nodeTokenPath, "K10abc::server:0123456789")
        let summary = FakeRun.run(try Fixtures.playbook(bookText), inventory: inventory, fleet: fleet, limit: ["a1"])
        XCTAssertTrue(summary.succeeded)
        XCTAssertEqual(summary.hosts, ["s1", "a1"])
        XCTAssertTrue(fleet.host("a2").events.isEmpty, "a2 was not touched")
        XCTAssertEqual(fleet.host("s1").commands.count, 1, "only the producer ran on s1: \(fleet.host("s1").commands)")
        XCTAssertEqual(fleet.host("a1").file("/etc/rancher/k3s/token")?.text, "K10abc::server:0123456789")
    }

    // MARK: --retry-failed

    func testRetryFailedRerunsOnlyWhatDidNotSucceed() throws {
        let book = try Fixtures.playbook(bookText)
        let fresh = Planner.tasks(inventory: inventory, playbook: book)
        let previous = try previousState([
            Rec(host: "s1", step: "base", status: .changed),
            Rec(host: "a1", step: "base", status: .ok),
            Rec(host: "a2", step: "base", status: .failed),
            Rec(host: "s1", step: "token", status: .ok),
            Rec(host: "a1", step: "join", status: .changed),
            Rec(host: "a2", step: "join", status: .blocked),
            Rec(host: "s1", step: "after", status: .changed, digest: String(repeating: "0", count: 64)),
            Rec(host: "a2", step: "after", status: .interrupted),
            // a1/after: never ran.
        ], plan: fresh)
        let tasks = Planner.tasks(inventory: inventory, playbook: book, retryFailed: previous)

        XCTAssertEqual(pairs(tasks), pairs(fresh), "every pair is planned; skipped ones carry a reason")
        XCTAssertEqual(skipped(tasks), ["s1/base", "a1/base", "a1/join"])
        // s1/token succeeded with the same digest, but a2/join reruns and needs the token: fetched again.
        XCTAssertEqual(running(tasks), ["a2/base", "s1/token", "a2/join", "s1/after", "a1/after", "a2/after"])
        let reason = try XCTUnwrap(tasks.first { $0.host.name == "s1" && $0.step.name == "base" }?.skipReason)
        XCTAssertTrue(reason.contains("20250301T100000Z-1"), reason)
    }

    func testRetryFailedReRunsUnreachableAndKeepsProducerSkippedWhenNobodyNeedsIt() throws {
        let book = try Fixtures.playbook(bookText)
        let fresh = Planner.tasks(inventory: inventory, playbook: book)
        let previous = try previousState(
            fresh.map { Rec(host: $0.host.name, step: $0.step.name, status: .ok) }
                .filter { !($0.host == "a2" && $0.step == "after") }
                + [Rec(host: "a2", step: "after", status: .unreachable)],
            plan: fresh)
        let tasks = Planner.tasks(inventory: inventory, playbook: book, retryFailed: previous)
        XCTAssertEqual(running(tasks), ["a2/after"])
        XCTAssertTrue(skipped(tasks).contains("s1/token"))
    }

    func testRetryFailedCountsSkippedAsDone() throws {
        let book = try Fixtures.playbook(bookText)
        let fresh = Planner.tasks(inventory: inventory, playbook: book)
        let previous = try previousState(fresh.map { Rec(host: $0.host.name, step: $0.step.name, status: .skipped) }, plan: fresh)
        XCTAssertEqual(running(Planner.tasks(inventory: inventory, playbook: book, retryFailed: previous)), [])
    }

    /// A producer un-skipped for a rerun consumer itself needs a value: that producer runs too.
    func testRetryFailedUnskipsProducersOfProducers() throws {
        let inventory = Fixtures.inventory([("s1", .server), ("s2", .server), ("a1", .agent)])
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "ca"
            action = "fetch_secret"
            target = "s1"
            path = "/ca"
            secret = "ca"

            [[steps]]
            name = "relay"
            action = "fetch_secret"
            target = "s2"
            needs = ["ca"]
            path = "/token"
            secret = "token"

            [[steps]]
            name = "join"
            action = "shell"
            target = "a1"
            needs = ["token"]
            command = "join"
            """)
        let fresh = Planner.tasks(inventory: inventory, playbook: book)
        let previous = try previousState([
            Rec(host: "s1", step: "ca", status: .ok),
            Rec(host: "s2", step: "relay", status: .ok),
            Rec(host: "a1", step: "join", status: .failed),
        ], plan: fresh)
        let tasks = Planner.tasks(inventory: inventory, playbook: book, retryFailed: previous)
        XCTAssertEqual(running(tasks), ["s1/ca", "s2/relay", "a1/join"])
    }

    /// The whole loop: a run fails on one host, the state file records it, the retry reruns only that.
    func testRetryAfterARealRunWithTheStateStore() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent)], path: dir.file("inventory/lab.toml"))
        let book = try Fixtures.playbook(bookText)
        let fleet = FakeFleet()
        fleet.host("s1").setFile(Fixtures.nodeTokenPath, "K10abc::server:0123456789")
        let broken = Locked(true)
        fleet.host("a2").on(.prefix("base")) { _ in broken.withLock { $0 } ? .exit(1, stderr: "apt is locked\n") : .success() }

        let statePath = RunState.path(forInventory: inventory.path)
        let store1 = try StateStore(path: statePath, inventory: inventory.path, playbook: book.path)
        let first = FakeRun.run(book, inventory: inventory, fleet: fleet, state: store1)
        try store1.close()
        XCTAssertEqual(first.status("a2", "base"), .failed)
        XCTAssertEqual(first.status("a2", "join"), .blocked)
        XCTAssertEqual(first.status("a1", "join"), .changed)

        broken.withLock { $0 = false }
        let previous = try XCTUnwrap(try RunState.load(path: statePath))
        let mark = fleet.events.count
        let store2 = try StateStore(path: statePath + ".second", inventory: inventory.path, playbook: book.path)
        let second = FakeRun.run(book, inventory: inventory, fleet: fleet, previous: previous, state: store2)
        try store2.close()

        XCTAssertTrue(second.succeeded)
        for (h, s) in [("s1", "base"), ("a1", "base"), ("a1", "join"), ("s1", "after"), ("a1", "after")] {
            XCTAssertEqual(second.status(h, s), .skipped, "\(h)/\(s)")
        }
        XCTAssertEqual(second.status("a2", "base"), .changed)
        XCTAssertEqual(second.status("a2", "join"), .changed)
        XCTAssertEqual(second.status("s1", "token"), .ok, "fetched again for a2")
        let rerun = fleet.events.dropFirst(mark).filter { $0.kind == .commandStarted || $0.kind == .upload }
        XCTAssertEqual(Set(rerun.map(\.host)), ["s1", "a2"], "a1 was not touched: \(Array(rerun))")
        XCTAssertFalse(rerun.contains { $0.host == "s1" && !$0.text.contains("node-token") }, "\(Array(rerun))")
        XCTAssertEqual(fleet.host("a2").file("/etc/rancher/k3s/token")?.text, "K10abc::server:0123456789")
    }
}
