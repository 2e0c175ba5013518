import Foundation
import XCTest

@testable import FleetCore
import FleetSteps

/// The ssh config reader (pure: files come from a dictionary, never from this machine's ~/.ssh) and
/// how an inventory takes its settings from it.
final class SSHConfigTests: XCTestCase {
    private func config(_ files: [String: String], main: String = "/home/u/.ssh/config",
                        globs: [String: [String]] = [:]) throws -> SSHConfig {
        try SSHConfig.load(path: main, read: { files[$0] }, glob: { globs[$0] ?? (files[$0] != nil ? [$0] : []) })
    }

    func testPatternsStarQuestionMarkAndNegation() {
        XCTAssertTrue(SSHConfig.matches("web-1", patterns: ["web-*"]))
        XCTAssertTrue(SSHConfig.matches("web-1", patterns: ["db", "web-?"]))
        XCTAssertFalse(SSHConfig.matches("web-10", patterns: ["web-?"]))
        XCTAssertTrue(SSHConfig.matches("WEB-1", patterns: ["web-*"]), "names compare case-insensitively")
        XCTAssertFalse(SSHConfig.matches("web-db", patterns: ["web-*", "!web-db"]))
        XCTAssertFalse(SSHConfig.matches("web-1", patterns: ["!db"]), "a negation alone matches nothing")
        XCTAssertTrue(SSHConfig.matches("a.example", patterns: ["*.example,b"]), "comma lists too")
        XCTAssertTrue(SSHConfig.matches("anything", patterns: ["*"]))
    }

    func testFirstValueWinsAndOnlyHonouredKeywordsAreKept() throws {
        let c = try config(["/home/u/.ssh/config": """
            # comment
            User early

            Host web-*
              HostName %h.example.net
              User web
              Port 2222
              ForwardAgent yes
            Host *
              User late
              Port=2200
              ConnectTimeout 7
              IdentityFile "~/.ssh/id with space"
            """])
        let s = c.settings(for: "web-1")
        XCTAssertEqual(s["user"]?.text, "early", "a line before any Host applies to every host, and the first value wins")
        XCTAssertEqual(s["user"]?.line, 2)
        XCTAssertEqual(s["hostname"]?.text, "%h.example.net")
        XCTAssertEqual(s["port"]?.text, "2222")
        XCTAssertEqual(s["connecttimeout"]?.text, "7")
        XCTAssertEqual(s["identityfile"]?.text, "~/.ssh/id with space")
        XCTAssertNil(s["forwardagent"], "unsupported keywords are ignored")
        XCTAssertEqual(c.settings(for: "db")["port"]?.text, "2200")
        XCTAssertNil(c.settings(for: "db")["hostname"])
    }

    func testMatchBlocksAreNeverApplied() throws {
        let c = try config(["/home/u/.ssh/config": "Match host db\n  User matched\nHost *\n  User plain\n"])
        XCTAssertEqual(c.settings(for: "db")["user"]?.text, "plain")
    }

    func testIncludeReadsInPlaceWithGlobsAndRelativePaths() throws {
        let files = [
            "/home/u/.ssh/config": "Host a\n  Include conf.d/*\nHost *\n  User fallback\n",
            "/home/u/.ssh/conf.d/1": "User one\nHost b\n  User bee\n",
            "/home/u/.ssh/conf.d/2": "Port 2022\n",
        ]
        let c = try config(files, globs: ["/home/u/.ssh/conf.d/*": ["/home/u/.ssh/conf.d/1", "/home/u/.ssh/conf.d/2"]])
        let a = c.settings(for: "a")
        XCTAssertEqual(a["user"]?.text, "one")
        XCTAssertEqual(a["user"]?.file, "/home/u/.ssh/conf.d/1")
        XCTAssertEqual(a["port"]?.text, "2022", "each included file starts in the including line's block")
        XCTAssertNil(c.settings(for: "b")["port"], "a Host line in an included file lasts to that file's end")
        XCTAssertEqual(c.settings(for: "b")["user"]?.text, "fallback", "the include is inside Host a")
        XCTAssertEqual(c.settings(for: "zz")["user"]?.text, "fallback")
    }

    func testUnreadableFilesAndBadLinesAreErrors() {
        XCTAssertThrowsError(try config([:])) { error in
            XCTAssertEqual((error as? SSHConfigError)?.description, "/home/u/.ssh/config: cannot read the file")
        }
        XCTAssertThrowsError(try config(["/home/u/.ssh/config": "Host\n"])) { error in
            XCTAssertEqual((error as? SSHConfigError)?.line, 1)
        }
        // A loop of includes ends: each file is read once.
        XCTAssertNoThrow(try config(["/home/u/.ssh/config": "Include /loop\n", "/loop": "Include /loop2\n", "/loop2": "Include /loop\n"]))
    }

    // MARK: - The inventory with a config

    private let scratch = NSTemporaryDirectory() + "fleet-sshconfig-\(UUID().uuidString)"

