import FleetCore
import FleetTestSupport
import Foundation
import XCTest

/// The fake must behave like a host for the engine's tests to mean anything.
final class FakeFleetTests: XCTestCase {
    let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent)])

    func connect(_ fleet: FakeFleet, _ name: String = "s1") throws -> Connection {
        try fleet.connect(to: try XCTUnwrap(inventory.host(named: name)))
    }

    func run(_ c: Connection, _ command: String, stdin: String? = nil) throws -> (String, String, Int32?) {
        let r = try c.run(command, stdin: stdin.map { Data($0.utf8) }, timeout: nil)
        return (r.stdoutText, r.stderrText, r.exitCode)
    }

    func testShellWordsAndLists() throws {
        let c = try connect(FakeFleet())
        XCTAssertEqual(try run(c, "echo 'a  b' \"c \\\"d\\\"\" e\\ f").0, "a  b c \"d\" e f\n")
        XCTAssertEqual(try run(c, "echo \(shellQuote("it's $(x)"))").0, "it's $(x)\n")
        XCTAssertEqual(try run(c, "true && echo yes || echo no").0, "yes\n")
        XCTAssertEqual(try run(c, "false && echo yes || echo no").0, "no\n")
        XCTAssertEqual(try run(c, "echo one; echo two\necho three").0, "one\ntwo\nthree\n")
        XCTAssertEqual(try run(c, "false").2, 1)
        XCTAssertEqual(try run(c, "echo x; exit 7; echo never").0, "x\n")
        XCTAssertEqual(try run(c, "echo x; exit 7; echo never").2, 7)
        XCTAssertEqual(try run(c, "if false; then echo a; else echo b; fi").0, "b\n")
        XCTAssertEqual(try run(c, "if true; then echo a; fi; echo c").0, "a\nc\n")
        XCTAssertEqual(try run(c, "printf %s abc | cut -d b -f2").0, "c\n")
        XCTAssertEqual(try run(c, "cat", stdin: "from stdin").0, "from stdin")
        XCTAssertEqual(try run(c, "echo 'unterminated").2, 2)
    }

    func testFilesRedirectionsAndTests() throws {
        let fleet = FakeFleet()
        let host = fleet.host("s1")
        let c = try connect(fleet)
        host.setFile("/etc/hosts", "::1 localhost\n", mode: 0o644)
        XCTAssertEqual(try run(c, "cat -- /etc/hosts").0, "::1 localhost\n")
        let missing = try run(c, "cat /nope")
        XCTAssertEqual(missing.2, 1)
        XCTAssertTrue(missing.1.contains("No such file"))
        XCTAssertEqual(try run(c, "cat /nope 2>/dev/null; true").1, "")
        XCTAssertEqual(try run(c, "echo hi > /tmp/x; echo again >> /tmp/x; cat /tmp/x").0, "hi\nagain\n")
        XCTAssertEqual(host.file("/tmp/x")?.text, "hi\nagain\n")
        XCTAssertEqual(try run(c, "test -f /etc/hosts").2, 0)
        XCTAssertEqual(try run(c, "[ -e /nope ]").2, 1)
        XCTAssertEqual(try run(c, "test -d /etc").2, 0, "parents of files are directories")
        XCTAssertEqual(try run(c, "mkdir -p /var/lib/x && test -d /var/lib/x").2, 0)
        XCTAssertEqual(try run(c, "chmod 600 /etc/hosts && stat -c %a -- /etc/hosts").0, "600\n")
        XCTAssertEqual(try run(c, "sha256sum -- /etc/hosts | cut -d' ' -f1").0, sha256Hex(Data("::1 localhost\n".utf8)) + "\n")
        XCTAssertEqual(try run(c, "rm -f /etc/hosts; test -e /etc/hosts").2, 1)

        // The engine's own file reader.
        host.setFile("/data", data: Data([0, 1, 2, 255]))
        XCTAssertEqual(try c.read("/data"), Data([0, 1, 2, 255]))
        XCTAssertNil(try c.read("/absent"))
    }

    func testSysctl() throws {
        let fleet = FakeFleet()
        let host = fleet.host("s1")
        host.setSysctl("net.ipv6.conf.all.forwarding", "0")
        let c = try connect(fleet)
        XCTAssertEqual(try run(c, "sysctl -n -- net.ipv6.conf.all.forwarding").0, "0\n")
        XCTAssertEqual(try run(c, "sysctl -q -w net.ipv6.conf.all.forwarding=1 && sysctl net.ipv6.conf.all.forwarding").0,
                       "net.ipv6.conf.all.forwarding = 1\n")
        XCTAssertEqual(try run(c, "sysctl -n nope.key").2, 255)
        host.pinSysctl("net.ipv6.conf.all.forwarding")
        XCTAssertEqual(try run(c, "sysctl -q -w net.ipv6.conf.all.forwarding=0").2, 0)
        XCTAssertEqual(host.sysctl("net.ipv6.conf.all.forwarding"), "1", "pinned keys ignore writes")
    }

    func testHandlersUnknownCommandsAndRecording() throws {
        let fleet = FakeFleet()
        let host = fleet.host("s1")
        host.on(contains: "k3s", stdout: "old\n")
        host.on(.regex("^k3s (--)?version$")) { cmd in
            XCTAssertEqual(cmd.stdin, Data("in".utf8))
            return .success("v1.31.5+k3s1\n")
        }
        host.on(.prefix("wrapped")) { cmd in
            var r = cmd.runDefault()
            r.stdout.append(Data("!".utf8))
            return r
        }
        let c = try connect(fleet)
        XCTAssertEqual(try run(c, "k3s --version", stdin: "in").0, "v1.31.5+k3s1\n", "newest matching handler wins")
        XCTAssertEqual(try run(c, "k3s kubectl get nodes").0, "old\n")
        XCTAssertEqual(try run(c, "wrapped; echo x").0, "x\n!")
        XCTAssertEqual(try run(c, "apt-get install -y curl").2, 0, "unknown commands succeed by default")
        host.rejectUnknownCommands()
        XCTAssertEqual(try run(c, "apt-get install -y curl").2, 127)
        try c.upload(Data("payload".utf8), to: "/etc/x", mode: 0o600)
        c.close()
        XCTAssertThrowsError(try c.run("echo late", stdin: nil, timeout: nil))

        XCTAssertEqual(host.commands, ["k3s --version", "k3s kubectl get nodes", "wrapped; echo x", "apt-get install -y curl",
                                       "apt-get install -y curl"])
        XCTAssertEqual(host.uploads.map(\.text), ["/etc/x"])
        XCTAssertEqual(host.file("/etc/x"), FakeFile(data: Data("payload".utf8), mode: 0o600))
        let seqs = fleet.events.map(\.seq)
        XCTAssertEqual(seqs, seqs.sorted())
        XCTAssertEqual(Set(seqs).count, seqs.count)
        XCTAssertEqual(fleet.events.first?.kind, .connect)
        XCTAssertEqual(fleet.events.last?.kind, .close)
        XCTAssertEqual(fleet.events.first { $0.kind == .commandStarted }?.data, Data("in".utf8), "stdin is recorded apart from the text")
    }

    func testReachability() {
        let fleet = FakeFleet()
        fleet.host("s1").reachability = .unreachable("no route")
        fleet.host("a1").reachability = .refusesLogin("denied")
        XCTAssertThrowsError(try connect(fleet, "s1")) { XCTAssertEqual(($0 as? ConnectionError)?.unreachable, true) }
        XCTAssertThrowsError(try connect(fleet, "a1")) { XCTAssertEqual(($0 as? ConnectionError)?.unreachable, false) }
        XCTAssertEqual(fleet.events.map(\.kind), [.connectFailed, .connectFailed])
    }

    func testGateWaitEndsWhenTheConnectionCloses() throws {
        let fleet = FakeFleet()
        let gate = fleet.makeGate()
        fleet.host("s1").on(.exact("block")) { cmd in
            try cmd.wait(for: gate)
            return .success("released")
        }
        let c = try XCTUnwrap(try connect(fleet) as? FakeConnection)
        let outcome = Locked<String?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            let text: String
            do { text = "returned " + (try c.run("block", stdin: nil, timeout: nil).stdoutText) } catch { text = "threw \(error)" }
            outcome.withLock { $0 = text }
            done.signal()
        }.start()
        XCTAssertTrue(fleet.waitUntil { $0.contains { $0.kind == .commandStarted && $0.text == "block" } })
        c.close()
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(outcome.withLock { $0 }, "threw connection to s1 was closed", "the blocked command ends once the connection closes")
        XCTAssertFalse(gate.isOpen)
    }

    func testExecRunsThroughTheRunnerWithTheFake() {
        let fleet = FakeFleet()
        fleet.host("s1").on(contains: "uptime", stdout: "up 3 days\n")
        fleet.host("a1").reachability = .unreachable("no route to host")
        let seen = Locked<[String]>([])
        let (results, interrupted) = ExecVerb.run(command: "uptime", inventory: inventory, hosts: inventory.hosts, forks: 5,
                                                  timeout: 5, connector: fleet) { r in
            seen.withLock { $0.append(r.host) }
        }
        XCTAssertFalse(interrupted)
        XCTAssertEqual(results.map(\.host), ["s1", "a1"])
        XCTAssertEqual(results.map(\.status), ["ok", "unreachable"])
        XCTAssertEqual(results[0].stdout, "up 3 days\n")
        XCTAssertEqual(results[0].exitCode, 0)
        XCTAssertNil(results[0].error)
        XCTAssertEqual(results[1].error, "no route to host")
        XCTAssertEqual(results[1].address, "fd00:10::2")
        XCTAssertEqual(Set(seen.withLock { $0 }), ["s1", "a1"])
    }

    func testExecKeepsTheWholeOutputAndSaysWhyACommandFailed() {
        let fleet = FakeFleet()
        let long = (1...50).map { "line \($0)" }.joined(separator: "\n") + "\n"
        fleet.host("s1").on(contains: "cat big", stdout: long)
        fleet.host("a1").on(contains: "cat big", exit: 3, stderr: "no such file\n")
        let (results, _) = ExecVerb.run(command: "cat big", inventory: inventory, hosts: inventory.hosts, forks: 5,
                                        timeout: nil, connector: fleet) { _ in }
        XCTAssertEqual(results[0].stdout, long, "the whole output, not the 20-line tail a task result keeps")
        XCTAssertEqual(results[1].status, "failed")
        XCTAssertEqual(results[1].exitCode, 3)
        XCTAssertNil(results[1].error, "a plain exit status says it all")
        XCTAssertEqual(results[1].stderr, "no such file\n")
        XCTAssertEqual(results[1].human, "a1 [fd00:10::2] failed exit 3 (\(results[1].durationMs) ms)\n  stderr| no such file")
        let json = results[1].jsonLine
        XCTAssertTrue(json.hasPrefix("{\"address\":\"fd00:10::2\",\"duration_ms\":"), json)
        XCTAssertTrue(json.contains("\"exit_code\":3,\"host\":\"a1\",\"status\":\"failed\",\"stderr\":\"no such file\\n\",\"stderr_bytes\":13,\"stderr_truncated\":false,\"stdout\":\"\",\"stdout_bytes\":0,\"stdout_truncated\":false}"), json)
    }

    func testDryRunShowsRenderedStepsAndMasksSecrets() throws {
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "hello"
            action = "shell"
            command = "echo {{ host.name }}"

            \(Fixtures.fetchTokenStep)

            [[steps]]
            name = "token-file"
            action = "upload"
            target = "agents"
            needs = ["token"]
            secret = "token"
            dest = "/etc/rancher/k3s/token"
            """)
        let text = try PlaybookRun.dryRun(inventory: inventory, playbook: book, options: .init())
        XCTAssertTrue(text.hasPrefix("dry run: 4 task(s), nothing is changed\n"), text)
        XCTAssertTrue(text.contains("s1 [fd00:10::1] hello (shell)\n    echo s1\n"), text)
        XCTAssertTrue(text.contains("a1 [fd00:10::2] token-file (upload) needs token\n    upload <secret token> to /etc/rancher/k3s/token mode 644\n"), text)
    }
}
