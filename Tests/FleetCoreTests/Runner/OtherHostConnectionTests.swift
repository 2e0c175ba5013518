import FleetCore
import FleetTestSupport
import Foundation
import XCTest

/// `TaskContext.connection(to:)`: a task reaching another host goes through the run's connector,
/// shares one connection per host for the run, and connects again after that connection dropped.
final class OtherHostConnectionTests: XCTestCase {
    let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent), ("a3", .agent)])

    /// Runs `command` on `through` from each target host's task.
    struct Through: Action {
        var through: String
        var command: String
        func inputs(host: FleetCore.Host, inventory: Inventory) -> [String] { [through, command] }
        func describe(_ vars: TemplateVariables) -> [String] { ["\(command) on \(through)"] }
        func run(_ ctx: TaskContext) throws -> ActionOutcome {
            let server = ctx.inventory.host(named: through)!
            let r = try ctx.connection(to: server).run(command + " " + ctx.host.name, stdin: nil, timeout: nil)
            guard r.succeeded else { throw TaskFailure("\(through): \(r.failureText)") }
            return .changed("done through \(through)")
        }
    }

    func run(_ fleet: FakeFleet, steps: [Step], forks: Int = 10) -> RunSummary {
        Self.run(inventory, fleet, steps: steps, forks: forks)
    }

    static func run(_ inventory: Inventory, _ fleet: FakeFleet, steps: [Step], forks: Int = 10) -> RunSummary {
        PlaybookRun.runReadOnly(inventory: inventory, playbook: Playbook(name: "t", path: "t", steps: steps),
                                forks: forks, command: "test", connector: fleet,
                                reporter: JSONLinesReporter(out: OutputSink.memory()))
    }

    func step(_ name: String, _ target: Target, through: String = "s1", command: String = "delete") -> Step {
        Step(name: name, target: target, actionName: "through", action: Through(through: through, command: command))
    }

    func testOneConnectionPerHostForTheWholeRunClosedAtTheEnd() {
        let fleet = FakeFleet()
        let summary = run(fleet, steps: [step("first", .agents), step("second", .agents, command: "again")])
        XCTAssertTrue(summary.succeeded, summary.results.map(\.message).joined(separator: "\n"))
        let s1 = fleet["s1"]
        XCTAssertEqual(s1.connectCount, 1, "six tasks on three hosts share the run's one connection to s1")
        XCTAssertEqual(Set(s1.commands), ["delete a1", "delete a2", "delete a3", "again a1", "again a2", "again a3"])
        XCTAssertEqual(s1.events.last?.kind, .close, "closed when the run ends")
        // The tasks' own hosts still have their own connections.
        for a in ["a1", "a2", "a3"] { XCTAssertEqual(fleet[a].connectCount, 1) }
    }

    func testOneCommandAtATimeOnTheSharedConnection() {
        let fleet = FakeFleet()
        let gate = fleet.makeGate()
        fleet["s1"].on(.prefix("delete")) { cmd in
            if cmd.text == "delete a1" { try cmd.wait(for: gate) }
            return .success()
        }
        let done = Locked<RunSummary?>(nil)
        let finished = DispatchSemaphore(value: 0)
        let inv = inventory, steps = [step("del", .agents)]
        Thread {
            done.withLock { $0 = Self.run(inv, fleet, steps: steps) }
            finished.signal()
        }.start()
        XCTAssertTrue(fleet.waitUntil { $0.contains { $0.kind == .commandStarted && $0.text == "delete a1" } })
        // a2 and a3 have connected and wait for the shared connection, which a1's command holds.
        XCTAssertTrue(fleet.waitUntil { ev in ["a2", "a3"].allSatisfy { h in ev.contains { $0.host == h && $0.kind == .connect } } })
        XCTAssertEqual(fleet["s1"].commands.last, "delete a1", "no command starts on s1 while delete a1 runs")
        gate.open()
        XCTAssertEqual(finished.wait(timeout: .now() + 30), .success)
        let summary = done.withLock { $0 }!
        XCTAssertTrue(summary.succeeded)
        let s1 = fleet["s1"].events.filter { $0.kind == .commandStarted || $0.kind == .commandFinished }
        for pair in stride(from: 0, to: s1.count, by: 2) {
            XCTAssertEqual(s1[pair].kind, .commandStarted)
            XCTAssertEqual(s1[pair + 1].kind, .commandFinished, "each command finishes before the next starts")
            XCTAssertEqual(s1[pair].text, s1[pair + 1].text)
        }
    }

    func testADroppedConnectionIsOpenedAgainForTheNextCommand() {
        let fleet = FakeFleet()
        let drops = Locked(1)
        fleet["s1"].on(.prefix("delete")) { cmd in
            if drops.withLock({ n in defer { n -= 1 }; return n > 0 }) {
                throw ConnectionError("connection reset by peer", unreachable: true)
            }
            return .success()
        }
        // One host at a time, so the drop hits the first and the others see the reconnect.
        let summary = run(fleet, steps: [step("del", .agents)], forks: 1)
        XCTAssertEqual(fleet["s1"].connectCount, 2, "connected again after the drop")
        let failed = summary.results.filter { $0.status == .failed }
        XCTAssertEqual(failed.count, 1, summary.results.map { "\($0.host) \($0.status) \($0.message)" }.joined(separator: "\n"))
        XCTAssertEqual(failed.first?.message, "s1: connection reset by peer",
                       "the task through s1 fails (its own host is reachable) naming s1; the command is not repeated")
        XCTAssertEqual(summary.results.filter { $0.status == .changed }.count, 2)
        XCTAssertEqual(fleet["s1"].commands.count, 3)
    }

    func testAnUnreachableOtherHostFailsTheTaskNotItsHost() {
        let fleet = FakeFleet()
        fleet["s1"].reachability = .unreachable("no route to host")
        let summary = run(fleet, steps: [step("del", .hosts(["a1"])), step("after", .hosts(["a1"]), through: "a2")])
        let del = summary.result(host: "a1", step: "del")
        XCTAssertEqual(del?.status, .failed)
        XCTAssertEqual(del?.message, "cannot connect to s1: no route to host")
        XCTAssertEqual(summary.result(host: "a1", step: "after")?.status, .blocked, "the host's next step does not run")
    }

    func testItsOwnHostGivesTheTasksOwnConnection() {
        let fleet = FakeFleet()
        let summary = run(fleet, steps: [step("self", .hosts(["s1"]))])
        XCTAssertTrue(summary.succeeded)
        XCTAssertEqual(fleet["s1"].connectCount, 1)
        XCTAssertEqual(fleet["s1"].commands, ["delete s1"])
    }

    func testInterruptClosesTheSharedConnections() {
        let fleet = FakeFleet()
        let gate = fleet.makeGate()
        fleet["s1"].on(.prefix("delete")) { cmd in try cmd.wait(for: gate); return .success() }
        let runner = Locked<Runner?>(nil)
        let done = Locked<RunSummary?>(nil)
        let finished = DispatchSemaphore(value: 0)
        let inv = inventory, steps = [step("del", .hosts(["a1"]))]
        Thread {
            let s = PlaybookRun.runReadOnly(inventory: inv, playbook: Playbook(name: "t", path: "t", steps: steps),
                                            command: "test", connector: fleet, reporter: JSONLinesReporter(out: OutputSink.memory()),
                                            onRunner: { r in runner.withLock { $0 = r } })
            done.withLock { $0 = s }
            finished.signal()
        }.start()
        XCTAssertTrue(fleet.waitUntil { $0.contains { $0.kind == .commandStarted && $0.text == "delete a1" } })
        runner.withLock { $0 }!.interrupt()
        XCTAssertEqual(finished.wait(timeout: .now() + 30), .success, "the command blocked on s1 ends when the run is interrupted")
        XCTAssertFalse(gate.isOpen)
        let summary = done.withLock { $0 }!
        XCTAssertTrue(summary.interrupted)
        XCTAssertEqual(summary.result(host: "a1", step: "del")?.status, .interrupted)
    }
}
