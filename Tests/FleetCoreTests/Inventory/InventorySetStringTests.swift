import FleetTestSupport
import Foundation
import XCTest

@testable import FleetCore
import FleetSteps

final class InventorySetStringTests: XCTestCase {
    private var directory: ScratchDirectory?

    override func setUpWithError() throws { directory = try ScratchDirectory() }
    override func tearDown() { directory?.remove() }

    private let original = """
        # my cluster
        [cluster]
        k3s_version   =   "v1.31.5+k3s1"   # pinned, see the upgrade notes
        name = "lab"

        [k3s]
        source = "airgap"
        airgap_dir = '/srv/k3s-1.31'

        [[hosts]]
        name = "s1"
        address = "fd10::1"
        role = "server"

        """

    private func airgapDir(_ name: String) throws -> String {
        let dir = try XCTUnwrap(directory).path + "/" + name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for f in ["k3s", "install.sh"] { FileManager.default.createFile(atPath: dir + "/" + f, contents: Data()) }
        return dir
    }

    func testReplacesValuesInPlaceKeepingEveryOtherByte() throws {
        let old = try airgapDir("k3s-1.31")
        let new = try airgapDir("k3s-1.32")
        let start = original.replacingOccurrences(of: "/srv/k3s-1.31", with: old)
        let path = try XCTUnwrap(directory).write("home.toml", start)
        let (inv, changed) = try Inventory.setStrings(
            inFile: path, [("cluster", "k3s_version", "v1.32.3+k3s1"), ("k3s", "airgap_dir", new)], schema: K3sInventory.schema)
        XCTAssertTrue(changed)
        XCTAssertEqual(inv.cluster.k3sVersion, "v1.32.3+k3s1")
        XCTAssertEqual(inv.k3s.airgapDir, new)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertEqual(text, start
            .replacingOccurrences(of: "\"v1.31.5+k3s1\"", with: "\"v1.32.3+k3s1\"")
            .replacingOccurrences(of: "'\(old)'", with: "\"\(new)\""))
        let again = try Inventory.setStrings(inFile: path, [("cluster", "k3s_version", "v1.32.3+k3s1")], schema: K3sInventory.schema)
        XCTAssertFalse(again.changed)
    }

    func testAMissingKeyGoesUnderItsTableAndAMissingTableIsAnError() throws {
        let text = "[cluster]\nk3s_version = \"v1.31.5+k3s1\"\n\n[[hosts]]\nname = \"s1\"\naddress = \"fd10::1\"\nrole = \"server\"\n"
        let path = try XCTUnwrap(directory).write("b.toml", text)
        let (inv, _) = try Inventory.setStrings(inFile: path, [("cluster", "name", "prod")], schema: K3sInventory.schema)
        XCTAssertEqual(inv.cluster.name, "prod")
        XCTAssertTrue(try String(contentsOfFile: path, encoding: .utf8).hasPrefix("[cluster]\nname = \"prod\"\nk3s_version"))
        XCTAssertThrowsError(try Inventory.setStrings(inFile: path, [("k3s", "source", "script")], schema: K3sInventory.schema)) {
            XCTAssertTrue("\($0)".contains("has no [k3s] table"), "\($0)")
        }
    }

    func testAValueThatWouldNotValidateLeavesTheFileAsItWas() throws {
        let path = try XCTUnwrap(directory).write("c.toml", original.replacingOccurrences(of: "source = \"airgap\"\nairgap_dir = '/srv/k3s-1.31'\n", with: ""))
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Inventory.setStrings(inFile: path, [("cluster", "k3s_version", "latest")], schema: K3sInventory.schema))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
    }
}
