@testable import FleetCore
import FleetTestSupport
import Foundation
import XCTest

final class StateStoreTests: XCTestCase {
    var dir: ScratchDirectory!

    override func setUpWithError() throws {
        dir = try ScratchDirectory()
    }

    override func tearDown() {
        dir.remove()
    }

    func decode(_ path: String) throws -> RunState {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(RunState.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func result(_ host: String, _ step: String, _ status: TaskStatus = .changed, message: String = "") -> TaskResult {
        TaskResult(host: host, step: step, status: status, exitCode: status == .failed ? 2 : 0,
                   startedAt: Date(timeIntervalSince1970: 1_700_000_000), durationMs: 250, message: message, digest: "d-\(step)")
    }

    // MARK: Where

    func testPathForInventory() {
        XCTAssertEqual(RunState.path(forInventory: "/srv/fleet/inventory/home.toml"), "/srv/fleet/inventory/.fleet/home.state.json")
        XCTAssertEqual(RunState.path(forInventory: "inventory/lab.toml"), "inventory/.fleet/lab.state.json")
        XCTAssertEqual(RunState.path(forInventory: "/a/b/cluster.v2.toml"), "/a/b/.fleet/cluster.v2.state.json")
        XCTAssertEqual(RunState.path(forInventory: "/a/noext"), "/a/.fleet/noext.state.json")
        XCTAssertNotEqual(RunState.path(forInventory: "/a/x.toml"), RunState.path(forInventory: "/b/x.toml"))
    }

    func testLoadOfAMissingFileIsNil() throws {
        XCTAssertNil(try RunState.load(path: dir.file("none.json")))
    }

    func testACorruptFileIsRefusedWithAHint() throws {
        let path = try dir.write(".fleet/x.state.json", "{ not json")
        XCTAssertThrowsError(try RunState.load(path: path)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
            XCTAssertTrue("\(error)".contains("move it away"), "\(error)")
        }
        XCTAssertThrowsError(try StateStore(path: path, inventory: "i", playbook: "p"))
    }

    // MARK: Writing

    func testRecordsRunsAndCountsReachTheFile() throws {
        let path = dir.file("inv/.fleet/inv.state.json")
        let store = try StateStore(path: path, inventory: "/x/inv.toml", playbook: "/x/p.toml")
        store.runStarted(id: "run-1", command: "up", at: Date(timeIntervalSince1970: 1_700_000_000))
        store.record(result("s1", "base"), runId: "run-1")
        store.record(result("s1", "join", .failed, message: "exit 2"), runId: "run-1")
        let summary = RunSummary(runId: "run-1", results: [result("s1", "base"), result("s1", "join", .failed)],
                                 hosts: ["s1"], steps: ["base", "join"], duration: 1, interrupted: false)
        store.runFinished(id: "run-1", summary: summary)
        try store.close()

        let state = try decode(path)
        XCTAssertEqual(state.inventory, "/x/inv.toml")
        XCTAssertEqual(state.playbook, "/x/p.toml")
        let base = try XCTUnwrap(state.record(host: "s1", step: "base"))
        XCTAssertEqual(base.status, .changed)
        XCTAssertEqual(base.digest, "d-base")
        XCTAssertEqual(base.runId, "run-1")
        XCTAssertEqual(base.durationMs, 250)
        XCTAssertEqual(base.at.timeIntervalSince1970, 1_700_000_000.25, accuracy: 1, "the end of the task")
        XCTAssertEqual(state.record(host: "s1", step: "join")?.status, .failed)
        XCTAssertEqual(state.record(host: "s1", step: "join")?.exitCode, 2)
        XCTAssertEqual(state.record(host: "s1", step: "join")?.message, "exit 2")
        let run = try XCTUnwrap(state.lastRun)
        XCTAssertEqual(run.id, "run-1")
        XCTAssertEqual(run.outcome, "finished")
        XCTAssertNotNil(run.finishedAt)
        XCTAssertEqual(run.counts, ["changed": 1, "failed": 1])

        // Private: the state lists hosts and what failed on them.
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        // No temporary file left beside it.
        let names = try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent)
        XCTAssertEqual(names.filter { !$0.hasSuffix(".lock") }, ["inv.state.json"])
    }

    func testASecondStoreKeepsEarlierRecordsAndRuns() throws {
        let path = dir.file(".fleet/a.state.json")
        let first = try StateStore(path: path, inventory: "i", playbook: "p")
        first.runStarted(id: "r1", command: "up", at: Date())
        first.record(result("s1", "base"), runId: "r1")
        first.record(result("a1", "base", .failed), runId: "r1")
        try first.close()

        try withExtendedLifetime(first) {
            let second = try StateStore(path: path, inventory: "i", playbook: "p")
            XCTAssertEqual(second.snapshot.record(host: "s1", step: "base")?.runId, "r1")
            second.runStarted(id: "r2", command: "up", at: Date())
            second.record(result("a1", "base", .ok), runId: "r2")
            second.forget(hosts: ["s1"])
            try second.close()
        }
        let state = try decode(path)
        XCTAssertEqual(state.runs.map(\.id), ["r1", "r2"])
        XCTAssertEqual(state.runs.first?.outcome, "running", "r1 never finished: it shows as killed while running")
        XCTAssertNil(state.hosts["s1"], "forgotten")
        XCTAssertEqual(state.record(host: "a1", step: "base")?.status, .ok)
        XCTAssertEqual(state.record(host: "a1", step: "base")?.runId, "r2")
    }

    func testRunHistoryIsCapped() throws {
        let path = dir.file(".fleet/cap.state.json")
        let store = try StateStore(path: path, inventory: "i", playbook: "p")
        for i in 1...60 { store.runStarted(id: "r\(i)", command: "up", at: Date()) }
        try store.close()
        let runs = try decode(path).runs
        XCTAssertEqual(runs.count, 50)
        XCTAssertEqual(runs.first?.id, "r11")
        XCTAssertEqual(runs.last?.id, "r60")
    }

    /// Many threads record while another reads the file over and over: every read decodes, and after
    /// `flush()` every record is there.
    func testConcurrentRecordsAlwaysLeaveADecodableFile() throws {
        let path = dir.file(".fleet/busy.state.json")
        let store = try StateStore(path: path, inventory: "i", playbook: "p")
        store.runStarted(id: "r", command: "up", at: Date())
        try store.flush()
        XCTAssertNoThrow(try decode(path), "the file exists and decodes once flushed")

        let writersDone = Locked(false)
        let reads = Locked((ok: 0, bad: [String]()))
        let readerFinished = DispatchSemaphore(value: 0)
        let reader = Thread {
            while !writersDone.withLock({ $0 }) {
                do {
                    let data = try Data(contentsOf: URL(fileURLWithPath: path))
                    let decoder = JSONDecoder()
                    decoder.dateDecodingStrategy = .iso8601
                    _ = try decoder.decode(RunState.self, from: data)
                    reads.withLock { $0.ok += 1 }
                } catch {
                    reads.withLock { $0.bad.append("\(error)") }
                }
            }
            readerFinished.signal()
        }
        reader.start()

        let threads = 8, perThread = 60
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for i in 0..<perThread {
                let status: TaskStatus = i % 7 == 0 ? .failed : .changed
                store.record(TaskResult(host: "h\(t)", step: "step-\(i)", status: status, message: "t\(t) i\(i)",
                                        digest: "\(t)-\(i)"), runId: "r")
            }
        }
        try store.flush()
        writersDone.withLock { $0 = true }
        XCTAssertEqual(readerFinished.wait(timeout: .now() + 30), .success)
        try store.close()

        let r = reads.withLock { $0 }
        XCTAssertEqual(r.bad, [], "a reader saw a partial file")
        XCTAssertGreaterThan(r.ok, 0)
        let state = try decode(path)
        XCTAssertEqual(state.hosts.count, threads)
        for t in 0..<threads {
            XCTAssertEqual(state.hosts["h\(t)"]?.count, perThread)
            for i in 0..<perThread {
                let rec = state.record(host: "h\(t)", step: "step-\(i)")
                XCTAssertEqual(rec?.digest, "\(t)-\(i)")
                XCTAssertEqual(rec?.status, i % 7 == 0 ? .failed : .changed)
            }
        }
    }

