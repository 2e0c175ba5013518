import Foundation
import XCTest

@testable import FleetCore
import FleetSteps

/// `[ssh] jump` and a host's `jump`: the hop syntax, lists, tables, overrides and their errors.
final class InventoryJumpTests: XCTestCase {
    private func inventory(ssh: String, hosts: String = InventoryFixture.oneServer) -> String {
        InventoryFixture.cluster + "[ssh]\nuser = \"admin\"\nidentity = \"/keys/id\"\nknown_hosts = \"/kh\"\n\(ssh)\n\n" + hosts
    }

    func testHopSyntax() throws {
        let cases: [(String, JumpSpec)] = [
            ("bastion.example", JumpSpec(host: "bastion.example")),
            ("ops@bastion.example", JumpSpec(user: "ops", host: "bastion.example")),
            ("ops@bastion.example:2222", JumpSpec(user: "ops", host: "bastion.example", port: 2222)),
            ("user@[2001:db8::1]:2222", JumpSpec(user: "user", host: "2001:db8::1", port: 2222)),
            ("[2001:db8::1]", JumpSpec(host: "2001:db8::1")),
            ("2001:db8::1", JumpSpec(host: "2001:db8::1")),
            ("192.0.2.7:22", JumpSpec(host: "192.0.2.7", port: 22)),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(try JumpSpec.parse(text).get(), expected, text)
        }
    }

    func testBadHopsSayWhy() {
        let cases: [(String, String)] = [
            ("", "is empty"),
            ("u@[2001:db8::1:22", "unbalanced '['"),
            ("u@[bastion]:22", "brackets are only for IPv6 addresses"),
            ("u@bastion:0", "port \"0\" is not a number from 1 to 65535"),
            ("u@bastion:ssh", "port \"ssh\""),
            ("u@[2001:db8::1]x", "after ']'"),
            ("b@d user@bastion", "is not a valid user name"),
            ("u@bad_host", "host \"bad_host\""),
        ]
        for (text, fragment) in cases {
            guard case .failure(let problem) = JumpSpec.parse(text) else {
                XCTFail("\(text) parsed"); continue
            }
            XCTAssertTrue(problem.reason.contains(fragment), "\(text): \(problem.reason)")
        }
    }

    func testDefaultJumpAppliesToEveryHostWithTheHostsSettings() throws {
        let inv = try XCTUnwrap(parseValid(inventory(ssh: "jump = \"ops@[2001:db8::b]:2222\"",
                                                     hosts: InventoryFixture.oneServer
                                                         + InventoryFixture.host("n2", "fd10::2", role: "agent", extra: "user = \"deploy\""))))
        XCTAssertEqual(inv.hosts[0].ssh.jumpHops, [JumpHop(user: "ops", host: "2001:db8::b", port: 2222, identity: "/keys/id",
                                                           knownHosts: "/kh", hostKeyPolicy: .strict)])
        XCTAssertEqual(inv.hosts[1].ssh.jumpHops.map(\.description), ["ops@[2001:db8::b]:2222"])
        // A hop without a user takes the host's user, and port 22 (not the host's port).
        let plain = try XCTUnwrap(parseValid(inventory(ssh: "jump = \"bastion.example\"",
                                                       hosts: InventoryFixture.host("n1", "fd10::1", extra: "user = \"deploy\"\nport = 2200"))))
        XCTAssertEqual(plain.hosts[0].ssh.jumpHops.map(\.description), ["deploy@bastion.example:22"])
    }

    func testAListIsHopsInOrderAndTablesOverrideKeyAndKnownHosts() throws {
        let toml = inventory(ssh: """
            jump = ["ops@outer.example", { host = "ops@[fd20::1]:2222", identity = "/keys/inner", known_hosts = "inner_hosts", host_key_policy = "accept-new" }]
            """)
        let hops = try XCTUnwrap(parseValid(toml)).hosts[0].ssh.jumpHops
        XCTAssertEqual(hops.count, 2)
        XCTAssertEqual(hops[0], JumpHop(user: "ops", host: "outer.example", port: 22, identity: "/keys/id", knownHosts: "/kh"))
        XCTAssertEqual(hops[1], JumpHop(user: "ops", host: "fd20::1", port: 2222, identity: "/keys/inner",
                                        knownHosts: "/srv/fleet/inventory/inner_hosts", hostKeyPolicy: .acceptNew))
        // OpenSSH's comma form means the same.
        let commas = try XCTUnwrap(parseValid(inventory(ssh: "jump = \"ops@outer.example,ops@[fd20::1]:2222\"")))
        XCTAssertEqual(commas.hosts[0].ssh.jump.map(\.host), ["outer.example", "fd20::1"])
    }

    func testAHostOverridesOrDropsTheDefault() throws {
        let hosts = InventoryFixture.host("n1", "fd10::1", extra: "jump = \"none\"")
            + InventoryFixture.host("n2", "fd10::2", role: "agent", extra: "jump = []")
            + InventoryFixture.host("n3", "fd10::3", role: "agent", extra: "jump = \"other.example:2022\"")
            + InventoryFixture.host("n4", "fd10::4", role: "agent")
        let inv = try XCTUnwrap(parseValid(inventory(ssh: "jump = \"bastion.example\"", hosts: hosts)))
        XCTAssertEqual(inv.hosts.map { $0.ssh.jumpHops.map(\.description) },
                       [[], [], ["admin@other.example:2022"], ["admin@bastion.example:22"]])
        XCTAssertTrue(try XCTUnwrap(parseValid(inventory(ssh: ""))).hosts[0].ssh.jump.isEmpty)
    }

    func testErrorsNameFileLineKeyAndHost() throws {
        let toml = inventory(ssh: "", hosts: InventoryFixture.oneServer
            + InventoryFixture.host("n2", "fd10::2", role: "agent", extra: "jump = \"ops@[fd20::1:22\""))
        let error = try XCTUnwrap(assertSingleError(toml, contains: ["unbalanced '['"]))
        XCTAssertEqual(error.key, "jump")
        XCTAssertEqual(error.host, "n2")
        let jumpLine = toml.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.hasPrefix("jump =") }
        XCTAssertEqual(error.line, try XCTUnwrap(jumpLine) + 1)
        XCTAssertEqual(error.file, InventoryFixture.path)

        let wrongType = try XCTUnwrap(assertSingleError(inventory(ssh: "jump = 22"), contains: ["expected a string"]))
        XCTAssertEqual(wrongType.key, "ssh.jump")
        let table = try XCTUnwrap(assertSingleError(inventory(ssh: "jump = [{ host = \"b\", hots = \"b\" }]"), contains: ["did you mean \"host\""]))
        XCTAssertEqual(table.key, "ssh.jump[0].hots")
        let missing = try XCTUnwrap(assertSingleError(inventory(ssh: "jump = [{ identity = \"/k\" }]"), contains: ["is required in a jump hop table"]))
        XCTAssertEqual(missing.key, "ssh.jump[0].host")
        _ = try XCTUnwrap(assertSingleError(inventory(ssh: "jump = [\"ok.example\", 7]"), contains: ["hop 2 is integer"]))
        _ = try XCTUnwrap(assertSingleError(inventory(ssh: "jump = [{ host = \"b\", host_key_policy = \"yes\" }]"), contains: ["is not one of"]))
    }
}
