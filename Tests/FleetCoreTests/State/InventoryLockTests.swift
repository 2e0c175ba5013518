@testable import FleetCore
import FleetTestSupport
import Foundation
import XCTest

/// One process at a time per inventory: the lock comes before the state, and a second holder is
/// refused at once with the first holder's pid.
final class InventoryLockTests: XCTestCase {
    var dir: ScratchDirectory!

    override func setUpWithError() throws {
        dir = try ScratchDirectory()
    }

    override func tearDown() {
        dir.remove()
    }

    func testASecondHolderIsRefusedWithThePidUntilTheFirstReleases() throws {
        let inventory = try dir.write("inventory/home.toml", "")
        let first = try InventoryLock.acquire(inventory: inventory)
        XCTAssertEqual(first.path, dir.file("inventory/.fleet/home.state.json.lock"))
        XCTAssertThrowsError(try InventoryLock.acquire(inventory: inventory)) { error in
            XCTAssertEqual("\(error)", "\(inventory): in use by pid \(getpid()) (lock \(first.path)); wait for it to end")
        }
        first.release()
        XCTAssertFalse(first.isHeld)
        let second = try InventoryLock.acquire(inventory: inventory)
        XCTAssertTrue(second.isHeld)
        second.release()
    }

    /// `up` used to load (and fail on, or read a half-finished run's) state before it locked.
    func testTheStateIsNotReadWhileAnotherHolderHasTheLock() throws {
        let inventory = try dir.write("inventory/home.toml", "")
        let first = try InventoryLock.acquire(inventory: inventory)
        defer { first.release() }
        // A state file that cannot load: a store that read it before locking would report that instead.
        try dir.write("inventory/.fleet/home.state.json", "{ half written")
        XCTAssertThrowsError(try StateStore(path: RunState.path(forInventory: inventory), inventory: inventory,
                                            playbook: "p")) { error in
            XCTAssertTrue(error is InventoryLock.Busy, "\(type(of: error)): \(error)")
        }
        // The holder itself opens the store with its lock, and keeps the lock after closing the store.
        try FileManager.default.removeItem(atPath: RunState.path(forInventory: inventory))
        let store = try StateStore(path: RunState.path(forInventory: inventory), inventory: inventory, playbook: "p",
                                   lock: first)
        try store.close()
        XCTAssertTrue(first.isHeld)
        XCTAssertThrowsError(try InventoryLock.acquire(inventory: inventory))
    }

    func testAStoreRefusesAnotherInventorysLock() throws {
        let a = try InventoryLock.acquire(inventory: try dir.write("a.toml", ""))
        defer { a.release() }
        XCTAssertThrowsError(try StateStore(path: RunState.path(forInventory: dir.file("b.toml")), inventory: "b",
                                            playbook: "p", lock: a))
    }

    /// A state folder replaced by a link (e.g. in a shared directory) is refused, not followed.
    func testAPlantedStateFolderLinkIsNotFollowed() throws {
        let inventory = try dir.write("shared/home.toml", "")
        let elsewhere = dir.file("elsewhere")
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.file("shared/.fleet"), withDestinationPath: elsewhere)
        XCTAssertThrowsError(try InventoryLock.acquire(inventory: inventory)) { error in
            XCTAssertTrue("\(error)".contains("symbolic link"), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: elsewhere), [])
    }

    func testAPlantedLockFileLinkIsNotFollowed() throws {
        let inventory = try dir.write("shared/home.toml", "")
        let victim = try dir.write("victim", "keep me\n")
        try FileManager.default.createDirectory(atPath: dir.file("shared/.fleet"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: InventoryLock.path(forInventory: inventory),
                                                   withDestinationPath: victim)
        XCTAssertThrowsError(try InventoryLock.acquire(inventory: inventory))
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "keep me\n")
    }
}
