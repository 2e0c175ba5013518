import FleetCore
import FleetRemote
import Foundation
import XCTest

/// The runner, the state file, `--retry-failed` and `status` against real sshd hosts.
final class RunnerLabTests: LabTestCase {
    override class var labSpec: (hosts: Int, name: String, net: String) { (3, "runtest", "72") }

    /// A fresh inventory file (own state file) for one test.
    func inventory(_ lab: Lab, _ name: String) throws -> Inventory {
        try lab.inventory(named: "\(name).toml") { $0 }
    }

    func playbook(_ text: String, _ lab: Lab, _ name: String) throws -> Playbook {
        let path = lab.dir + "/\(name).playbook.toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try Playbook.load(path: path, registry: .builtIn)
    }

    func run(_ inv: Inventory, _ book: Playbook, retry: Bool = false) throws -> (RunSummary, String) {
        let sink = OutputSink.memory()
        let summary = try PlaybookRun.run(inventory: inv, playbook: book,
                                          options: .init(retryFailed: retry), connector: SSHConnector(),
                                          reporter: JSONLinesReporter(out: sink))
        return (summary, sink.text)
    }

    static let retryBook = """
    name = "retry"
    [[steps]]
    name = "a"
    action = "shell"
    command = "echo a >> /root/count"
    [[steps]]
    name = "b"
    action = "shell"
    command = "test -e /root/marker || { echo 'no marker yet' >&2; exit 3; }; echo b >> /root/count"
    [[steps]]
    name = "token"
    action = "fetch_secret"
    target = "first-server"
    path = "/root/token"
    secret = "token"
    [[steps]]
    name = "c"
    action = "upload"
    needs = ["token"]
    secret = "token"
    dest = "/root/token-copy"
    mode = "0600"
    [[steps]]
    name = "d"
    action = "shell"
    command = "echo d >> /root/count"
    """

