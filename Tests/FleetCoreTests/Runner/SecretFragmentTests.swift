import FleetCore
import FleetTestSupport
import Foundation
import XCTest

/// A secret cut by a limit (the 120-character message, the 4 KiB tail) must not leak a piece:
/// redaction runs before any cut and masks every fragment of 8 or more characters.
final class SecretFragmentTests: XCTestCase {
    static func hex(_ n: Int) -> String { String((0..<n).map { _ in "0123456789abcdef".randomElement()! }) }
    /// A real-format K3s token: K10<CA hash>::server:<password>.
    let token = "K10\(hex(64))::server:\(hex(32))"
    let tokenPath = "/var/lib/rancher/k3s/server/node-token"

    var pieces: [String] {
        let chars = Array(token)
        return (0...(chars.count - Redactor.minimumFragment)).map { String(chars[$0..<($0 + Redactor.minimumFragment)]) }
    }

    func assertNoPiece(_ text: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        for piece in pieces where text.contains(piece) {
            return XCTFail("\(what) holds \(piece), a piece of the token", file: file, line: line)
        }
    }

    func testEveryEightCharacterPieceIsMaskedAlone() {
        let r = Redactor()
        r.register(Secret(name: "token", value: token))
        for piece in pieces {
            XCTAssertEqual(r.redact("x \(piece) y"), "x <redacted:token> y")
        }
        XCTAssertEqual(r.redact("a \(token) b \(token)"), "a <redacted:token> b <redacted:token>")
        let seven = String(token.prefix(7))
        XCTAssertEqual(r.redact("short \(seven)."), "short \(seven).", "under 8 characters is not a piece")
    }

    /// Agents print the token at every offset across the 120-character message cut and across the
    /// 4 KiB output tail: nothing in JSON Lines, the plain report, the failures or the state file
    /// holds an 8-character piece of it.
    func testATokenSlidAcrossEveryCutLeavesNoPiece() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let messageOffsets = Array(0...125)           // the token's start against the 120-character cut
        let tailOffsets = Array((4096 - token.count - 2)...(4096 + 2))  // its end against the 4 KiB tail
        var hosts: [(String, HostRole)] = [("s1", .server)]
        for i in 0..<(messageOffsets.count + tailOffsets.count) { hosts.append(("a\(i)", .agent)) }
        let inventory = Fixtures.inventory(hosts, path: dir.file("inventory/home.toml"))
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "token"
            action = "fetch_secret"
            target = "first-server"
            path = "\(tokenPath)"
            secret = "token"

            [[steps]]
            name = "show"
            action = "shell"
            target = "agents"
            needs = ["token"]
            command = "show-token"

            [[steps]]
            name = "token-file"
            action = "upload"
            target = "agents"
            needs = ["token"]
            secret = "token"
            dest = "/etc/rancher/k3s/token"
            mode = "0600"
            """)
        let fleet = FakeFleet()
        fleet.host("s1").setFile(tokenPath, token + "\n", mode: 0o600)
        let token = self.token
        for (i, k) in messageOffsets.enumerated() {
            let line = String(repeating: "m", count: k) + token + " tail"
            fleet.host("a\(i)").on(.prefix("show-token")) { _ in .exit(0, stdout: line + "\n", stderr: line + "\n") }
        }
        for (j, k) in tailOffsets.enumerated() {
            // The token, then k - token.count bytes: the tail's 4096-byte cut falls inside it.
            let text = token + String(repeating: "t", count: k - token.count)
            let host = fleet.host("a\(messageOffsets.count + j)")
            host.on(.prefix("show-token")) { _ in .exit(1, stdout: text, stderr: text) }
            // Half of these hosts already hold the token file: upload's "already there" check runs.
            if j % 2 == 0 { host.setFile("/etc/rancher/k3s/token", token, mode: 0o600) }
        }
        let json = OutputSink.memory()
        let summary = try PlaybookRun.run(inventory: inventory, playbook: book, options: .init(), connector: fleet,
                                          reporter: JSONLinesReporter(out: json))
        // The scripted outputs really ran (so the text did carry the token).
        XCTAssertEqual(summary.status("a0", "show"), .changed)
        XCTAssertEqual(summary.status("a\(messageOffsets.count)", "show"), .failed)
        XCTAssertTrue(json.text.contains("<redacted:token>"))

        let digest = sha256Hex(Data(token.utf8))
        for r in summary.results {
            for text in [r.message, r.stdoutTail, r.stderrTail] {
                assertNoPiece(text, "\(r.host)/\(r.step)")
                XCTAssertFalse(text.contains(digest.prefix(16)), "\(r.host)/\(r.step) shows the token's sha256")
            }
        }
        assertNoPiece(json.text, "JSON Lines")
        XCTAssertFalse(json.text.contains(digest.prefix(16)), "JSON Lines shows the token's sha256")
        let state = try String(contentsOfFile: RunState.path(forInventory: inventory.path), encoding: .utf8)
        assertNoPiece(state, "the state file")
        let plain = OutputSink.memory()
        let reporter = PlainReporter(out: plain)
        for r in summary.results { reporter.taskFinished(r) }
        reporter.runFinished(summary)
        assertNoPiece(plain.text, "the plain report")
        assertNoPiece(Style.failures(summary, color: false), "the failure report")
        assertNoPiece(Style.failures(summary, color: true), "the coloured failure report")
    }
}
