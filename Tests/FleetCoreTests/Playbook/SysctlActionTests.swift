import FleetCore
import FleetTestSupport
import Foundation
import XCTest

final class SysctlActionTests: XCTestCase {
    let file = "/etc/sysctl.d/90-fleet-ipv6.conf"

    var action: SysctlAction {
        SysctlAction(file: file, values: [
            (key: "net.ipv6.conf.all.accept_ra", value: "2"),
            (key: "net.ipv6.conf.all.forwarding", value: "1"),
            (key: "net.ipv4.tcp_rmem", value: "4096 87380 6291456"),
        ])
    }

    // MARK: Pure logic

    func testDifferingComparesPositionally() {
        XCTAssertTrue(action.differing(current: ["2", "1", "4096 87380 6291456"]).isEmpty)
        XCTAssertEqual(action.differing(current: ["2", "0", "4096 87380 6291456"]).map(\.key), ["net.ipv6.conf.all.forwarding"])
        XCTAssertEqual(action.differing(current: ["0", "0", "1 2 3"]).map(\.key),
                       ["net.ipv6.conf.all.accept_ra", "net.ipv6.conf.all.forwarding", "net.ipv4.tcp_rmem"])
        XCTAssertEqual(action.differing(current: ["0", "0", "1 2 3"]).map(\.value), ["2", "1", "4096 87380 6291456"])
    }

    func testDifferingTreatsMissingLinesAsDifferent() {
        XCTAssertEqual(action.differing(current: ["2"]).map(\.key), ["net.ipv6.conf.all.forwarding", "net.ipv4.tcp_rmem"])
        XCTAssertEqual(action.differing(current: []).count, 3)
    }

    func testDifferingFoldsWhitespace() {
        // The kernel prints vector values with tabs.
        XCTAssertTrue(action.differing(current: ["2", "1", "4096\t87380\t6291456"]).isEmpty)
        XCTAssertTrue(action.differing(current: [" 2", "1 ", "4096  87380 \t 6291456"]).isEmpty)
        XCTAssertEqual(action.differing(current: ["2", "1", "4096 87380"]).map(\.key), ["net.ipv4.tcp_rmem"])
        XCTAssertEqual(action.differing(current: ["02", "1", "4096 87380 6291456"]).map(\.key), ["net.ipv6.conf.all.accept_ra"],
                       "compares text, not numbers")
    }

    func testFileContent() {
        XCTAssertEqual(action.fileContent, """
            # Written by fleet. Changes here are overwritten on the next run.
            net.ipv6.conf.all.accept_ra = 2
            net.ipv6.conf.all.forwarding = 1
            net.ipv4.tcp_rmem = 4096 87380 6291456

            """)
    }

    func testPlanShowsFileAndValues() {
        let plan = action.describe(TemplateVariables(values: [:]))
        XCTAssertEqual(plan.first, "write \(file):")
        XCTAssertTrue(plan.contains("  net.ipv6.conf.all.forwarding = 1"), "\(plan)")
    }

    // MARK: Against a fake host

    let playbookText = """
        [[steps]]
        name = "kernel"
        action = "sysctl"
        file = "/etc/sysctl.d/90-fleet-ipv6.conf"
        [steps.values]
        "net.ipv6.conf.all.forwarding" = 1
        "net.ipv6.conf.all.accept_ra" = 2
        "net.ipv6.conf.all.disable_ipv6" = 0
        """

    func makeHost(_ fleet: FakeFleet) -> FakeHost {
        let h = fleet.host("s1")
        h.setSysctl("net.ipv6.conf.all.forwarding", "0")
        h.setSysctl("net.ipv6.conf.all.accept_ra", "1")
        h.setSysctl("net.ipv6.conf.all.disable_ipv6", "0")
        h.rejectUnknownCommands()
        return h
    }