    func testFailureStaysOnItsHostAndRetryFailedRunsOnlyWhatIsLeft() throws {
        let lab = try lab()
        for i in 1...3 { lab.exec(i, "rm -f /root/count /root/marker /root/token-copy") }
        lab.exec(1, "echo K10aaaa::server:retrysecret$RANDOM > /root/token; touch /root/marker")
        lab.exec(3, "touch /root/marker")
        let inv = try inventory(lab, "retry")
        let book = try playbook(RunnerLabTests.retryBook, lab, "retry")
        let (h1, h2, h3) = (inv.hosts[0].name, inv.hosts[1].name, inv.hosts[2].name)

        let (first, _) = try run(inv, book)
        XCTAssertFalse(first.succeeded)
        XCTAssertEqual(first.result(host: h2, step: "a")?.status, .changed)
        XCTAssertEqual(first.result(host: h2, step: "b")?.status, .failed)
        XCTAssertEqual(first.result(host: h2, step: "b")?.exitCode, 3)
        XCTAssertTrue(first.result(host: h2, step: "b")?.stderrTail.contains("no marker yet") ?? false)
        XCTAssertEqual(first.result(host: h2, step: "c")?.status, .blocked)
        XCTAssertEqual(first.result(host: h2, step: "d")?.status, .blocked)
        for h in [h1, h3] {
            XCTAssertEqual(first.results.filter { $0.host == h }.map(\.status).allSatisfy(\.succeeded), true, "\(h)")
            XCTAssertEqual(lab.exec(h == h1 ? 1 : 3, "cat /root/count").output, "a\nb\nd\n")
        }
        XCTAssertEqual(lab.exec(2, "cat /root/count").output, "a\n")

        // status after the partial run tells the truth.
        let status1 = StatusReport.make(inventory: inv, playbook: book,
                                        state: try RunState.load(path: RunState.path(forInventory: inv.path)),
                                        connector: SSHConnector(), forks: 5)
        XCTAssertFalse(status1.healthy)
        XCTAssertTrue(status1.hosts.allSatisfy(\.reachable))
        XCTAssertEqual(status1.hosts[1].steps.first { $0.step == "b" }?.status, "failed")
        XCTAssertEqual(status1.hosts[0].steps.first { $0.step == "d" }?.status, "changed")

        // Fix the cause on host 2, then retry: only host 2's remaining steps run.
        lab.exec(2, "touch /root/marker")
        let (second, _) = try run(inv, book, retry: true)
        XCTAssertTrue(second.succeeded, Style.summary(second, color: false))
        XCTAssertEqual(lab.exec(1, "cat /root/count").output, "a\nb\nd\n", "host 1 ran nothing again")
        XCTAssertEqual(lab.exec(3, "cat /root/count").output, "a\nb\nd\n", "host 3 ran nothing again")
        XCTAssertEqual(lab.exec(2, "cat /root/count").output, "a\nb\nd\n", "host 2 ran b and d once, a not again")
        XCTAssertEqual(second.result(host: h2, step: "a")?.status, .skipped)
        XCTAssertEqual(second.result(host: h2, step: "c")?.status, .changed)
        XCTAssertEqual(second.result(host: h1, step: "token")?.status, .ok, "the token is read again, not stored")
        XCTAssertEqual(second.result(host: h1, step: "d")?.status, .skipped)
        XCTAssertEqual(lab.exec(2, "cat /root/token-copy").output,
                       lab.exec(1, "cat /root/token").output.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertEqual(lab.exec(2, "stat -c %a /root/token-copy").output, "600\n")

        let status2 = StatusReport.make(inventory: inv, playbook: book,
                                        state: try RunState.load(path: RunState.path(forInventory: inv.path)),
                                        connector: SSHConnector(), forks: 5)
        XCTAssertTrue(status2.healthy, status2.text)
        XCTAssertEqual(status2.hosts[1].steps.first { $0.step == "b" }?.runId, second.runId)
        XCTAssertEqual(status2.hosts[0].steps.first { $0.step == "b" }?.runId, first.runId, "skipped pairs keep their record")

        // The token is nowhere in the state file.
        let token = lab.exec(1, "cat /root/token").output.trimmingCharacters(in: .whitespacesAndNewlines)
        let stateText = try String(contentsOfFile: RunState.path(forInventory: inv.path), encoding: .utf8)
        XCTAssertFalse(stateText.contains(token))
        XCTAssertFalse(stateText.contains("retrysecret"))
    }

    func testTemplateValuesArriveByteForByte() throws {
        let lab = try lab()
        let inv = try inventory(lab, "tpl")
        let host = inv.hosts[0]
        let nasty = "it's \"quoted\" $(touch /root/pwned) `id` ; rm -rf / \\ spaces  and\na newline $HOME *"
        var vars = TemplateVariables(host: host, inventory: inv)
        vars.values["host.name"] = nasty
        let cmd = try Template("printf %s {{ host.name }} > /root/tpl").render(vars, .shell)
        let c = try SSHConnector().connect(to: host)
        defer { c.close() }
        XCTAssertTrue(try c.run(cmd).succeeded)
        XCTAssertEqual(try c.read("/root/tpl"), Data(nasty.utf8))
        XCTAssertEqual(try c.run("test -e /root/pwned").exitCode, 1, "nothing in the value was executed")
    }

    func testStateFileLoadsAfterKillDashNine() throws {
        let lab = try lab()
        let fleet = Lab.repo + "/.build/debug/fleet"
        guard FileManager.default.isExecutableFile(atPath: fleet) else {
            return XCTFail("build the fleet executable first (swift build): \(fleet) is missing")
        }
        let inv = try inventory(lab, "kill")
        var steps = ""
        for i in 1...12 {
            steps += "[[steps]]\nname = \"s\(i)\"\naction = \"shell\"\ncommand = \"echo \(i) >> /root/kill-count\"\n"
        }
        let bookPath = lab.dir + "/kill.playbook.toml"
        try ("name = \"kill\"\n" + steps).write(toFile: bookPath, atomically: true, encoding: .utf8)
        let statePath = RunState.path(forInventory: inv.path)
        // One complete run first, so a state file exists.
        let full = Lab.run([fleet, "up", inv.path, "--playbook", bookPath, "--json"])
        XCTAssertEqual(full.status, 0, full.output)
        let events = full.output.split(separator: "\n").count
        XCTAssertGreaterThan(events, 30)

        for round in 0..<6 {
            let killAfter = Int.random(in: 1..<events)
            let out = lab.dir + "/kill-\(round).jsonl"
            let pid = try spawn([fleet, "up", inv.path, "--playbook", bookPath, "--json"], stdout: out)
            // Kill when the run has written `killAfter` events: a random moment inside the run.
            var lines = 0
            while lines < killAfter {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { break }
                lines = (try? String(contentsOfFile: out, encoding: .utf8))?.split(separator: "\n").count ?? 0
                sched_yield()
            }
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            let state = try RunState.load(path: statePath)
            XCTAssertNotNil(state, "round \(round): the state file vanished")
            XCTAssertEqual(state?.hosts.count, 3, "round \(round)")
            // The lock died with the process: the next run can start.
            unlink(statePath + ".lock")
        }
        let after = Lab.run([fleet, "up", inv.path, "--playbook", bookPath])
        XCTAssertEqual(after.status, 0, after.output)
    }

    func spawn(_ args: [String], stdout path: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, args[0], &actions, nil, &argv, environ)
        guard rc == 0 else { throw LabError("cannot start \(args[0])") }
        return pid
    }
}
