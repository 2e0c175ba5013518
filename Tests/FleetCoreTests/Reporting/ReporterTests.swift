@testable import FleetCore
import FleetTestSupport
import Foundation
import XCTest

final class ReporterTests: XCTestCase {
    /// A run with changed, ok, failed, blocked and unreachable tasks on four hosts (11 tasks: 1 ok, 5 changed,
    /// 1 failed, 1 blocked, 3 unreachable).
    func mixedRun(reporter: Reporter) throws -> RunSummary {
        let fleet = FakeFleet()
        fleet.host("a1").on(.prefix("configure")) { _ in .exit(4, stdout: "half done\n", stderr: "no space left\n") }
        fleet.host("a2").reachability = .unreachable("no route to host")
        fleet.host("s1").makeDirectory("/opt/ready")
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent), ("a3-long-name", .agent)])
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "prepare"
            action = "shell"
            command = "prepare"
            check = "test -d /opt/ready"

            [[steps]]
            name = "configure"
            action = "shell"
            command = "configure"

            [[steps]]
            name = "start-service"
            action = "shell"
            target = "agents"
            command = "start"
            """)
        return FakeRun.run(book, inventory: inventory, fleet: fleet, reporter: reporter)
    }

    func jsonObjects(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [[String: Any]] {
        XCTAssertTrue(text.hasSuffix("\n"), "every line ends with a newline", file: file, line: line)
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().compactMap { l in
            guard let object = try? JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any] else {
                XCTFail("not a JSON object: \(l)", file: file, line: line)
                return nil
            }
            return object
        }
    }

    // MARK: JSON Lines

    func testJSONLinesEvents() throws {
        let out = OutputSink.memory()
        let summary = try mixedRun(reporter: JSONLinesReporter(out: out))
        let objects = jsonObjects(out.text)
        XCTAssertEqual(objects.count, out.text.split(separator: "\n").count)

        let events = objects.map { $0["event"] as? String ?? "<none>" }
        XCTAssertTrue(Set(events).isSubset(of: ["run_started", "task_started", "task_finished", "run_finished"]), "\(Set(events))")
        XCTAssertEqual(events.first, "run_started")
        XCTAssertEqual(events.last, "run_finished")
        XCTAssertEqual(events.filter { $0 == "run_started" }.count, 1)
        XCTAssertEqual(events.filter { $0 == "run_finished" }.count, 1)

        let started = objects[0]
        XCTAssertEqual(started["run_id"] as? String, summary.runId)
        XCTAssertEqual(started["hosts"] as? [String], ["s1", "a1", "a2", "a3-long-name"])
        XCTAssertEqual(started["steps"] as? [String], ["prepare", "configure", "start-service"])
        XCTAssertEqual(started["tasks"] as? Int, 11)

        let finished = objects.filter { $0["event"] as? String == "task_finished" }
        XCTAssertEqual(finished.count, summary.results.count)
        XCTAssertEqual(finished.count, 11)
        for f in finished {
            for key in ["host", "step", "status", "exit_code", "duration_ms", "message", "stdout_tail", "stderr_tail"] {
                XCTAssertNotNil(f[key], "task_finished without \(key): \(f)")
            }
            XCTAssertTrue(f["exit_code"] is NSNull || f["exit_code"] is Int, "exit_code: \(String(describing: f["exit_code"]))")
            XCTAssertNotNil(f["duration_ms"] as? Int)
            let status = try XCTUnwrap(f["status"] as? String)
            XCTAssertNotNil(TaskStatus(rawValue: status), status)
            let host = try XCTUnwrap(f["host"] as? String), step = try XCTUnwrap(f["step"] as? String)
            let r = try XCTUnwrap(summary.result(host: host, step: step))
            XCTAssertEqual(status, r.status.rawValue)
            XCTAssertEqual(f["message"] as? String, r.message)
            XCTAssertEqual(f["stdout_tail"] as? String, r.stdoutTail)
            XCTAssertEqual(f["stderr_tail"] as? String, r.stderrTail)
            if let code = r.exitCode { XCTAssertEqual(f["exit_code"] as? Int, Int(code)) } else { XCTAssertTrue(f["exit_code"] is NSNull) }
        }
        let failed = try XCTUnwrap(finished.first { $0["host"] as? String == "a1" && $0["step"] as? String == "configure" })
        XCTAssertEqual(failed["status"] as? String, "failed")
        XCTAssertEqual(failed["exit_code"] as? Int, 4)
        XCTAssertEqual(failed["stdout_tail"] as? String, "half done")
        XCTAssertEqual(failed["stderr_tail"] as? String, "no space left")
        let blocked = try XCTUnwrap(finished.first { $0["host"] as? String == "a1" && $0["step"] as? String == "start-service" })
        XCTAssertTrue(blocked["exit_code"] is NSNull, "a task that ran nothing has a null exit code: \(blocked)")

        // A task_started for each task that really started, before its task_finished.
        let startedTasks = objects.enumerated().filter { $0.element["event"] as? String == "task_started" }
        for (i, s) in startedTasks {
            let j = objects.firstIndex { $0["event"] as? String == "task_finished" && $0["host"] as? String == s["host"] as? String
                && $0["step"] as? String == s["step"] as? String }
            XCTAssertNotNil(j)
            XCTAssertLessThan(i, j ?? -1)
            XCTAssertNotNil(s["time"] as? String)
        }

        let end = try XCTUnwrap(objects.last)
        XCTAssertEqual(end["status"] as? String, "failed")
        XCTAssertEqual(end["run_id"] as? String, summary.runId)
        let counts = try XCTUnwrap(end["counts"] as? [String: Int])
        XCTAssertEqual(Set(counts.keys), Set(TaskStatus.allCases.map(\.rawValue)), "a count for every status, zeros included")
        for status in TaskStatus.allCases {
            XCTAssertEqual(counts[status.rawValue], summary.results.filter { $0.status == status }.count, status.rawValue)
        }
        XCTAssertEqual(counts["ok"], 1)
        XCTAssertEqual(counts["changed"], 5)
        XCTAssertEqual(counts["failed"], 1)
        XCTAssertEqual(counts["blocked"], 1)
        XCTAssertEqual(counts["unreachable"], 3)
        XCTAssertEqual(counts["interrupted"], 0)
        XCTAssertEqual(Set(end["failed_hosts"] as? [String] ?? []), ["a1", "a2"])
        XCTAssertNotNil(end["duration_ms"] as? Int)
    }

    func testJSONLinesTaskFinishedForAHandMadeResult() throws {
        let out = OutputSink.memory()
        let reporter = JSONLinesReporter(out: out)
        reporter.taskFinished(TaskResult(host: "s1", step: "x", status: .unreachable, exitCode: nil, durationMs: 7,
                                         stdoutTail: "line \"one\"\nline two", message: "no route / to host"))
        let object = try XCTUnwrap(jsonObjects(out.text).first)
        XCTAssertEqual(out.text.split(separator: "\n").count, 1, "one event, one line: newlines inside are escaped")
        XCTAssertEqual(object["event"] as? String, "task_finished")
        XCTAssertEqual(object["status"] as? String, "unreachable")
        XCTAssertTrue(object["exit_code"] is NSNull, "\(object)")
        XCTAssertEqual(object["duration_ms"] as? Int, 7)
        XCTAssertEqual(object["stdout_tail"] as? String, "line \"one\"\nline two")
        XCTAssertEqual(object["stderr_tail"] as? String, "")
        XCTAssertEqual(object["message"] as? String, "no route / to host")
    }

    func testWaitingIsAnEventLineAndAPlainLine() throws {
        let out = OutputSink.memory()
        JSONLinesReporter(out: out).taskWaiting(host: "s3", step: "server-join", reason: "its turn (serial = 1, in inventory order)")
        let object = try XCTUnwrap(jsonObjects(out.text).first)
        XCTAssertEqual(object["event"] as? String, "task_waiting")
        XCTAssertEqual(object["host"] as? String, "s3")
        XCTAssertEqual(object["step"] as? String, "server-join")
        XCTAssertEqual(object["reason"] as? String, "its turn (serial = 1, in inventory order)")
        XCTAssertNotNil(object["time"] as? String)
        let plain = OutputSink.memory()
        PlainReporter(out: plain).taskWaiting(host: "a1", step: "agent-join", reason: "token")
        XCTAssertEqual(plain.text, "a1 agent-join: waiting for token\n")
    }

    func testRunFinishedStatusWhenAllSucceedAndWhenInterrupted() throws {
        for (interrupted, results, expected) in [
            (false, [TaskResult(host: "s1", step: "a", status: .ok)], "ok"),
            (true, [TaskResult(host: "s1", step: "a", status: .interrupted)], "interrupted"),
        ] {
            let out = OutputSink.memory()
            JSONLinesReporter(out: out).runFinished(RunSummary(runId: "r", results: results, hosts: ["s1"], steps: ["a"],
                                                               duration: 0.5, interrupted: interrupted))
            let end = try XCTUnwrap(jsonObjects(out.text).first)
            XCTAssertEqual(end["status"] as? String, expected)
            XCTAssertEqual(end["duration_ms"] as? Int, 500)
            XCTAssertEqual((end["counts"] as? [String: Int])?.count, TaskStatus.allCases.count)
        }
    }

    // MARK: Text

    func testSummaryShowsEveryHostAndStep() throws {
        let summary = try mixedRun(reporter: RecordingReporter())
        let text = Style.summary(summary, color: false)
        XCTAssertFalse(text.contains("\u{1B}["), "no colour codes when colour is off")
        let lines = text.split(separator: "\n").map(String.init)
        let header = try XCTUnwrap(lines.first)
        XCTAssertEqual(header.split(separator: " ").map(String.init), ["host", "prepare", "configure", "start-service"])
        let expected: [String: [String]] = [
            "s1": ["ok", "ch", "-"],
            "a1": ["ch", "FAIL", "blk"],
            "a2": ["UNRE", "UNRE", "UNRE"],
            "a3-long-name": ["ch", "ch", "ch"],
        ]
        for host in summary.hosts {
            let row = try XCTUnwrap(lines.first { $0.split(separator: " ").first.map(String.init) == host }, "no row for \(host)")
            XCTAssertEqual(row.split(separator: " ").dropFirst().map(String.init), expected[host], row)
        }
        // Columns line up: each cell starts where its step's header does.
        let configureColumn = try XCTUnwrap(header.range(of: "configure")).lowerBound.utf16Offset(in: header)
        for host in summary.hosts {
            let row = lines.first { $0.hasPrefix(host + " ") }!
            let cell = row[row.index(row.startIndex, offsetBy: configureColumn)...].prefix { $0 != " " }
            XCTAssertEqual(String(cell), expected[host]![1], "\(host): \(row)")
        }
        let verdict = try XCTUnwrap(lines.last)
        XCTAssertTrue(verdict.hasPrefix("FAILED in "), verdict)
        for part in ["1 ok", "5 changed", "1 failed", "3 unreachable", "1 blocked"] {
            XCTAssertTrue(verdict.contains(part), "\(part) missing from \(verdict)")
        }
        XCTAssertFalse(verdict.contains("interrupted"), verdict)
    }

    func testSummaryVerdicts() {
        let ok = RunSummary(runId: "r", results: [TaskResult(host: "s1", step: "a", status: .changed)], hosts: ["s1"], steps: ["a"],
                            duration: 2, interrupted: false)
        XCTAssertTrue(Style.summary(ok, color: false).contains("\nOK in 2.0 s: 1 changed\n"))
        let stopped = RunSummary(runId: "r", results: [TaskResult(host: "s1", step: "a", status: .interrupted)], hosts: ["s1"],
                                 steps: ["a"], duration: 2, interrupted: true)
        XCTAssertTrue(Style.summary(stopped, color: false).contains("INTERRUPTED in 2.0 s: 1 interrupted"))
        XCTAssertTrue(Style.summary(ok, color: true).contains("\u{1B}[32m"), "green when colour is on")
    }

    func testFailuresListOutputTails() throws {
        let summary = try mixedRun(reporter: RecordingReporter())
        let text = Style.failures(summary, color: false)
        XCTAssertTrue(text.contains("FAILED a1 configure: command failed: exit 4: no space left\n"), text)
        XCTAssertTrue(text.contains("    stderr| no space left\n"), text)
        XCTAssertTrue(text.contains("    stdout| half done\n"), text)
        XCTAssertTrue(text.contains("UNREACHABLE a2 prepare: no route to host"), text)
        XCTAssertFalse(text.contains("blocked"), "blocked tasks are not failures of their own")
    }

    func testPlainReporterWritesOneLinePerTaskAndTheSummary() throws {
        let out = OutputSink.memory()
        let summary = try mixedRun(reporter: PlainReporter(out: out))
        let lines = out.text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "run \(summary.runId): 11 task(s) on 4 host(s)")
        let taskLines = lines.filter { l in TaskStatus.allCases.contains { l.hasPrefix($0.rawValue + " ") } }
        XCTAssertEqual(taskLines.count, 11)
        let failedPrefix = "failed".padding(toLength: 11, withPad: " ", startingAt: 0) + " a1 configure ("
        XCTAssertTrue(taskLines.contains { $0.hasPrefix(failedPrefix) && $0.hasSuffix(" ms): command failed: exit 4: no space left") },
                      "\(taskLines)")
        XCTAssertTrue(out.text.hasSuffix(Style.summary(summary, color: false)))
    }

    func testTerminalReporterEndsWithFailuresAndSummary() throws {
        let out = OutputSink.memory()
        let summary = try mixedRun(reporter: TerminalReporter(out: out))
        XCTAssertTrue(out.text.hasPrefix("run \(summary.runId): 11 task(s) on 4 host(s)\n"))
        XCTAssertTrue(out.text.hasSuffix(Style.failures(summary, color: true) + Style.summary(summary, color: true)))
        for host in summary.hosts { XCTAssertTrue(out.text.contains(host)) }
    }
}
