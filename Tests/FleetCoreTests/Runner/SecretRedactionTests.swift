import FleetCore
import FleetTestSupport
import Foundation
import XCTest

final class SecretRedactionTests: XCTestCase {
    let password = "c4f3b4b3d00dfeedbeef42"
    var token: String { "K10a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0::server:\(password)" }
    let tokenPath = Fixtures.nodeTokenPath

    /// s1 holds the token; after it is fetched, s1 prints it, a1 prints it and fails with it, a2 prints
    /// only its password part. Nothing fleet reports or stores may contain either.
    func testTheTokenNeverLeavesTheRedactor() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent)], path: dir.file("inventory/home.toml"))
        let book = try Fixtures.playbook("""
            \(Fixtures.fetchTokenStep)

            [[steps]]
            name = "show"
            action = "shell"
            target = "first-server"
            command = "cat \(tokenPath)"

            \(Fixtures.tokenUploadStep())

            [[steps]]
            name = "join"
            action = "shell"
            target = "agents"
            needs = ["token"]
            command = "k3s-join"
            """)
        let fleet = FakeFleet()
        fleet.host("s1").setFile(tokenPath, token + "\n", mode: 0o600)
        let token = self.token, password = self.password
        fleet.host("a1").on(.prefix("k3s-join")) { _ in
            .exit(1, stdout: "using token \(token)\n", stderr: "join failed\ninvalid token \(token)\n")
        }
        fleet.host("a2").on(.prefix("k3s-join")) { _ in .exit(0, stdout: "password \(password) accepted\n") }

        let out = OutputSink.memory()
        let summary = try PlaybookRun.run(inventory: inventory, playbook: book, options: .init(), connector: fleet,
                                          reporter: JSONLinesReporter(out: out))

        // The run went as scripted, so the outputs really did carry the token.
        XCTAssertEqual(summary.status("s1", "show"), .changed)
        XCTAssertEqual(summary.status("a1", "join"), .failed)
        XCTAssertEqual(summary.status("a2", "join"), .changed)
        XCTAssertEqual(fleet.host("a1").file("/etc/rancher/k3s/token")?.text, token, "the real value reached the host")

        let show = try XCTUnwrap(summary.result(host: "s1", step: "show"))
        XCTAssertEqual(show.stdoutTail, "<redacted:token>")
        XCTAssertEqual(show.message, "<redacted:token>")
        let failed = try XCTUnwrap(summary.result(host: "a1", step: "join"))
        XCTAssertEqual(failed.message, "command failed: exit 1: invalid token <redacted:token>")
        XCTAssertEqual(failed.stderrTail, "join failed\ninvalid token <redacted:token>")
        XCTAssertEqual(summary.result(host: "a2", step: "join")?.stdoutTail, "password <redacted:token> accepted")

        for r in summary.results {
            for text in [r.message, r.stdoutTail, r.stderrTail] {
                XCTAssertFalse(text.contains(password), "\(r.host)/\(r.step) leaks: \(text)")
            }
        }
        let jsonl = out.text
        XCTAssertTrue(jsonl.contains("<redacted:token>"))
        XCTAssertFalse(jsonl.contains(password), "JSON Lines output leaks the token")
        XCTAssertFalse(jsonl.contains(token))

        let stateText = try String(contentsOfFile: RunState.path(forInventory: inventory.path), encoding: .utf8)
        XCTAssertTrue(stateText.contains("<redacted:token>"), "the failure message is in the state, masked")
        XCTAssertFalse(stateText.contains(password), "the state file leaks the token")

        for e in fleet.events where e.kind == .commandStarted {
            XCTAssertFalse(e.text.contains(password), "token on a command line: \(e.text)")
        }

        // The same run through the human-readable reporters.
        let plain = OutputSink.memory()
        let reporter = PlainReporter(out: plain)
        for r in summary.results { reporter.taskFinished(r) }
        reporter.runFinished(summary)
        XCTAssertFalse(plain.text.contains(password))
        XCTAssertFalse(Style.failures(summary, color: false).contains(password))
    }

    func testRedactor() {
        let r = Redactor()
        XCTAssertEqual(r.redact("nothing known yet: \(token)"), "nothing known yet: \(token)")
        r.register(Secret(name: "token", value: "  \(token)\n"))
        XCTAssertEqual(r.redact("a \(token) b \(token)"), "a <redacted:token> b <redacted:token>")
        XCTAssertEqual(r.redact("pw=\(password)"), "pw=<redacted:token>", "the password part of a K3s token alone")
        XCTAssertEqual(r.redact("K10a1b2"), "K10a1b2")

        r.register(Secret(name: "pin", value: "123"))
        XCTAssertEqual(r.redact("code 123"), "code 123", "values under 4 characters would mask too much and are ignored")

        let s = Secret(name: "db", value: "hunter2hunter2")
        XCTAssertEqual("\(s)", "<secret db>")
        XCTAssertEqual(String(reflecting: s), "<secret db>")
        XCTAssertFalse("\([s])".contains("hunter2"))
    }
}
