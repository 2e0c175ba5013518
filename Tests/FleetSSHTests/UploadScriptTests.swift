import FleetCore
@testable import FleetSSH
import Foundation
import XCTest

/// The upload script and the quoting under the two shells a host runs it with: bash (root's
/// login shell) and dash (`sh`, what `become = "sudo"` runs). Run locally: no host needed.
final class UploadScriptTests: XCTestCase {
    static let shells = ["/bin/sh", "/bin/bash"].filter { FileManager.default.isExecutableFile(atPath: $0) }

    /// Names that broke the script or could: each is tried as a file name under a fresh directory.
    static let hostileNames = [
        "a b/x", "sp ace", "x'y", "x\"y", "x;y", "x EXIT;id>pwned;#", "x' EXIT;touch pwned;#'",
        "$(touch pwned)", "`touch pwned`", "x\\y", "*", "$HOME", "-rf", "ünï cödé ✓", "a b/c d/e",
        "x';touch pwned;'", "}{|&<>!~#", "\t tab",
    ]

    func makeDir() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-upload-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs `script` with `shell -c` in `dir`, `stdin` fed to it; returns the exit status and stderr.
    func run(_ shell: String, _ script: String, in dir: String, stdin: Data) throws -> (Int32, String) {
        let (status, err, _) = try runCapturing(shell, script, in: dir, stdin: stdin)
        return (status, err)
    }

    /// As `run`, with stdout too.
    func runCapturing(_ shell: String, _ script: String, in dir: String, stdin: Data) throws -> (Int32, String, String) {
        let r = LocalCommand.run([shell, "-c", script], stdin: stdin, directory: dir)
        return (r.status, r.stderrText, r.stdoutText)
    }

    /// Every file and directory under `dir`, relative, sorted.
    func tree(_ dir: String) -> [String] {
        (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []).sorted()
    }

    func testHostilePathsArriveExactlyAndNothingElseRuns() throws {
        XCTAssertFalse(Self.shells.isEmpty)
        var content = Data("line one\n'quoted' \"double\" $(x) `y`\n".utf8)
        content.append(contentsOf: [0, 1, 2, 255, 254, 10])
        for shell in Self.shells {
            for name in Self.hostileNames {
                for mode in [0o600, 0o640, 0o755] {
                  for unlessSame in [false, true] {
                    let dir = try makeDir()
                    defer { try? FileManager.default.removeItem(atPath: dir) }
                    // A sentinel named like the path's first word: the old script deleted it under bash.
                    let sentinel = dir + "/a"
                    try Data("keep".utf8).write(to: URL(fileURLWithPath: sentinel))
                    let before = tree(dir)
                    let path = dir + "/" + name
                    let script = SSHSession.uploadScript(path: path, mode: mode, unlessSame: unlessSame)
                    let (status, err) = try run(shell, script, in: dir, stdin: content)
                    let what = "\(shell) \(String(reflecting: name)) mode \(String(mode, radix: 8)) unlessSame \(unlessSame)"
                    XCTAssertEqual(status, 0, "\(what): \(err)")
                    XCTAssertEqual(FileManager.default.contents(atPath: path), content, what)
                    let attrs = try? FileManager.default.attributesOfItem(atPath: path)
                    XCTAssertEqual((attrs?[.posixPermissions] as? NSNumber)?.intValue, mode, what)
                    XCTAssertEqual(FileManager.default.contents(atPath: sentinel), Data("keep".utf8), what)
                    XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/pwned"), "\(what): a command ran")
                    // Nothing but the file and the directories leading to it was added or removed.
                    var expected = Set(before)
                    var rel = name
                    while true {
                        expected.insert(rel)
                        guard let slash = rel.lastIndex(of: "/") else { break }
                        rel = String(rel[..<slash])
                    }
                    XCTAssertEqual(Set(tree(dir)), expected, what)
                    if unlessSame {
                        // Again with the same bytes and mode: found as wanted, and nothing else runs.
                        let (again, err2, out) = try runCapturing(shell, script, in: dir, stdin: content)
                        XCTAssertEqual(again, 0, "\(what): \(err2)")
                        XCTAssertEqual(out, SSHSession.sameMarker + "\n", what)
                        XCTAssertEqual(Set(tree(dir)), expected, "\(what): the temp file is gone")
                        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/pwned"), "\(what): a command ran")
                    }
                  }
                }
            }
        }
    }