    override func setUp() {
        try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: scratch)
    }

    private func write(_ name: String, _ text: String) throws -> String {
        let path = scratch + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testTheInventoryTakesWhatItLeavesUnsetAndRecordsWhereFrom() throws {
        let file = try write("config", """
            Host bastion
              HostName 2001:db8::b
              User jumper
              Port 2222
            Host node-*
              HostName [2001:db8::5]
              User admin
              Port 2200
              IdentityFile keys/id_node
              UserKnownHostsFile ~/kh
              StrictHostKeyChecking accept-new
              ConnectTimeout 4
              ProxyJump bastion
            """)
        try FileManager.default.createDirectory(atPath: scratch + "/keys", withIntermediateDirectories: true)
        _ = try write("keys/id_node", "a key")
        let toml = InventoryFixture.cluster + "[ssh]\nconfig = \"\(file)\"\nport = 22\n\n"
            + InventoryFixture.host("n1", "node-a")
        let inv = try XCTUnwrap(parseValid(toml, path: scratch + "/inventory.toml"))
        let h = inv.hosts[0]
        XCTAssertEqual(h.address, "2001:db8::5")
        XCTAssertEqual(h.ssh.user, "admin")
        XCTAssertEqual(h.ssh.port, 22, "the inventory's own port wins")
        XCTAssertEqual(h.ssh.identity, scratch + "/keys/id_node")
        XCTAssertEqual(h.ssh.knownHosts, InventoryPaths.homeDirectory() + "/kh")
        XCTAssertEqual(h.ssh.hostKeyPolicy, .acceptNew)
        XCTAssertEqual(h.ssh.connectTimeout, 4)
        XCTAssertEqual(h.ssh.jumpHops, [JumpHop(user: "jumper", host: "2001:db8::b", port: 2222, identity: scratch + "/keys/id_node",
                                                knownHosts: InventoryPaths.homeDirectory() + "/kh", hostKeyPolicy: .acceptNew)])
        XCTAssertEqual(h.ssh.origins["address"], "ssh config \(file):6, HostName for node-a")
        XCTAssertEqual(h.ssh.origins["user"], "ssh config \(file):7, User")
        XCTAssertEqual(h.ssh.origins["port"], "[ssh]")
        XCTAssertEqual(h.ssh.origins["jump"], "ssh config \(file):13, ProxyJump")
        XCTAssertTrue(h.ssh.originsLine(address: h.address).contains("port 22 ([ssh])"))
    }

    func testAMissingIdentityFileIsSkippedAsSSHDoes() throws {
        let file = try write("config", "Host *\n  IdentityFile ~/.ssh/fleet-test-absent-\(UUID().uuidString)\n  User u\n")
        let toml = InventoryFixture.cluster + "[ssh]\nconfig = \"\(file)\"\n\n" + InventoryFixture.oneServer
        let h = try XCTUnwrap(parseValid(toml)).hosts[0]
        XCTAssertNil(h.ssh.identity)
        XCTAssertNil(h.ssh.origins["identity"])
        XCTAssertEqual(h.ssh.user, "u")
    }

    func testNoneAndNoDefaultReadNothing() throws {
        let file = try write("config", "Host *\n  User other\n")
        let none = InventoryFixture.cluster + "[ssh]\nconfig = \"none\"\n\n" + InventoryFixture.oneServer
        let a = try Inventory.parse(toml: none, path: scratch + "/i.toml", schema: K3sInventory.schema, defaultSSHConfig: file)
        XCTAssertEqual(a.hosts[0].ssh.user, "root")
        XCTAssertEqual(a.hosts[0].ssh.originsLine(address: "x").contains("user root (default)"), true)
        // Unset: the default file is read when it exists, and quietly skipped when it does not.
        let unset = InventoryFixture.cluster + InventoryFixture.oneServer
        XCTAssertEqual(try Inventory.parse(toml: unset, path: scratch + "/i.toml", schema: K3sInventory.schema, defaultSSHConfig: file).hosts[0].ssh.user, "other")
        XCTAssertEqual(try Inventory.parse(toml: unset, path: scratch + "/i.toml", schema: K3sInventory.schema, defaultSSHConfig: scratch + "/absent").hosts[0].ssh.user, "root")
        XCTAssertEqual(try Inventory.parse(toml: unset, path: scratch + "/i.toml").hosts[0].ssh.user, "root")
    }

    func testBadValuesAreInventoryErrorsNamingTheConfigLineAndHost() throws {
        let file = try write("config", "Host *\n  Port many\n")
        let toml = InventoryFixture.cluster + "[ssh]\nconfig = \"\(file)\"\n\n" + InventoryFixture.oneServer
        let error = try XCTUnwrap(assertSingleError(toml, contains: ["ssh config \(file):2: Port \"many\""]))
        XCTAssertEqual(error.host, "n1")
        let missing = InventoryFixture.cluster + "[ssh]\nconfig = \"nowhere\"\n\n" + InventoryFixture.oneServer
        let e2 = try XCTUnwrap(assertSingleError(missing, contains: ["no such file"], path: scratch + "/i.toml"))
        XCTAssertEqual(e2.key, "ssh.config")
    }
}
