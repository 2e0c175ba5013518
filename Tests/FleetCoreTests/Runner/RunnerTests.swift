import FleetCore
import FleetTestSupport
import Foundation
import XCTest

final class RunnerTests: XCTestCase {
    let tokenPath = Fixtures.nodeTokenPath
    let token = "K10feedface00112233::server:0a1b2c3d4e5f60718293"

    func describe(_ s: RunSummary) -> String {
        s.results.map { "\($0.host)/\($0.step)=\($0.status.rawValue) \($0.message)" }.joined(separator: "\n")
    }

    func startSeq(_ events: [FakeEvent], host: String, containing text: String) -> Int? {
        events.first { $0.host == host && $0.kind == .commandStarted && $0.text.contains(text) }?.seq
    }

    func finishSeq(_ events: [FakeEvent], host: String, containing text: String) -> Int? {
        events.first { $0.host == host && $0.kind == .commandFinished && $0.text.contains(text) }?.seq
    }

    // MARK: Order on one host

    func testStepsRunInPlaybookOrderOnEveryHostOverOneConnection() throws {
        let fleet = FakeFleet()
        let reporter = RecordingReporter(clock: fleet.clock)
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent)])
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "first"
            action = "shell"
            command = "step-first {{ host.name }}"

            [[steps]]
            name = "second"
            action = "shell"
            command = "step-second {{ host.name }}"
            target = "agents"

            [[steps]]
            name = "third"
            action = "shell"
            command = "step-third {{ host.name }}"
            """)
        let summary = FakeRun.run(book, inventory: inventory, fleet: fleet, reporter: reporter)

        XCTAssertTrue(summary.succeeded, describe(summary))
        XCTAssertEqual(summary.hosts, ["s1", "a1", "a2"])
        XCTAssertEqual(summary.steps, ["first", "second", "third"])
        XCTAssertEqual(summary.results.count, 8)
        XCTAssertEqual(fleet.host("s1").commands, ["step-first s1", "step-third s1"])
        XCTAssertEqual(fleet.host("a1").commands, ["step-first a1", "step-second a1", "step-third a1"])
        XCTAssertEqual(fleet.host("a2").commands, ["step-first a2", "step-second a2", "step-third a2"])
        for h in ["s1", "a1", "a2"] {
            XCTAssertEqual(fleet.host(h).connectCount, 1, "one connection per host")
            XCTAssertEqual(fleet.host(h).events.last?.kind, .close, "connection closed at the end")
            // Each task is reported started, then finished, before the next one on the host starts.
            let steps = h == "s1" ? ["first", "third"] : ["first", "second", "third"]
            var last = 0
            for step in steps {
                let s = try XCTUnwrap(reporter.startSeq(host: h, step: step), "\(h)/\(step) started")
                let f = try XCTUnwrap(reporter.finishSeq(host: h, step: step), "\(h)/\(step) finished")
                XCTAssertLessThan(last, s)
                XCTAssertLessThan(s, f)
                last = f
            }
        }
        XCTAssertEqual(reporter.runFinishedCount, 1)
        XCTAssertEqual(summary.results.map(\.status).filter { $0 != .changed }, [])
    }

    func testShellCheckSkipsTheCommandAndChangesFalseReportsOK() throws {
        let fleet = FakeFleet()
        fleet.host("s1").makeDirectory("/etc/rancher/k3s")
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "dir"
            action = "shell"
            command = "mkdir -p /etc/rancher/k3s"
            check = "test -d /etc/rancher/k3s"

            [[steps]]
            name = "fact"
            action = "shell"
            command = "uname -r"
            changes = false
            """)
        fleet.host("s1").on(contains: "uname", stdout: "6.8.0\n")
        fleet.host("a1").on(contains: "uname", stdout: "6.1.0\n")
        let summary = FakeRun.run(book, inventory: Fixtures.inventory([("s1", .server), ("a1", .agent)]), fleet: fleet)
        XCTAssertEqual(summary.result(host: "s1", step: "dir")?.status, .ok)
        XCTAssertEqual(summary.result(host: "s1", step: "dir")?.message, "check passed: nothing to do")
        XCTAssertEqual(fleet.host("s1").commands, ["test -d /etc/rancher/k3s", "uname -r"])
        XCTAssertEqual(summary.result(host: "a1", step: "dir")?.status, .changed)
        XCTAssertEqual(fleet.host("a1").commands, ["test -d /etc/rancher/k3s", "mkdir -p /etc/rancher/k3s", "uname -r"])
        XCTAssertTrue(fleet.host("a1").isDirectory("/etc/rancher/k3s"))
        XCTAssertEqual(summary.result(host: "a1", step: "fact")?.status, .ok)
        XCTAssertEqual(summary.result(host: "a1", step: "fact")?.message, "6.1.0")
        XCTAssertEqual(summary.result(host: "s1", step: "fact")?.stdoutTail, "6.8.0")
    }

    // MARK: needs

    /// s1 produces the token (blocked until the test lets it go); a1 needs it; a2 needs nothing.
    /// a2 must finish while s1 is still held; a1's consumer must start only after the producer ended.
    func testConsumersWaitForTheProducerAndOtherHostsDoNot() throws {
        let fleet = FakeFleet()
        let reporter = RecordingReporter(clock: fleet.clock)
        let gate = fleet.makeGate()
        let s1 = fleet.host("s1")
        s1.setFile(tokenPath, token + "\n")
        s1.on(.contains("node-token")) { cmd in
            try cmd.wait(for: gate)
            return cmd.runDefault()
        }
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent)])
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "prep"
            action = "shell"
            command = "prep-work"

            \(Fixtures.fetchTokenStep)

            \(Fixtures.tokenUploadStep(name: "join", target: #"["a1"]"#))

            [[steps]]
            name = "independent"
            action = "shell"
            command = "independent-work {{ host.name }}"
            """)
        let run = FakeRun.start(book, inventory: inventory, fleet: fleet, reporter: reporter)

        let a2Done = fleet.waitUntil(limit: 20) { events in
            events.contains { $0.host == "a2" && $0.kind == .commandFinished && $0.text.hasPrefix("independent-work") }
        }
        let producerHeld = fleet.waitUntil(limit: 20) { events in
            events.contains { $0.host == "s1" && $0.kind == .commandStarted && $0.text.contains("node-token") }
                && events.contains { $0.host == "a1" && $0.kind == .commandFinished && $0.text == "prep-work" }
        }
        let heldEvents = fleet.events
        let a1WhileHeld = heldEvents.filter { $0.host == "a1" && ($0.kind == .commandStarted || $0.kind == .upload) }
        let joinStartedWhileHeld = reporter.startSeq(host: "a1", step: "join")
        gate.open()
        let summary = try XCTUnwrap(run.wait(), "the run did not end")

        XCTAssertTrue(a2Done, "a2 did not finish its independent step while s1 was producing: a barrier between steps?")
        XCTAssertTrue(producerHeld)
        XCTAssertEqual(a1WhileHeld.map(\.text), ["prep-work"], "a1 ran past its wait before the value existed")
        XCTAssertNil(joinStartedWhileHeld, "join was reported started before the token existed")
        XCTAssertTrue(summary.succeeded, describe(summary))

        let events = fleet.events
        let producerEnd = try XCTUnwrap(finishSeq(events, host: "s1", containing: "node-token"))
        let consumerFirst = try XCTUnwrap(events.first { $0.host == "a1" && ($0.kind == .commandStarted || $0.kind == .upload)
            && $0.text != "prep-work" }?.seq)
        XCTAssertGreaterThan(consumerFirst, producerEnd)
        let joinStart = try XCTUnwrap(reporter.startSeq(host: "a1", step: "join"))
        let tokenEnd = try XCTUnwrap(reporter.finishSeq(host: "s1", step: "token"))
        XCTAssertGreaterThan(joinStart, tokenEnd)
        let a2Independent = try XCTUnwrap(finishSeq(events, host: "a2", containing: "independent-work"))
        XCTAssertLessThan(a2Independent, producerEnd)
        XCTAssertEqual(fleet.host("a1").file("/etc/rancher/k3s/token")?.data, Data(token.utf8))
        XCTAssertNil(summary.result(host: "a2", step: "join"), "a2 is not a target of join")
        XCTAssertEqual(reporter.waits, ["a1/join: token"], "a1 said what it waited for, once")
    }

    func testForksOneCompletesAPlanWithNeeds() throws {
        let fleet = FakeFleet()
        fleet.host("s1").setFile(tokenPath, token)
        // The consumers come first in the inventory, so they are likely to take the only slot first.
        let inventory = Fixtures.inventory([("a1", .agent), ("a2", .agent), ("s1", .server)])
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "prep"
            action = "shell"
            command = "prep-work"

            \(Fixtures.fetchTokenStep)

            [[steps]]
            name = "join"
            action = "upload"
            target = "agents"
            needs = ["token"]
            secret = "token"
            dest = "/etc/rancher/k3s/token"

            [[steps]]
            name = "after"
            action = "shell"
            command = "after-work"
            """)
        let run = FakeRun.start(book, inventory: inventory, fleet: fleet, forks: 1)
        let summary = try XCTUnwrap(run.wait(limit: 30), "deadlock: forks = 1 with needs did not finish")
        XCTAssertTrue(summary.succeeded, describe(summary))
        XCTAssertEqual(summary.results.count, 9)

        // With one fork, no two hosts ever run a command at the same time.
        var running: [String: Int] = [:]
        for e in fleet.events {
            if e.kind == .commandStarted {
                running[e.host, default: 0] += 1
                XCTAssertEqual(running.values.filter { $0 > 0 }.count, 1, "two hosts ran at once with forks = 1: \(e)")
            } else if e.kind == .commandFinished {
                running[e.host, default: 0] -= 1
            }
        }
    }

    func testForksBoundsHowManyHostsWorkAtOnce() throws {
        let fleet = FakeFleet()
        let gate = fleet.makeGate()
        let names = (1...5).map { "h\($0)" }
        let inventory = Fixtures.inventory(names.map { ($0, $0 == "h1" ? .server : .agent) })
        let active = Locked((now: 0, peak: 0))
        for n in names {
            fleet.host(n).on(.prefix("work")) { cmd in
                active.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) }
                defer { active.withLock { $0.now -= 1 } }
                try cmd.wait(for: gate)
                return .success()
            }
        }
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "work"
            action = "shell"
            command = "work"
            """)
        let run = FakeRun.start(book, inventory: inventory, fleet: fleet, forks: 2)
        let twoBusy = fleet.waitUntil(limit: 20) { $0.filter { $0.kind == .commandStarted }.count >= 2 }
        // Both slots are taken and held: a third host must not start. Give a broken limit a second to show.
        let thirdStarted = fleet.waitUntil(limit: 1) { $0.filter { $0.kind == .commandStarted }.count > 2 }
        let startedWhileHeld = fleet.events.filter { $0.kind == .commandStarted }.count
        gate.open()
        let summary = try XCTUnwrap(run.wait())
        XCTAssertTrue(twoBusy)
        XCTAssertFalse(thirdStarted, "a third host started while forks = 2 were busy")
        XCTAssertEqual(startedWhileHeld, 2)
        XCTAssertTrue(summary.succeeded, describe(summary))
        XCTAssertEqual(active.withLock { $0.peak }, 2)
    }

    // MARK: Failures

    func testAFailureStopsOnlyThatHost() throws {
        let fleet = FakeFleet()
        fleet.host("a1").on(.prefix("install")) { _ in .exit(3, stdout: "partial\n", stderr: "warming up\ndisk full\n") }
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent)])
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "install"
            action = "shell"
            command = "install-things"

            [[steps]]
            name = "configure"
            action = "shell"
            command = "configure-things"

            [[steps]]
            name = "start"
            action = "shell"
            command = "start-things"
            """)
        let summary = FakeRun.run(book, inventory: inventory, fleet: fleet)

        let failed = try XCTUnwrap(summary.result(host: "a1", step: "install"))
        XCTAssertEqual(failed.status, .failed)
        XCTAssertEqual(failed.exitCode, 3)
        XCTAssertEqual(failed.message, "command failed: exit 3: disk full")
        XCTAssertEqual(failed.stdoutTail, "partial")
        XCTAssertEqual(failed.stderrTail, "warming up\ndisk full")
        for step in ["configure", "start"] {
            let r = try XCTUnwrap(summary.result(host: "a1", step: step))
            XCTAssertEqual(r.status, .blocked)
            XCTAssertEqual(r.message, "not run: step install failed on this host")
        }
        XCTAssertEqual(fleet.host("a1").commands, ["install-things"], "nothing after the failure ran on a1")
        for h in ["s1", "a2"] {
            XCTAssertEqual(fleet.host(h).commands, ["install-things", "configure-things", "start-things"])
            XCTAssertTrue(["install", "configure", "start"].allSatisfy { summary.status(h, $0) == .changed })
        }
        XCTAssertFalse(summary.succeeded)
        XCTAssertFalse(summary.interrupted)
        XCTAssertEqual(summary.counts[.failed], 1)
        XCTAssertEqual(summary.counts[.blocked], 2)
        XCTAssertEqual(summary.counts[.changed], 6)
    }

    func testAFailedProducerBlocksConsumersNamingTheValue() throws {
        let fleet = FakeFleet()
        fleet.host("s1").on(.contains("node-token")) { _ in .exit(1, stderr: "Permission denied\n") }
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent)])
        let book = try Fixtures.playbook("""
            \(Fixtures.fetchTokenStep)

            [[steps]]
            name = "join"
            action = "shell"
            target = "agents"
            needs = ["token"]
            command = "join-cluster"

            [[steps]]
            name = "after-join"
            action = "shell"
            command = "after-join"

            [[steps]]
            name = "unrelated"
            action = "shell"
            target = ["a2"]
            command = "unrelated"
            """)
        let summary = FakeRun.run(book, inventory: inventory, fleet: fleet)

        XCTAssertEqual(summary.status("s1", "token"), .failed)
        XCTAssertTrue(summary.result(host: "s1", step: "token")?.message.contains("Permission denied") ?? false)
        for agent in ["a1", "a2"] {
            let join = try XCTUnwrap(summary.result(host: agent, step: "join"))
            XCTAssertEqual(join.status, .blocked)
            XCTAssertTrue(join.message.contains("needs \"token\""), join.message)
            XCTAssertTrue(join.message.contains("step token on s1 ended failed"), join.message)
            XCTAssertEqual(summary.status(agent, "after-join"), .blocked)
            XCTAssertTrue(fleet.host(agent).commands.isEmpty, "\(agent) ran \(fleet.host(agent).commands)")
        }
        XCTAssertEqual(summary.status("a2", "unrelated"), .blocked)
        XCTAssertEqual(summary.status("s1", "after-join"), .blocked)
    }

    func testAProducerBlockedOnItsOwnHostBlocksConsumers() throws {
        let fleet = FakeFleet()
        fleet.host("s1").on(contains: "install", exit: 1)
        fleet.host("s1").setFile(tokenPath, token)
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent)])
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "install"
            action = "shell"
            target = "servers"
            command = "install"

            \(Fixtures.fetchTokenStep)

            [[steps]]
            name = "join"
            action = "shell"
            target = "agents"
            needs = ["token"]
            command = "join"
            """)
        let summary = FakeRun.run(book, inventory: inventory, fleet: fleet)
        XCTAssertEqual(summary.status("s1", "token"), .blocked)
        let join = try XCTUnwrap(summary.result(host: "a1", step: "join"))
        XCTAssertEqual(join.status, .blocked)
        XCTAssertTrue(join.message.contains("\"token\""), join.message)
        XCTAssertFalse(fleet.host("s1").commands.contains { $0.contains("node-token") })
    }

    func testAnUnreachableHostIsUnreachableEverywhereOthersFinish() throws {
        let fleet = FakeFleet()
        fleet.host("a1").reachability = .unreachable("connect to fd00:10::2 port 22: no route to host")
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent)])
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "one"
            action = "shell"
            command = "one"

            [[steps]]
            name = "two"
            action = "shell"
            command = "two"
            """)
        let summary = FakeRun.run(book, inventory: inventory, fleet: fleet)
        let first = try XCTUnwrap(summary.result(host: "a1", step: "one"))
        XCTAssertEqual(first.status, .unreachable)
        XCTAssertTrue(first.message.contains("no route to host"), first.message)
        let second = try XCTUnwrap(summary.result(host: "a1", step: "two"))
        XCTAssertEqual(second.status, .unreachable)
        XCTAssertTrue(second.message.hasPrefix("not run: host unreachable"), second.message)
        XCTAssertTrue(fleet.host("a1").commands.isEmpty)
        XCTAssertEqual(fleet.host("a1").events.filter { $0.kind == .connectFailed }.count, 1, "no reconnect per task")
        for h in ["s1", "a2"] {
            XCTAssertEqual(summary.status(h, "one"), .changed)
            XCTAssertEqual(summary.status(h, "two"), .changed)
        }
        XCTAssertEqual(summary.counts[.unreachable], 2)
    }

    func testARefusedLoginFailsTheHost() throws {
        let fleet = FakeFleet()
        fleet.host("s1").reachability = .refusesLogin("authentication failed for root")
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "one"
            action = "shell"
            command = "one"

            [[steps]]
            name = "two"
            action = "shell"
            command = "two"
            """)
        let summary = FakeRun.run(book, inventory: Fixtures.inventory([("s1", .server)]), fleet: fleet)
        XCTAssertEqual(summary.status("s1", "one"), .failed)
        XCTAssertEqual(summary.status("s1", "two"), .blocked)
        XCTAssertTrue(summary.result(host: "s1", step: "two")?.message.contains("could not log in") ?? false)
    }

    func testAHostLostMidRunIsUnreachableFromThere() throws {
        let fleet = FakeFleet()
        fleet.host("a1").on(.prefix("two")) { _ in throw ConnectionError("connection reset by peer", unreachable: true) }
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "one"
            action = "shell"
            command = "one"

            [[steps]]
            name = "two"
            action = "shell"
            command = "two"

            [[steps]]
            name = "three"
            action = "shell"
            command = "three"
            """)
        let summary = FakeRun.run(book, inventory: Fixtures.inventory([("s1", .server), ("a1", .agent)]), fleet: fleet)
        XCTAssertEqual(summary.status("a1", "one"), .changed)
        XCTAssertEqual(summary.status("a1", "two"), .unreachable)
        XCTAssertEqual(summary.result(host: "a1", step: "two")?.message, "connection reset by peer")
        XCTAssertEqual(summary.status("a1", "three"), .unreachable)
        XCTAssertEqual(fleet.host("a1").commands, ["one", "two"])
        XCTAssertEqual(summary.status("s1", "three"), .changed)
    }

    func testWaitForRetriesUntilSuccess() throws {
        let fleet = FakeFleet()
        let attempts = Locked(0)
        fleet.host("s1").on(.contains("ready")) { _ in
            let n = attempts.withLock { $0 += 1; return $0 }
            return n < 3 ? .exit(1, stderr: "not yet\n") : .success()
        }
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "wait"
            action = "wait_for"
            command = "test -e /ready"
            interval = 0.01
            """)
        let summary = FakeRun.run(book, inventory: Fixtures.inventory([("s1", .server)]), fleet: fleet)
        let r = try XCTUnwrap(summary.result(host: "s1", step: "wait"))
        XCTAssertEqual(r.status, .ok, r.message)
        XCTAssertTrue(r.message.hasPrefix("succeeded after 3 attempt(s)"), r.message)
        XCTAssertEqual(fleet.host("s1").commands.count, 3)
    }

    // MARK: Interrupt

    func testInterruptEndsRunningAndWaitingTasksAsInterrupted() throws {
        let fleet = FakeFleet()
        let reporter = RecordingReporter(clock: fleet.clock)
        let never = fleet.makeGate()
        fleet.host("s1").setFile(tokenPath, token)
        fleet.host("s1").on(.prefix("long-task")) { cmd in
            try cmd.wait(for: never)
            return .success()
        }
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent)])
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "one"
            action = "shell"
            command = "one"

            [[steps]]
            name = "long"
            action = "shell"
            target = "first-server"
            command = "long-task"

            \(Fixtures.fetchTokenStep)

            [[steps]]
            name = "join"
            action = "shell"
            target = "agents"
            needs = ["token"]
            command = "join"

            [[steps]]
            name = "three"
            action = "shell"
            command = "three"
            """)
        let run = FakeRun.start(book, inventory: inventory, fleet: fleet, reporter: reporter)
        let settled = fleet.waitUntil(limit: 20) { events in
            events.contains { $0.host == "s1" && $0.kind == .commandStarted && $0.text == "long-task" }
                && events.contains { $0.host == "a1" && $0.kind == .commandFinished && $0.text == "one" }
        }
        XCTAssertTrue(settled)
        run.runner.interrupt()
        // The gate stays shut: only closing the connection can end "long-task" before the gate's own 30 s limit.
        let summary = try XCTUnwrap(run.wait(limit: 10), "the run did not end after interrupt()")

        XCTAssertTrue(summary.interrupted)
        XCTAssertFalse(summary.succeeded)
        XCTAssertEqual(summary.status("s1", "one"), .changed)
        XCTAssertEqual(summary.status("a1", "one"), .changed)
        let long = try XCTUnwrap(summary.result(host: "s1", step: "long"))
        XCTAssertEqual(long.status, .interrupted)
        XCTAssertTrue(long.message.hasPrefix("interrupted: "), long.message)
        for (h, s) in [("s1", "token"), ("s1", "three"), ("a1", "join"), ("a1", "three")] {
            XCTAssertEqual(summary.status(h, s), .interrupted, "\(h)/\(s): \(summary.result(host: h, step: s)?.message ?? "missing")")
        }
        XCTAssertEqual(summary.results.count, 7)
        XCTAssertFalse(fleet.host("s1").commands.contains { $0.contains("node-token") })
        XCTAssertFalse(fleet.host("a1").commands.contains("join"))
        XCTAssertEqual(reporter.runFinishedCount, 1)
    }

    func testInterruptBeforeRunMarksEverythingInterrupted() throws {
        let fleet = FakeFleet()
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "one"
            action = "shell"
            command = "one"
            """)
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent)])
        let runner = Runner(inventory: inventory, tasks: Planner.tasks(inventory: inventory, playbook: book), connector: fleet,
                            options: RunOptions(forks: 5), reporter: RecordingReporter(), state: nil, redactor: Redactor())
        runner.interrupt()
        let summary = runner.run()
        XCTAssertTrue(summary.interrupted)
        XCTAssertEqual(summary.results.map(\.status), [.interrupted, .interrupted])
        XCTAssertTrue(fleet.allCommands.isEmpty)
    }
}
