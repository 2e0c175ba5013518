import FleetCore
import FleetRemote
import FleetSSH
import Foundation
import XCTest

/// Deadlines of the remote layer against real hosts: a read that never ends, a command that keeps
/// running after it closed its output, a host that goes silent, a command that floods its output.
final class DeadlineLabTests: LabTestCase {
    override class var labSpec: (hosts: Int, name: String, net: String) { (3, "exdead", "a1") }

    func session(_ lab: Lab, _ index: Int, keepalive: Double = 10) throws -> SSHSession {
        try SSHSession.connect(SSHTarget(host: lab.hosts[index - 1].address, port: 22, user: "root",
                                         credentials: SSHCredentials(identityFile: lab.info.identity, useAgent: false),
                                         knownHosts: lab.info.known_hosts, connectTimeout: 5,
                                         keepaliveInterval: keepalive))
    }

    /// Runs the fleet executable; kills it past `limit` seconds. Returns its exit status, its
    /// output (stdout and stderr), its maximum resident set size in KiB and how long it took.
    func fleet(_ args: [String], limit: Double) -> (status: Int32, output: String, maxRSSKiB: Int, seconds: Double) {
        let exe = Lab.repo + "/.build/debug/fleet"
        let outPath = NSTemporaryDirectory() + "fleet-dl-\(UUID().uuidString).out"
        defer { try? FileManager.default.removeItem(atPath: outPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let all = [exe] + args
        var argv: [UnsafeMutablePointer<CChar>?] = all.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        let start = Date()
        var pid: pid_t = 0
        guard posix_spawn(&pid, exe, &actions, nil, &argv, environ) == 0 else { return (127, "cannot start \(exe)", 0, 0) }
        let done = DispatchSemaphore(value: 0)
        let child = pid
        DispatchQueue.global().async {
            if done.wait(timeout: .now() + limit) == .timedOut { kill(child, SIGKILL) }
        }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        done.signal()
        let seconds = Date().timeIntervalSince(start)
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let out = String(decoding: FileManager.default.contents(atPath: outPath) ?? Data(), as: UTF8.self)
        return (code, out, usage.ru_maxrss, seconds)
    }

    /// Item: a fetch_secret of a file that never ends (a FIFO) ends within command_timeout plus a
    /// few seconds; the task fails, the agents that need the value are blocked, the state is saved.
    func testFetchSecretOfAFIFOEndsOnTimeAndBlocksTheAgents() throws {
        let lab = try lab()
        lab.exec(1, "rm -f /root/fifo-token; mkfifo /root/fifo-token")
        defer { lab.exec(1, "rm -f /root/fifo-token") }
        let inv = try lab.inventory(named: "fifo.toml") { $0.replacingOccurrences(of: "command_timeout = 120", with: "command_timeout = 4") }
        try? FileManager.default.removeItem(atPath: RunState.path(forInventory: inv.path))
        let book = lab.dir + "/fifo.playbook.toml"
        try """
            name = "fifo"
            [[steps]]
            name = "token"
            action = "fetch_secret"
            target = "first-server"
            path = "/root/fifo-token"
            secret = "token"
            [[steps]]
            name = "copy"
            action = "upload"
            target = "agents"
            needs = ["token"]
            secret = "token"
            dest = "/root/token-copy"
            mode = "0600"
            """.write(toFile: book, atomically: true, encoding: .utf8)
        let r = fleet(["up", inv.path, "--playbook", book, "--json"], limit: 60)
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertLessThan(r.seconds, 4 + 5 + 3, "command_timeout 4 s (+ kill budget, + connecting): \(r.output)")
        let state = try XCTUnwrap(try RunState.load(path: RunState.path(forInventory: inv.path)), "the state was saved")
        let first = lab.hosts[0].name
        let token = state.record(host: first, step: "token")?.status
        XCTAssertTrue(token == .failed || token == .unreachable, "\(String(describing: token))")
        for h in lab.hosts.dropFirst() {
            XCTAssertEqual(state.record(host: h.name, step: "copy")?.status, .blocked, h.name)
        }
        XCTAssertEqual(lab.exec(2, "test -e /root/token-copy; echo $?").output, "1\n")
    }

    /// Item: a command that closes its output early and exits later is reported with its real
    /// status, never a made-up 0; past its timeout it is a timed-out failure.
    func testEarlyClosedOutputKeepsTheRealExitStatus() throws {
        let lab = try lab()
        let s = try session(lab, 1)
        defer { s.close() }
        let late = try s.exec("exec >/dev/null 2>&1; sleep 12; exit 3", timeout: 30)
        XCTAssertEqual(late.exitCode, 3)
        XCTAssertFalse(late.succeeded)
        let start = Date()
        let cut = try s.exec("exec >/dev/null 2>&1; sleep 30; exit 0", timeout: 3)
        XCTAssertTrue(cut.timedOut)
        XCTAssertNil(cut.exitCode)
        XCTAssertFalse(cut.succeeded)
        XCTAssertLessThan(Date().timeIntervalSince(start), 3 + 5)
        XCTAssertEqual(CommandResult(exitCode: nil).statusText, "no exit status")
    }

    /// Item: a timed-out command on a host that stops answering (link down) ends within the
    /// command's timeout plus 5 s.
    func testTimedOutCommandOnABlackholedHostEndsWithinFiveSeconds() throws {
        let lab = try lab()
        lab.exec(2, "rm -f /tmp/exdead-started")
        let s = try session(lab, 2)
        defer { s.close(); lab.link(2, up: true) }
        let started = DispatchSemaphore(value: 0)
        let result = DeadlineBox<Result<ExecResult, Error>?>(nil)
        let start = Date()
        let t = Thread {
            result.set(Result { try s.exec("touch /tmp/exdead-started; sleep 60", timeout: 4) })
            started.signal()
        }
        t.start()
        // The command is running on the host before the link goes down.
        XCTAssertTrue(waitUntil(10) { lab.exec(2, "test -e /tmp/exdead-started").status == 0 })
        lab.link(2, up: false)
        XCTAssertEqual(started.wait(timeout: .now() + 30), .success)
        let took = Date().timeIntervalSince(start)
        XCTAssertLessThan(took, 4 + 5, "ended after \(took) s")
        switch result.get() {
        case .success(let r)?: XCTAssertTrue(r.timedOut)
        case .failure(let e)?: XCTAssertTrue((e as? SSHError)?.isUnreachable ?? false, "\(e)")
        case nil: XCTFail("no result")
        }
    }

    /// Item: a host that goes silent in the middle of a long command is noticed by the keepalive
    /// within about three keepalive intervals, not at the command's timeout.
    func testSilentHostMidCommandIsNoticedWithinTheKeepaliveBound() throws {
        let lab = try lab()
        let interval = 2.0
        lab.exec(3, "rm -f /tmp/exdead-started")
        let s = try session(lab, 3, keepalive: interval)
        defer { s.close(); lab.link(3, up: true) }
        let done = DispatchSemaphore(value: 0)
        let result = DeadlineBox<Result<ExecResult, Error>?>(nil)
        Thread {
            result.set(Result { try s.exec("touch /tmp/exdead-started; sleep 300", timeout: 600) })
            done.signal()
        }.start()
        XCTAssertTrue(waitUntil(10) { lab.exec(3, "test -e /tmp/exdead-started").status == 0 })
        let down = Date()
        lab.link(3, up: false)
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success)
        let took = Date().timeIntervalSince(down)
        XCTAssertLessThan(took, 3 * interval + 3, "noticed after \(took) s")
        if case .failure(let e)? = result.get() {
            XCTAssertTrue((e as? SSHError)?.isUnreachable ?? false, "\(e)")
        } else {
            XCTFail("a silent host must end the command with a lost connection: \(String(describing: result.get()))")
        }
    }

    /// Item: `fleet exec --timeout 5 -- yes` on every lab host ends on time, keeps a bounded head
    /// and tail of the output, says how much it dropped, and stays well under 400 MiB.
    func testFloodingCommandEndsOnTimeWithBoundedMemory() throws {
        let lab = try lab()
        let r = fleet(["exec", lab.inventoryPath, "--json", "--timeout", "5", "--", "yes"], limit: 90)
        XCTAssertEqual(r.status, 1, "a timed-out command is a failure")
        XCTAssertLessThan(r.seconds, 5 + 5 + 3, "ends on time")
        XCTAssertLessThan(r.maxRSSKiB, 400 * 1024 / 2, "max RSS \(r.maxRSSKiB) KiB")
        print("yes flood on \(lab.hosts.count) hosts: \(String(format: "%.1f", r.seconds)) s, max RSS \(r.maxRSSKiB / 1024) MiB")
        let lines = r.output.split(separator: "\n").filter { $0.hasPrefix("{") }
        XCTAssertEqual(lines.count, lab.hosts.count, r.output.prefix(2000).description)
        for line in lines {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            XCTAssertEqual(obj["status"] as? String, "failed")
            let bytes = obj["stdout_bytes"] as? Int ?? 0
            let kept = (obj["stdout"] as? String)?.utf8.count ?? 0
            XCTAssertGreaterThan(bytes, OutputLimits.head + OutputLimits.tail, "yes printed more than is kept")
            XCTAssertEqual(kept, OutputLimits.head + OutputLimits.tail)
            XCTAssertEqual(obj["stdout_truncated"] as? Bool, true)
        }
    }

    func waitUntil(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            usleep(100_000)
        }
        return condition()
    }
}

/// A value shared between a test and the thread it starts.
final class DeadlineBox<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ v: T) { value = v }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
}
