import FleetCore
import FleetTestSupport
import Foundation
import XCTest

/// `serial = N` (at most N hosts in a step, in inventory order, stopping at the first failure) and
/// `after = [steps]` (wait until those steps ended everywhere; blocked when one failed).
final class SerialAndAfterTests: XCTestCase {
    func describe(_ s: RunSummary) -> String {
        s.results.map { "\($0.host)/\($0.step)=\($0.status.rawValue) \($0.message)" }.joined(separator: "\n")
    }

    func seq(_ events: [FakeEvent], _ kind: FakeEvent.Kind, host: String, _ text: String) -> Int? {
        events.first { $0.host == host && $0.kind == kind && $0.text == text }?.seq
    }

    static let serialBook = """
        [[steps]]
        name = "prep"
        action = "shell"
        command = "prep {{ host.name }}"

        [[steps]]
        name = "join"
        action = "shell"
        command = "join {{ host.name }}"
        serial = 1

        [[steps]]
        name = "done"
        action = "shell"
        command = "done {{ host.name }}"
        """

    func testSerialOneRunsHostsOneAtATimeInInventoryOrder() throws {
        let fleet = FakeFleet()
        let gate = fleet.makeGate()
        // The first host is slow to get there: the others must wait for it, not overtake it.
        fleet.host("h1").on(.prefix("prep")) { cmd in
            try cmd.wait(for: gate)
            return .success()
        }
        let names = ["h1", "h2", "h3", "h4"]
        let inventory = Fixtures.inventory(names.map { ($0, $0 == "h1" ? .server : .agent) })
        let reporter = RecordingReporter(clock: fleet.clock)
        let run = FakeRun.start(try Fixtures.playbook(Self.serialBook), inventory: inventory, fleet: fleet, reporter: reporter)

        let othersPrepared = fleet.waitUntil(limit: 20) { events in
            ["h2", "h3", "h4"].allSatisfy { h in events.contains { $0.host == h && $0.kind == .commandFinished && $0.text == "prep \(h)" } }
        }
        let joinedEarly = fleet.waitUntil(limit: 1) { $0.contains { $0.kind == .commandStarted && $0.text.hasPrefix("join") } }
        gate.open()
        let summary = try XCTUnwrap(run.wait(), "the run did not end")

        XCTAssertTrue(othersPrepared)
        XCTAssertFalse(joinedEarly, "a host joined before h1, which comes first in the inventory")
        XCTAssertTrue(summary.succeeded, describe(summary))
        // The hosts held back said why, once each; h1 never waited.
        let waits = reporter.waits
        XCTAssertEqual(Set(waits), Set(["h2", "h3", "h4"].map { "\($0)/join: its turn (serial = 1, in inventory order)" }), "\(waits)")
        XCTAssertEqual(waits.count, 3)
        let events = fleet.events
        for (a, b) in zip(names, names.dropFirst()) {
            let end = try XCTUnwrap(seq(events, .commandFinished, host: a, "join \(a)"))
            let start = try XCTUnwrap(seq(events, .commandStarted, host: b, "join \(b)"))
            XCTAssertLessThan(end, start, "\(b) started joining before \(a) finished")
        }
    }

    func testSerialStopsTheHostsAfterTheFirstFailure() throws {
        let fleet = FakeFleet()
        fleet.host("h2").on(.prefix("join")) { _ in .exit(1, stderr: "etcd member add failed\n") }
        let inventory = Fixtures.inventory(["h1", "h2", "h3", "h4"].map { ($0, $0 == "h1" ? .server : .agent) })
        let summary = FakeRun.run(try Fixtures.playbook(Self.serialBook), inventory: inventory, fleet: fleet)

        XCTAssertEqual(summary.status("h1", "join"), .changed)
        XCTAssertEqual(summary.status("h2", "join"), .failed)
        for h in ["h3", "h4"] {
            let r = try XCTUnwrap(summary.result(host: h, step: "join"))
            XCTAssertEqual(r.status, .blocked, describe(summary))
            XCTAssertEqual(r.message, "not run: join ended failed on h2, and a step with serial = 1 stops at the first failure")
            XCTAssertEqual(summary.status(h, "done"), .blocked)
            XCTAssertEqual(fleet.host(h).commands, ["prep \(h)"], "\(h) ran past the stopped step")
        }
    }