    /// `unlessSame` keeps a file that has the bytes and the mode (same inode, nothing printed but
    /// the marker) and writes it in every other case: other bytes, another mode, a link, no file.
    func testUnlessSameWritesOnlyWhenContentModeOrKindDiffer() throws {
        let fm = FileManager.default
        for shell in Self.shells {
            let dir = try makeDir()
            defer { try? fm.removeItem(atPath: dir) }
            let path = dir + "/token"
            let script = SSHSession.uploadScript(path: path, mode: 0o600, unlessSame: true)
            func upload(_ text: String) throws -> String {
                let (status, err, out) = try runCapturing(shell, script, in: dir, stdin: Data(text.utf8))
                XCTAssertEqual(status, 0, "\(shell): \(err)")
                return out
            }
            func inode() -> Int? { (try? fm.attributesOfItem(atPath: path))?[.systemFileNumber] as? Int }
            func mode() -> Int? { ((try? fm.attributesOfItem(atPath: path))?[.posixPermissions] as? NSNumber)?.intValue }

            XCTAssertEqual(try upload("one"), "", "\(shell): no file: written")
            XCTAssertEqual(fm.contents(atPath: path), Data("one".utf8))
            let first = inode()
            XCTAssertEqual(try upload("one"), SSHSession.sameMarker + "\n", shell)
            XCTAssertEqual(inode(), first, "\(shell): the same file, untouched")

            XCTAssertEqual(try upload("two"), "", "\(shell): other bytes: written")
            XCTAssertEqual(fm.contents(atPath: path), Data("two".utf8))

            try fm.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
            XCTAssertEqual(try upload("two"), "", "\(shell): another mode: written")
            XCTAssertEqual(mode(), 0o600, shell)

            // A link to a file with the same bytes is replaced by the file itself.
            try fm.removeItem(atPath: path)
            try Data("two".utf8).write(to: URL(fileURLWithPath: dir + "/elsewhere"))
            try fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: dir + "/elsewhere")
            try fm.createSymbolicLink(atPath: path, withDestinationPath: dir + "/elsewhere")
            XCTAssertEqual(try upload("two"), "", "\(shell): a link: written")
            XCTAssertNil(try? fm.destinationOfSymbolicLink(atPath: path), "\(shell): no longer a link")
            XCTAssertEqual(tree(dir), ["elsewhere", "token"], shell)
        }
    }

    func testAFailedUploadLeavesNoTempFile() throws {
        for shell in Self.shells {
            let dir = try makeDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            // The destination is a directory: mv cannot replace it, and the temp file must go.
            try FileManager.default.createDirectory(atPath: dir + "/d x'", withIntermediateDirectories: true)
            try Data("in".utf8).write(to: URL(fileURLWithPath: dir + "/d x'/inside"))
            let (status, _) = try run(shell, SSHSession.uploadScript(path: dir + "/d x'", mode: 0o644), in: dir, stdin: Data("new".utf8))
            XCTAssertNotEqual(status, 0, shell)
            XCTAssertEqual(tree(dir), ["d x'", "d x'/inside"], shell)
        }
    }

    func testShellQuoteCopiesAgreeAndRoundTripUnderBothShells() throws {
        let inputs = Self.hostileNames + ["", "plain", "a=b", "'", "''", "\\'", "é", "a\tb", "x y z", "~root", "%s"]
        for s in inputs {
            XCTAssertEqual(FleetSSH.shellQuote(s), FleetCore.shellQuote(s), String(reflecting: s))
            for shell in Self.shells {
                let got = LocalCommand.run([shell, "-c", "printf %s \(FleetSSH.shellQuote(s))"])
                XCTAssertEqual(got.stdoutText, s, "\(shell) \(String(reflecting: s))")
            }
        }
    }

    func testRemotePathRulesAgreeAndRefuseWhatCannotBeAPath() {
        let paths = ["/ok", "/a b/'c'", "relative", "", "/x\ny", "/x\ry", "/x\0y", "/dir/", "/dir/.", "/dir/..", "~/x", "/ünï"]
        for p in paths {
            XCTAssertEqual(FleetSSH.RemotePath.problem(p), FleetCore.RemotePath.problem(p), String(reflecting: p))
            XCTAssertEqual(FleetSSH.RemotePath.fileProblem(p), FleetCore.RemotePath.fileProblem(p), String(reflecting: p))
        }
        XCTAssertNil(FleetSSH.RemotePath.fileProblem("/a b/'c' $(x)"))
        XCTAssertEqual(FleetSSH.RemotePath.problem("relative"), "is not an absolute path")
        XCTAssertEqual(FleetSSH.RemotePath.problem("/x\0y"), "contains a NUL byte")
        XCTAssertEqual(FleetSSH.RemotePath.problem("/x\ny"), "contains a line break")
        XCTAssertEqual(FleetSSH.RemotePath.fileProblem("/dir/"), "does not name a file")
    }
}
