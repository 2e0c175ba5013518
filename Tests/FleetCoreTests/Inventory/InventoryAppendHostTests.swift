import FleetTestSupport
import Foundation
import XCTest

@testable import FleetCore
import FleetSteps

final class InventoryAppendHostTests: XCTestCase {
    private var directory: ScratchDirectory?

    override func setUpWithError() throws {
        directory = try ScratchDirectory()
    }

    override func tearDown() {
        directory?.remove()
    }

    private let original = """
        # my cluster   (comments and odd spacing must survive)
        [cluster]
        k3s_version   =   "v1.31.5+k3s1"   # pinned

        [[hosts]]
        name = "s1"
        address = "fd10::1"
        role = "server"
        """

    private func write(_ text: String, name: String = "home.toml") throws -> String {
        try XCTUnwrap(directory).write(name, text)
    }

    private func contents(_ path: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: path))
    }

    func testAppendKeepsTheOriginalBytesAsPrefixAndLoads() throws {
        let path = try write(original + "\n")
        let before = try contents(path)
        let changed = try Inventory.appendHost(
            toFile: path, name: "w1", address: "[fd10::21]", role: .agent, user: "ubuntu", port: 2222,
            identity: "keys/w1", nodeIP: "fd10:1::21").added
        XCTAssertTrue(changed)
        let after = try contents(path)
        XCTAssertEqual(after.prefix(before.count), before)
        let appended = String(decoding: after.dropFirst(before.count), as: UTF8.self)
        XCTAssertEqual(appended, """

            [[hosts]]
            name = "w1"
            address = "[fd10::21]"
            role = "agent"
            user = "ubuntu"
            port = 2222
            identity = "keys/w1"
            node_ip = "fd10:1::21"

            """)

        let inventory = try Inventory.load(path: path)
        let worker = try XCTUnwrap(inventory.host(named: "w1"))
        XCTAssertEqual(worker.address, "fd10::21")
        XCTAssertEqual(worker.role, .agent)
        XCTAssertEqual(worker.ssh.user, "ubuntu")
        XCTAssertEqual(worker.ssh.port, 2222)
        XCTAssertEqual(worker.ssh.identity, try XCTUnwrap(directory).path + "/keys/w1")
        XCTAssertEqual(worker.nodeIP.description, "fd10:1::21")
        XCTAssertEqual(inventory.hosts.map(\.name), ["s1", "w1"])
    }

    func testAppendIsIdempotent() throws {
        let path = try write(original + "\n")
        XCTAssertTrue(try Inventory.appendHost(toFile: path, name: "w1", address: "fd10::21", role: .agent, user: nil, port: nil, identity: nil, nodeIP: nil).added)
        let once = try contents(path)
        XCTAssertFalse(try Inventory.appendHost(toFile: path, name: "w1", address: "fd10::21", role: .agent, user: nil, port: nil, identity: nil, nodeIP: nil).added)
        XCTAssertFalse(try Inventory.appendHost(toFile: path, name: "w1", address: "FD10:0::21", role: .agent, user: nil, port: nil, identity: nil, nodeIP: nil).added)
        XCTAssertEqual(try contents(path), once)
        XCTAssertEqual(try Inventory.load(path: path).hosts.count, 2)
    }

    func testOnlyOptionalKeysThatAreGivenAreWritten() throws {
        let path = try write(original + "\n")
        try Inventory.appendHost(toFile: path, name: "w1", address: "fd10::21", role: .agent, user: nil, port: nil, identity: nil, nodeIP: nil)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.hasSuffix("\n\n[[hosts]]\nname = \"w1\"\naddress = \"fd10::21\"\nrole = \"agent\"\n"), text)
    }

    func testSameNameWithAnotherAddressIsAnError() throws {
        let path = try write(original + "\n")
        let before = try contents(path)
        XCTAssertThrowsError(
            try Inventory.appendHost(toFile: path, name: "s1", address: "fd10::99", role: .agent, user: nil, port: nil, identity: nil, nodeIP: nil)
        ) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("\"s1\"") && text.contains("fd10::1") && text.contains("fd10::99"), text)
        }
        XCTAssertEqual(try contents(path), before)
    }

    func testInvalidNewHostLeavesTheFileUntouched() throws {
        let path = try write(original + "\n")
        let before = try contents(path)
        XCTAssertThrowsError(
            try Inventory.appendHost(toFile: path, name: "w1", address: "fd10::zz", role: .agent, user: nil, port: nil, identity: nil, nodeIP: nil)
        ) { error in
            let errors = (error as? InventoryErrors)?.errors ?? []
            XCTAssertEqual(errors.count, 1, "\(error)")
            XCTAssertEqual(errors.first?.host, "w1")
            XCTAssertEqual(errors.first?.key, "address")
            XCTAssertEqual(errors.first?.line, 12)
        }
        XCTAssertThrowsError(
            try Inventory.appendHost(toFile: path, name: "w2", address: "fd10::1", role: .agent, user: nil, port: nil, identity: nil, nodeIP: nil)
        ) { error in
            XCTAssertTrue("\(error)".contains("also the address of hosts[0] \"s1\""), "\(error)")
        }
        XCTAssertThrowsError(
            try Inventory.appendHost(toFile: path, name: "w3", address: "fd10::3", role: .agent, user: nil, port: 0, identity: nil, nodeIP: nil))
        XCTAssertEqual(try contents(path), before)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: try XCTUnwrap(directory).path)
        XCTAssertEqual(leftovers, ["home.toml"])
    }

    func testAnInvalidExistingFileIsRefused() throws {
        let path = try write("[cluster]\n")
        XCTAssertThrowsError(
            try Inventory.appendHost(toFile: path, name: "s1", address: "fd10::1", role: .server, user: nil, port: nil, identity: nil, nodeIP: nil))
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "[cluster]\n")
    }

    func testFileWithoutTrailingNewline() throws {
        let path = try write(original)
        let before = try contents(path)
        try Inventory.appendHost(toFile: path, name: "w1", address: "fd10::21", role: .agent, user: nil, port: nil, identity: nil, nodeIP: nil)
        let after = try contents(path)
        XCTAssertEqual(after.prefix(before.count), before)
        XCTAssertEqual(try Inventory.load(path: path).hosts.map(\.name), ["s1", "w1"])
    }

    func testStringsAreTOMLEscaped() throws {
        let path = try write(original + "\n")
        let identity = "keys/we\"ird\\name\ttab"
        try Inventory.appendHost(toFile: path, name: "w1", address: "w1.example", role: .agent, user: "o.neil", port: nil, identity: identity, nodeIP: "fd10::21")
        let worker = try XCTUnwrap(try Inventory.load(path: path).host(named: "w1"))
        XCTAssertEqual(worker.ssh.identity, try XCTUnwrap(directory).path + "/" + identity)
        XCTAssertEqual(worker.ssh.user, "o.neil")
        XCTAssertEqual(InventorySyntax.tomlQuoted("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"")
    }

    func testPermissionsAreKept() throws {
        let path = try write(original + "\n")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        try Inventory.appendHost(toFile: path, name: "w1", address: "fd10::21", role: .agent, user: nil, port: nil, identity: nil, nodeIP: nil)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
        XCTAssertEqual(mode?.intValue, 0o600)
    }

    func testMissingFileIsAnError() {
        XCTAssertThrowsError(
            try Inventory.appendHost(toFile: "/nonexistent/fleet.toml", name: "w1", address: "fd10::21", role: .agent, user: nil, port: nil, identity: nil, nodeIP: nil)
        ) { error in
            XCTAssertTrue("\(error)".hasPrefix("/nonexistent/fleet.toml: cannot read"), "\(error)")
        }
    }

    /// A user name that could run code once it reaches a command is refused, naming the key; the file is unchanged.
    func testAUserNameWithShellCharactersIsRefused() throws {
        let path = try write(original + "\n")
        let before = try contents(path)
        for user in ["o'neil", "a$b", "a;b", "{x}", "$(id)", "-oProxy", "a b", "ü"] {
            XCTAssertThrowsError(try Inventory.appendHost(toFile: path, name: "w1", address: "fd10::21", role: .agent,
                                                          user: user, port: nil, identity: nil, nodeIP: nil), user) { error in
                XCTAssertTrue("\(error)".contains("key \"user\""), "\(error)")
            }
        }
        XCTAssertEqual(try contents(path), before)
    }
}