    // MARK: One run at a time

    func testASecondStoreOnTheSamePathIsRefusedWhileTheFirstIsOpen() throws {
        let path = dir.file(".fleet/locked.state.json")
        let first = try StateStore(path: path, inventory: "i", playbook: "p")
        XCTAssertThrowsError(try StateStore(path: path, inventory: "i", playbook: "p")) { error in
            guard let e = error as? InventoryLock.Busy else { return XCTFail("\(type(of: error)): \(error)") }
            XCTAssertEqual(e.lockFile, path + ".lock")
            XCTAssertEqual(e.pid, getpid())
            XCTAssertTrue(e.description.hasPrefix("i: in use by pid \(getpid())"), e.description)
        }
        // Another inventory's store is independent.
        let other = try StateStore(path: dir.file(".fleet/other.state.json"), inventory: "j", playbook: "p")
        try other.close()
        try first.close()
    }

    func testCloseReleasesTheLock() throws {
        let path = dir.file(".fleet/relock.state.json")
        let first = try StateStore(path: path, inventory: "i", playbook: "p")
        first.record(result("s1", "base"), runId: "r1")
        try first.close()
        // The closed store is still referenced (as a caller may well keep it): the lock must be free anyway.
        try withExtendedLifetime(first) {
            let second = try StateStore(path: path, inventory: "i", playbook: "p")
            XCTAssertEqual(second.snapshot.record(host: "s1", step: "base")?.runId, "r1")
            try second.close()
        }
    }

    func testTwoPlaybookRunsInARowOnOneInventory() throws {
        let inventory = Fixtures.inventory([("s1", .server)], path: dir.file("inventory/home.toml"))
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "one"
            action = "shell"
            command = "one"
            """)
        let fleet = FakeFleet()
        let a = try PlaybookRun.run(inventory: inventory, playbook: book, options: .init(), connector: fleet,
                                    reporter: RecordingReporter())
        let b = try PlaybookRun.run(inventory: inventory, playbook: book, options: .init(retryFailed: true), connector: fleet,
                                    reporter: RecordingReporter())
        XCTAssertEqual(a.status("s1", "one"), .changed)
        XCTAssertEqual(b.status("s1", "one"), .skipped)
        let state = try XCTUnwrap(try RunState.load(path: RunState.path(forInventory: inventory.path)))
        XCTAssertEqual(state.runs.map(\.id), [a.runId, b.runId])
        XCTAssertEqual(state.runs.map(\.outcome), ["finished", "finished"])
        XCTAssertEqual(fleet.host("s1").commands, ["one"])
    }
}
