import FleetCore
import Foundation
import XCTest

final class LocalCommandTests: XCTestCase {
    func testStatusOutputsAndStdin() {
        let r = LocalCommand.run(["/bin/sh", "-c", "cat; echo err >&2; exit 3"], stdin: Data("in\n".utf8))
        XCTAssertEqual(r.status, 3)
        XCTAssertEqual(r.stdoutText, "in\n")
        XCTAssertEqual(r.stderrText, "err\n")
        XCTAssertFalse(r.timedOut)
    }

    func testMergedStderrKeepsTheOrderAndDirectoryApplies() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-local-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = LocalCommand.run(["/bin/sh", "-c", "echo a; echo b >&2; echo c; pwd"], directory: dir, mergeStderr: true)
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.stdoutText, "a\nb\nc\n\((dir as NSString).resolvingSymlinksInPath)\n")
    }

    /// A program past its deadline is killed (status 128 + KILL), and the call returns.
    func testAProgramPastItsTimeoutIsKilled() {
        let start = Date()
        let r = LocalCommand.run(["/bin/sleep", "30"], timeout: 0.3)
        XCTAssertTrue(r.timedOut)
        XCTAssertEqual(r.status, 128 + 9)
        XCTAssertLessThan(Date().timeIntervalSince(start), 10, "the sleep was not stopped")
    }

    func testAMissingProgramIs127WithTheReason() {
        let r = LocalCommand.run(["/nonexistent/fleet-test-binary"])
        XCTAssertEqual(r.status, 127)
        XCTAssertTrue(r.stderrText.contains("cannot start /nonexistent/fleet-test-binary"), r.stderrText)
    }
}
