import FleetCore
import Foundation
import XCTest

/// The `fleet` executable itself, as a second process, against a real sshd host.
final class CLILabTests: LabTestCase {
    override class var labSpec: (hosts: Int, name: String, net: String) { (1, "cocli", "c0") }

    /// The executable `swift build` made beside the tests.
    func fleetBinary() throws -> String {
        let path = Lab.repo + "/.build/debug/fleet"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw LabError("\(path) is missing: run swift build --build-tests first")
        }
        return path
    }

    func sshdLogLines(_ lab: Lab) -> Int {
        (FileManager.default.contents(atPath: "\(lab.dir)/hosts/1/sshd.log") ?? Data()).filter { $0 == 0x0A }.count
    }

    /// While this process holds the inventory's lock, every verb that changes hosts or files exits 2
    /// with "<inventory>: in use by pid N", and no host is contacted, no file written.
    func testEveryChangingVerbRefusesALockedInventoryAndTouchesNothing() throws {
        let lab = try lab()
        let fleet = try fleetBinary()
        let inv = try lab.inventory(named: "locked.toml") { $0 }
        let statePath = RunState.path(forInventory: inv.path)
        let kubeconfig = lab.dir + "/locked.kubeconfig"
        let lock = try InventoryLock.acquire(inventory: inv.path)
        let state = "{\"written by\": \"the holder\"}\n"
        try state.write(toFile: statePath, atomically: false, encoding: .utf8)
        let inventoryText = try String(contentsOfFile: inv.path, encoding: .utf8)
        let logBefore = sshdLogLines(lab)

        let verbs: [[String]] = [
            ["up", inv.path, "--json"],
            ["up", inv.path, "--retry-failed"],
            ["add-worker", inv.path, "--name", "cocli-9", "--address", "fd42:f1ee:7:c0::1:9"],
            ["reset", inv.path, "--yes"],
            ["kubeconfig", inv.path, "-o", kubeconfig],
        ]
        for args in verbs {
            let r = Lab.run([fleet] + args)
            XCTAssertEqual(r.status, 2, "\(args.joined(separator: " ")): \(r.output)")
            XCTAssertEqual(r.output, "\(inv.path): in use by pid \(getpid()) (lock \(lock.path)); wait for it to end\n",
                           args.joined(separator: " "))
        }
        XCTAssertEqual(try String(contentsOfFile: inv.path, encoding: .utf8), inventoryText, "the inventory was rewritten")
        XCTAssertEqual(try String(contentsOfFile: statePath, encoding: .utf8), state, "the state file was rewritten")
        XCTAssertFalse(FileManager.default.fileExists(atPath: kubeconfig), "a kubeconfig was written")
        XCTAssertEqual(sshdLogLines(lab), logBefore, "the host was contacted")

        // Released, the same verb runs: it reaches the host (so the check above can see a contact).
        lock.release()
        try FileManager.default.removeItem(atPath: statePath)
        let reset = Lab.run([fleet, "reset", inv.path, "--yes"])
        XCTAssertEqual(reset.status, 0, reset.output)
        XCTAssertGreaterThan(sshdLogLines(lab), logBefore)
    }
}
