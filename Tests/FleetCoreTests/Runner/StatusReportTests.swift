import FleetCore
import FleetTestSupport
import Foundation
import XCTest

final class StatusReportTests: XCTestCase {
    func state(_ records: [(String, String, TaskStatus)], inventory: Inventory) throws -> RunState {
        try Fixtures.runState(records.map { Fixtures.StateRecord($0.0, $0.1, $0.2, message: "done") }, inventory: inventory)
    }

    func testARecordOfAStepThatNoLongerTargetsTheHostIsShownButNotCounted() throws {
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent)])
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "base"
            action = "shell"
            command = "true"

            [[steps]]
            name = "server-only"
            action = "shell"
            target = "servers"
            command = "true"

            [[steps]]
            name = "agent-only"
            action = "shell"
            target = "agents"
            command = "true"
            """)
        // s1 was an agent in an earlier inventory: its agent-only record failed then.
        let st = try state([("s1", "base", .ok), ("s1", "server-only", .changed), ("s1", "agent-only", .failed),
                            ("s1", "old-step", .ok), ("a1", "base", .ok), ("a1", "agent-only", .ok)], inventory: inventory)
        let report = StatusReport.make(inventory: inventory, playbook: book, state: st, connector: FakeFleet(), forks: 4,
                                       now: ISO8601DateFormatter().date(from: "2025-03-01T10:01:00Z")!)
        let s1 = try XCTUnwrap(report.hosts.first { $0.host == "s1" })
        XCTAssertEqual(s1.steps.map(\.step), ["base", "server-only", "old-step", "agent-only"])
        XCTAssertEqual(s1.steps.map(\.current), [true, true, true, false])
        XCTAssertEqual(s1.steps.last?.message, "no longer targets this host (role changed?); done")
        XCTAssertTrue(s1.healthy, "a record that no longer applies does not make the host unhealthy")
        XCTAssertTrue(report.healthy)
        XCTAssertTrue(report.text.contains("agent-only       failed      60 s ago  no longer targets this host"), report.text)

        // The same failure on a step that does target the host is unhealthy.
        let bad = try state([("a1", "base", .ok), ("a1", "agent-only", .failed)], inventory: inventory)
        let r2 = StatusReport.make(inventory: inventory, playbook: book, state: bad, connector: FakeFleet(), forks: 4)
        XCTAssertFalse(try XCTUnwrap(r2.hosts.first { $0.host == "a1" }).healthy)
    }

    func testTheProbeRunsThroughTheRunnerAndNamesWhatItTimes() throws {
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent)])
        let fleet = FakeFleet()
        fleet["a1"].reachability = .unreachable("no route to host")
        let report = StatusReport.make(inventory: inventory, playbook: nil, state: nil, connector: fleet, forks: 4)
        XCTAssertEqual(report.hosts.map(\.reachable), [true, false])
        XCTAssertEqual(report.hosts[0].noOpCommandMs, 1.0, "the fake's no-op command takes 1 ms")
        XCTAssertEqual(report.hosts[1].error, "no route to host")
        XCTAssertEqual(fleet["s1"].events.map(\.kind), [.connect, .noOpCommand, .close])
        XCTAssertTrue(report.text.contains("s1 [fd00:10::1] server: reachable, a no-op command took 1.0 ms\n"), report.text)
        XCTAssertTrue(report.text.contains("a1 [fd00:10::2] agent: UNREACHABLE: no route to host\n"), report.text)
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        let json = String(decoding: try e.encode(report), as: UTF8.self)
        XCTAssertTrue(json.contains("\"noop_command_ms\":1"), json)
        XCTAssertFalse(json.contains("rtt"), json)
    }
}
