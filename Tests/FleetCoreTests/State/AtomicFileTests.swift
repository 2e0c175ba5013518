@testable import FleetCore
import FleetSteps
import FleetTestSupport
import Foundation
import XCTest

/// Local files fleet writes: never through a link planted in a shared folder; an inventory it
/// rewrites keeps its owner and mode.
final class AtomicFileTests: XCTestCase {
    var dir: ScratchDirectory!

    override func setUpWithError() throws {
        dir = try ScratchDirectory()
    }

    override func tearDown() {
        dir.remove()
    }

    func plantLink(_ name: String, to victim: String) throws -> String {
        let link = dir.file(name)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: victim)
        return link
    }

    func testKubeconfigOutputIsNotWrittenThroughAPlantedLink() throws {
        let victim = try dir.write("victim", "keep me\n")
        let link = try plantLink("shared.kubeconfig", to: victim)
        XCTAssertThrowsError(try KubeconfigVerb.save("apiVersion: v1\n", to: link)) { error in
            XCTAssertTrue("\(error)".contains("symbolic link"), "\(error)")
        }
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "keep me\n")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link), victim)
    }

    func testTheStateFileIsNotWrittenThroughALink() throws {
        let victim = try dir.write("victim", "keep me\n")
        try FileManager.default.createDirectory(atPath: dir.file("inv/.fleet"), withIntermediateDirectories: true)
        let link = try plantLink("inv/.fleet/home.state.json", to: victim)
        XCTAssertThrowsError(try StateStore.write(RunState(inventory: "i", playbook: "p"), to: link))
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "keep me\n")
    }

    func testANewFileAndARegularFileAreWritten() throws {
        let path = dir.file("new.kubeconfig")
        try KubeconfigVerb.save("one\n", to: path)
        try KubeconfigVerb.save("two\n", to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "two\n")
        XCTAssertEqual((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue, 0o600)
    }

    /// root (or a sudo user) running add-worker on a user's inventory must leave it the user's, with its mode.
    func testRewritingTheInventoryKeepsItsOwnerAndMode() throws {
        guard geteuid() == 0 else { throw XCTSkip("changing a file's owner needs root") }
        let path = try dir.write("home.toml", """
            [cluster]
            k3s_version = "v1.31.5+k3s1"

            [[hosts]]
            name = "s1"
            address = "fd10::1"
            role = "server"

            """)
        XCTAssertEqual(chown(path, 4242, 4343), 0)
        XCTAssertEqual(chmod(path, 0o640), 0)
        try Inventory.appendHost(toFile: path, name: "w1", address: "fd10::21", role: .agent, user: nil, port: nil,
                                 identity: nil, nodeIP: nil)
        var info = stat()
        XCTAssertEqual(stat(path, &info), 0)
        XCTAssertEqual(info.st_uid, 4242)
        XCTAssertEqual(info.st_gid, 4343)
        XCTAssertEqual(info.st_mode & 0o7777, 0o640)
        XCTAssertTrue(try String(contentsOfFile: path, encoding: .utf8).contains("name = \"w1\""))
    }

    /// The inventory the user named may be a link of their own: its target is rewritten, the link kept.
    func testAnInventoryLinkIsFollowed() throws {
        let real = try dir.write("real/home.toml", """
            [cluster]
            k3s_version = "v1.31.5+k3s1"

            [[hosts]]
            name = "s1"
            address = "fd10::1"
            role = "server"

            """)
        let link = try plantLink("home.toml", to: real)
        try Inventory.appendHost(toFile: link, name: "w1", address: "fd10::21", role: .agent, user: nil, port: nil,
                                 identity: nil, nodeIP: nil)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link), real)
        XCTAssertTrue(try String(contentsOfFile: real, encoding: .utf8).contains("name = \"w1\""))
    }
}
