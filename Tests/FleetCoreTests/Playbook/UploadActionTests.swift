import FleetCore
import FleetTestSupport
import Foundation
import XCTest

final class UploadActionTests: XCTestCase {
    let token = Fixtures.nodeToken
    let tokenPath = Fixtures.nodeTokenPath

    let secretBook = """
        \(Fixtures.fetchTokenStep)

        \(Fixtures.tokenUploadStep())
        """

    func testSecretTravelsAsUploadContentNeverInACommand() throws {
        let fleet = FakeFleet()
        fleet.host("s1").setFile(tokenPath, token + "\n", mode: 0o600)
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent)])
        let summary = FakeRun.run(try Fixtures.playbook(secretBook), inventory: inventory, fleet: fleet)

        XCTAssertTrue(summary.succeeded, "\(summary.results.map { "\($0.host)/\($0.step): \($0.status) \($0.message)" })")
        XCTAssertEqual(summary.status("s1", "token"), .ok)
        for agent in ["a1", "a2"] {
            let h = fleet.host(agent)
            XCTAssertEqual(summary.status(agent, "token-file"), .changed)
            XCTAssertEqual(h.uploads.count, 1)
            XCTAssertEqual(h.uploads.first?.text, "/etc/rancher/k3s/token")
            XCTAssertEqual(h.uploads.first?.data, Data(token.utf8), "the fetched value, trimmed")
            XCTAssertEqual(h.uploads.first?.mode, 0o600)
            XCTAssertEqual(h.file("/etc/rancher/k3s/token"), FakeFile(data: Data(token.utf8), mode: 0o600))
        }
        let commandTexts = fleet.events.filter { $0.kind == .commandStarted || $0.kind == .commandFinished }.map(\.text)
        XCTAssertFalse(commandTexts.isEmpty)
        for text in commandTexts {
            XCTAssertFalse(text.contains(token), "token on a command line: \(text)")
            XCTAssertFalse(text.contains("9f8e7d6c5b4a39281706"), "token password on a command line: \(text)")
        }
        for r in summary.results {
            XCTAssertFalse(r.message.contains(token) || r.stdoutTail.contains(token) || r.stderrTail.contains(token), "\(r)")
        }
    }

    func testSecretAlreadyInPlaceIsOKWithoutUpload() throws {
        let fleet = FakeFleet()
        fleet.host("s1").setFile(tokenPath, token + "\n")
        fleet.host("a1").setFile("/etc/rancher/k3s/token", token, mode: 0o600)
        fleet.host("a2").setFile("/etc/rancher/k3s/token", token, mode: 0o644)
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent)])
        let summary = FakeRun.run(try Fixtures.playbook(secretBook), inventory: inventory, fleet: fleet)

        let a1 = try XCTUnwrap(summary.result(host: "a1", step: "token-file"))
        XCTAssertEqual(a1.status, .ok, a1.message)
        XCTAssertTrue(a1.message.contains("already has this content and mode 600"), a1.message)
        XCTAssertTrue(fleet.host("a1").uploads.isEmpty)

        // Same content, other mode: written again.
        XCTAssertEqual(summary.status("a2", "token-file"), .changed)
        XCTAssertEqual(fleet.host("a2").uploads.count, 1)
        XCTAssertEqual(fleet.host("a2").file("/etc/rancher/k3s/token")?.mode, 0o600)
    }

    func testContentIsRenderedPlainAndRewrittenOnlyWhenItDiffers() throws {
        let fleet = FakeFleet()
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent)])
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "config"
            action = "upload"
            content = "node-name: {{ host.name }}\\nserver: {{ server_url }}\\n"
            dest = "/etc/rancher/k3s/{{ host.role }}.yaml"
            mode = 640
            """)
        let first = FakeRun.run(book, inventory: inventory, fleet: fleet)
        XCTAssertEqual(first.status("s1", "config"), .changed)
        XCTAssertEqual(first.status("a1", "config"), .changed)
        let s1 = inventory.host(named: "s1")!
        XCTAssertEqual(fleet.host("a1").file("/etc/rancher/k3s/agent.yaml"),
                       FakeFile(data: Data("node-name: a1\nserver: https://[\(s1.nodeIP)]:6443\n".utf8), mode: 0o640))
        XCTAssertNotNil(fleet.host("s1").file("/etc/rancher/k3s/server.yaml"))

        // Someone edits a1's file: only a1 is rewritten on the next run.
        fleet.host("a1").setFile("/etc/rancher/k3s/agent.yaml", "edited\n", mode: 0o640)
        let mark = fleet.events.count
        let second = FakeRun.run(book, inventory: inventory, fleet: fleet)
        XCTAssertEqual(second.status("s1", "config"), .ok)
        XCTAssertEqual(second.status("a1", "config"), .changed)
        let uploads = fleet.events.dropFirst(mark).filter { $0.kind == .upload }
        XCTAssertEqual(uploads.map(\.host), ["a1"])
        XCTAssertEqual(fleet.host("a1").file("/etc/rancher/k3s/agent.yaml")?.text.hasPrefix("node-name: a1"), true)
    }

    func testLocalFileSourceAndItsDigestInThePlan() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        try dir.write("playbooks/files/motd", "hello\n")
        let path = try dir.write("playbooks/site.toml", """
            [[steps]]
            name = "motd"
            action = "upload"
            src = "files/motd"
            dest = "/etc/motd"
            """)
        let book = try Playbook.load(path: path, registry: .builtIn)
        let inventory = Fixtures.inventory([("s1", .server)])
        let before = Planner.tasks(inventory: inventory, playbook: book)[0].digest

        let fleet = FakeFleet()
        let summary = FakeRun.run(book, inventory: inventory, fleet: fleet)
        XCTAssertEqual(summary.status("s1", "motd"), .changed)
        XCTAssertEqual(fleet.host("s1").file("/etc/motd"), FakeFile(data: Data("hello\n".utf8), mode: 0o644))

        // Editing the local file changes the task's digest (so --retry-failed reruns it).
        try dir.write("playbooks/files/motd", "hello again\n")
        XCTAssertNotEqual(Planner.tasks(inventory: inventory, playbook: book)[0].digest, before)
    }

    func testMissingSecretFileFailsAndBlocksConsumers() throws {
        let fleet = FakeFleet()
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent)])
        let summary = FakeRun.run(try Fixtures.playbook(secretBook), inventory: inventory, fleet: fleet)
        let fetch = try XCTUnwrap(summary.result(host: "s1", step: "token"))
        XCTAssertEqual(fetch.status, .failed)
        XCTAssertEqual(fetch.message, "\(tokenPath) does not exist on s1")
        let join = try XCTUnwrap(summary.result(host: "a1", step: "token-file"))
        XCTAssertEqual(join.status, .blocked)
        XCTAssertTrue(join.message.contains("\"token\""), join.message)
        XCTAssertTrue(fleet.host("a1").uploads.isEmpty)
    }

    func testEmptySecretFileFails() throws {
        let fleet = FakeFleet()
        fleet.host("s1").setFile(tokenPath, " \n")
        let summary = FakeRun.run(try Fixtures.playbook(secretBook), inventory: Fixtures.inventory([("s1", .server), ("a1", .agent)]),
                                  fleet: fleet)
        XCTAssertEqual(summary.result(host: "s1", step: "token")?.message, "\(tokenPath) is empty on s1")
        XCTAssertEqual(summary.status("a1", "token-file"), .blocked)
    }

    func testSecretPlanNeverShowsTheValue() throws {
        let book = try Fixtures.playbook(secretBook)
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent)])
        let lines = Planner.tasks(inventory: inventory, playbook: book).flatMap {
            $0.step.action.describe(TemplateVariables(host: $0.host, inventory: inventory))
        }
        XCTAssertEqual(lines, ["read \(tokenPath) into <secret token>", "upload <secret token> to /etc/rancher/k3s/token mode 600"])
    }

    func testSHA256HexMatchesTheStandardVectors() {
        XCTAssertEqual(sha256Hex(Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(sha256Hex(Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