    func testAHostThatNeverReachedASerialStepDoesNotStopTheOthers() throws {
        let fleet = FakeFleet()
        fleet.host("h2").on(.prefix("prep")) { _ in .exit(2) }
        let inventory = Fixtures.inventory(["h1", "h2", "h3"].map { ($0, $0 == "h1" ? .server : .agent) })
        let summary = FakeRun.run(try Fixtures.playbook(Self.serialBook), inventory: inventory, fleet: fleet)

        XCTAssertEqual(summary.status("h2", "join"), .blocked)
        XCTAssertEqual(summary.status("h3", "join"), .changed, describe(summary))
        XCTAssertEqual(summary.status("h3", "done"), .changed)
    }

    /// Calls `onWait` for each waiting report; ignores the rest.
    final class WaitWatcher: Reporter, @unchecked Sendable {
        let onWait: @Sendable (String, String) -> Void
        init(_ onWait: @escaping @Sendable (String, String) -> Void) { self.onWait = onWait }
        func runStarted(_ info: RunInfo) {}
        func taskStarted(host: String, step: String) {}
        func taskFinished(_ result: TaskResult) {}
        func runFinished(_ summary: RunSummary) {}
        func taskWaiting(host: String, step: String, reason: String) { onWait(host, step) }
    }

    func testSerialTwoKeepsTwoHostsBusyAndNeverThree() throws {
        let fleet = FakeFleet()
        let gate = fleet.makeGate()
        // h1 reaches the step only after h2 waits for its turn: h1 starting must wake h2.
        let h2Waiting = fleet.makeGate()
        fleet.host("h1").on(.prefix("prep")) { cmd in
            try cmd.wait(for: h2Waiting)
            return .success()
        }
        let watcher = WaitWatcher { host, step in if host == "h2" && step == "join" { h2Waiting.open() } }
        let names = (1...5).map { "h\($0)" }
        let active = Locked((now: 0, peak: 0))
        for n in names {
            fleet.host(n).on(.prefix("join")) { cmd in
                active.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) }
                defer { active.withLock { $0.now -= 1 } }
                try cmd.wait(for: gate)
                return .success()
            }
        }
        let inventory = Fixtures.inventory(names.map { ($0, $0 == "h1" ? .server : .agent) })
        let book = try Fixtures.playbook(Self.serialBook.replacingOccurrences(of: "serial = 1", with: "serial = 2"))
        let run = FakeRun.start(book, inventory: inventory, fleet: fleet, reporter: watcher)
        let twoJoining = fleet.waitUntil(limit: 20) { $0.filter { $0.kind == .commandStarted && $0.text.hasPrefix("join") }.count >= 2 }
        let third = fleet.waitUntil(limit: 1) { $0.filter { $0.kind == .commandStarted && $0.text.hasPrefix("join") }.count > 2 }
        let joiners = fleet.events.filter { $0.kind == .commandStarted && $0.text.hasPrefix("join") }.map(\.host)
        gate.open()
        let summary = try XCTUnwrap(run.wait())
        XCTAssertTrue(twoJoining)
        XCTAssertFalse(third, "a third host joined while serial = 2 were busy")
        // Both may start at once, so their commands can come in either order.
        XCTAssertEqual(Set(joiners), ["h1", "h2"], "the first two in inventory order go first")
        XCTAssertTrue(summary.succeeded, describe(summary))
        XCTAssertEqual(active.withLock { $0.peak }, 2)
    }

    func testSerialWithNeedsAndOneForkFinishes() throws {
        let fleet = FakeFleet()
        let tokenPath = Fixtures.nodeTokenPath
        fleet.host("s2").setFile(tokenPath, "K10aa::server:bb")
        // The joiners come first in the inventory, so they are likely to take the only slot first.
        let inventory = Fixtures.inventory([("s2", .server), ("s3", .server), ("a1", .agent), ("s1", .server)])
        let book = try Fixtures.playbook("""
            \(Fixtures.fetchTokenStep)

            [[steps]]
            name = "join"
            action = "upload"
            target = "other-servers"
            needs = ["token"]
            secret = "token"
            dest = "/etc/rancher/k3s/fleet-token"
            serial = 1
            """)
        let run = FakeRun.start(book, inventory: inventory, fleet: fleet, forks: 1)
        let summary = try XCTUnwrap(run.wait(limit: 30), "deadlock: serial with forks = 1 did not finish")
        XCTAssertTrue(summary.succeeded, describe(summary))
        // The first server is s2 (first in file order); the others join it.
        XCTAssertEqual(Set(summary.results.filter { $0.step == "join" }.map(\.host)), ["s3", "s1"])
    }

    // MARK: after

    static let afterBook = """
        [[steps]]
        name = "join"
        action = "shell"
        target = "agents"
        command = "join {{ host.name }}"

        [[steps]]
        name = "verify"
        action = "shell"
        target = "first-server"
        command = "verify"
        after = ["join"]
        """

    func testAfterWaitsUntilTheStepEndedOnEveryHost() throws {
        let fleet = FakeFleet()
        let gate = fleet.makeGate()
        fleet.host("a2").on(.prefix("join")) { cmd in
            try cmd.wait(for: gate)
            return .success()
        }
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent)])
        let reporter = RecordingReporter(clock: fleet.clock)
        let run = FakeRun.start(try Fixtures.playbook(Self.afterBook), inventory: inventory, fleet: fleet, reporter: reporter)
        let a1Joined = fleet.waitUntil(limit: 20) { $0.contains { $0.kind == .commandFinished && $0.text == "join a1" } }
        let verifiedEarly = fleet.waitUntil(limit: 1) { $0.contains { $0.kind == .commandStarted && $0.text == "verify" } }
        gate.open()
        let summary = try XCTUnwrap(run.wait())
        XCTAssertTrue(a1Joined)
        XCTAssertFalse(verifiedEarly, "verify started while a2 was still joining")
        XCTAssertEqual(reporter.waits, ["s1/verify: join to end on every host"])
        XCTAssertTrue(summary.succeeded, describe(summary))
        let events = fleet.events
        XCTAssertLessThan(try XCTUnwrap(seq(events, .commandFinished, host: "a2", "join a2")),
                          try XCTUnwrap(seq(events, .commandStarted, host: "s1", "verify")))
    }

    func testAfterAFailedStepIsBlockedNamingIt() throws {
        let fleet = FakeFleet()
        fleet.host("a2").on(.prefix("join")) { _ in .exit(1, stderr: "401 Unauthorized\n") }
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent)])
        let summary = FakeRun.run(try Fixtures.playbook(Self.afterBook), inventory: inventory, fleet: fleet)
        let r = try XCTUnwrap(summary.result(host: "s1", step: "verify"))
        XCTAssertEqual(r.status, .blocked)
        XCTAssertEqual(r.message, "blocked: runs after \"join\", which ended failed on a2")
        XCTAssertFalse(fleet.host("s1").commands.contains("verify"))
    }

    func testRetryFailedRerunsAStepThatRunsAfterARetriedOne() throws {
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent)])
        let book = try Fixtures.playbook(Self.afterBook)
        let first = Planner.tasks(inventory: inventory, playbook: book)
        let state = try Fixtures.runState(first.map { t in
            let failed = t.host.name == "a2" && t.step.name == "join"
            return Fixtures.StateRecord(t.host.name, t.step.name, failed ? .failed : .changed, digest: t.digest)
        }, inventory: inventory)
        let retry = Planner.tasks(inventory: inventory, playbook: book, retryFailed: state)
        let running = retry.filter { $0.skipReason == nil }.map { "\($0.host.name)/\($0.step.name)" }
        XCTAssertEqual(running, ["a2/join", "s1/verify"])
    }

    // MARK: parsing

    func testSerialAndAfterAreChecked() throws {
        let cases: [(String, String)] = [
            ("serial = 0", "key \"serial\": expected a whole number ≥ 1"),
            ("serial = \"one\"", "key \"serial\": expected a whole number ≥ 1"),
            ("after = [\"jion\"]", "key \"after\": \"jion\" is not an earlier step (did you mean \"join\"?)"),
            ("after = \"join\"", "key \"after\": expected an array of step names"),
        ]
        for (line, expected) in cases {
            let text = """
                [[steps]]
                name = "join"
                action = "shell"
                command = "join"

                [[steps]]
                name = "verify"
                action = "shell"
                command = "verify"
                \(line)
                """
            XCTAssertThrowsError(try Fixtures.playbook(text), line) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(line): \(error)")
            }
        }
        let ok = try Fixtures.playbook(Self.afterBook.replacingOccurrences(of: "after = [\"join\"]", with: "after = [\"join\"]\nserial = 3"))
        XCTAssertEqual(ok.step(named: "verify")?.serial, 3)
        XCTAssertEqual(ok.step(named: "verify")?.after, ["join"])
    }
}