    func testFirstRunChangesSecondRunIsOKAndWritesNothing() throws {
        let fleet = FakeFleet()
        let host = makeHost(fleet)
        let inventory = Fixtures.inventory([("s1", .server)])
        let book = try Fixtures.playbook(playbookText)
        let sysctl = try XCTUnwrap(book.steps[0].action as? SysctlAction)

        let first = FakeRun.run(book, inventory: inventory, fleet: fleet)
        let r1 = try XCTUnwrap(first.result(host: "s1", step: "kernel"))
        XCTAssertEqual(r1.status, .changed, r1.message)
        XCTAssertTrue(r1.message.contains("wrote \(file)"), r1.message)
        XCTAssertTrue(r1.message.contains("net.ipv6.conf.all.accept_ra=2"), r1.message)
        XCTAssertTrue(r1.message.contains("net.ipv6.conf.all.forwarding=1"), r1.message)
        XCTAssertFalse(r1.message.contains("disable_ipv6"), "only differing keys are set: \(r1.message)")

        // Facts, then one command that sets, reads back and writes the file (over stdin).
        XCTAssertEqual(host.commands.count, 2, "\(host.commands)")
        XCTAssertTrue(host.uploads.isEmpty)
        XCTAssertEqual(host.file(file)?.text, sysctl.fileContent)
        XCTAssertEqual(host.file(file)?.mode, 0o644)
        XCTAssertNil(host.file(file + ".fleet-tmp"), "the temp file was moved into place")
        XCTAssertEqual(host.sysctl("net.ipv6.conf.all.forwarding"), "1")
        XCTAssertEqual(host.sysctl("net.ipv6.conf.all.accept_ra"), "2")
        let writes = host.commands.filter { $0.contains("sysctl -q -w") }
        XCTAssertEqual(writes.count, 1, "\(host.commands)")
        XCTAssertFalse(writes[0].contains("disable_ipv6="), writes[0])
        XCTAssertTrue(host.commands.allSatisfy { !$0.contains("/etc/sysctl.conf") }, "never touches sysctl.conf")

        let mark = fleet.events.count
        let second = FakeRun.run(book, inventory: inventory, fleet: fleet)
        let r2 = try XCTUnwrap(second.result(host: "s1", step: "kernel"))
        XCTAssertEqual(r2.status, .ok, r2.message)
        let later = fleet.events.dropFirst(mark)
        XCTAssertFalse(later.contains { $0.kind == .upload }, "second run uploaded: \(Array(later))")
        let laterCommands = later.filter { $0.kind == .commandStarted }.map(\.text)
        XCTAssertEqual(laterCommands.count, 1, "one round trip to read facts: \(laterCommands)")
        XCTAssertFalse(laterCommands.contains { $0.contains("-w") }, "\(laterCommands)")
    }

    func testFileAlreadyRightButValuesDifferOnlySets() throws {
        let fleet = FakeFleet()
        let host = makeHost(fleet)
        let book = try Fixtures.playbook(playbookText)
        let sysctl = try XCTUnwrap(book.steps[0].action as? SysctlAction)
        host.setFile(file, sysctl.fileContent)
        let summary = FakeRun.run(book, inventory: Fixtures.inventory([("s1", .server)]), fleet: fleet)
        XCTAssertEqual(summary.status("s1", "kernel"), .changed)
        XCTAssertTrue(host.uploads.isEmpty)
        XCTAssertEqual(host.sysctl("net.ipv6.conf.all.forwarding"), "1")
    }

    func testValuesRightButFileMissingOnlyWrites() throws {
        let fleet = FakeFleet()
        let host = makeHost(fleet)
        host.setSysctl("net.ipv6.conf.all.forwarding", "1")
        host.setSysctl("net.ipv6.conf.all.accept_ra", "2")
        let book = try Fixtures.playbook(playbookText)
        let summary = FakeRun.run(book, inventory: Fixtures.inventory([("s1", .server)]), fleet: fleet)
        let r = try XCTUnwrap(summary.result(host: "s1", step: "kernel"))
        XCTAssertEqual(r.status, .changed)
        XCTAssertEqual(r.message, "wrote \(file)")
        XCTAssertEqual(host.commands.count, 2, "\(host.commands)")
        XCTAssertEqual(host.file(file)?.text, try XCTUnwrap(book.steps[0].action as? SysctlAction).fileContent)
        XCTAssertFalse(host.commands.contains { $0.contains(" -w ") }, "\(host.commands)")
    }

    func testReadBackMismatchFails() throws {
        let fleet = FakeFleet()
        let host = makeHost(fleet)
        host.pinSysctl("net.ipv6.conf.all.forwarding")
        let book = try Fixtures.playbook(playbookText)
        let summary = FakeRun.run(book, inventory: Fixtures.inventory([("s1", .server)]), fleet: fleet)
        let r = try XCTUnwrap(summary.result(host: "s1", step: "kernel"))
        XCTAssertEqual(r.status, .failed)
        XCTAssertTrue(r.message.contains("read back differs"), r.message)
        XCTAssertTrue(r.message.contains("net.ipv6.conf.all.forwarding is 0, wanted 1"), r.message)
        XCTAssertFalse(r.message.contains("accept_ra"), "accept_ra did take: \(r.message)")
        XCTAssertFalse(summary.succeeded)
    }

    func testUnknownKeyOnTheHostFails() throws {
        let fleet = FakeFleet()
        let host = makeHost(fleet)
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "kernel"
            action = "sysctl"
            [steps.values]
            "net.ipv6.conf.eth9.accept_ra" = 2
            """)
        let summary = FakeRun.run(book, inventory: Fixtures.inventory([("s1", .server)]), fleet: fleet)
        let r = try XCTUnwrap(summary.result(host: "s1", step: "kernel"))
        XCTAssertEqual(r.status, .failed)
        XCTAssertTrue(r.message.hasPrefix("setting values: exit 255"), r.message)
        XCTAssertTrue(r.message.contains("eth9"), r.message)
        XCTAssertEqual(r.exitCode, 255)
        XCTAssertNil(host.file("/etc/sysctl.d/90-fleet.conf"), "a value the kernel refuses is never persisted")
    }
}
