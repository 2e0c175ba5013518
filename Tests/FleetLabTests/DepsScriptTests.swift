import FleetTestSupport
import Foundation
import XCTest

/// `scripts/deps`, the one list of Debian packages, and its install logic. The machine's packages are
/// left alone: `dpkg-query` and `apt-get` are stand-ins on PATH (the first reports the packages the
/// test calls missing; the second records what it was asked and whether service starts were refused
/// at that moment), and `/usr/sbin` is an empty directory in a private mount namespace.
final class DepsScriptTests: XCTestCase {
    private var scratch: ScratchDirectory!
    private var deps: String { Lab.repo + "/scripts/deps" }

    override func setUpWithError() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root (a private mount namespace)") }
        scratch = try ScratchDirectory()
    }

    override func tearDown() {
        scratch?.remove()
    }

    /// Runs `scripts/deps ARGS` with the stand-ins, packages in `missing` reported as not installed,
    /// and `sbin` mounted over /usr/sbin.
    private func runDeps(_ args: [String], missing: [String]) throws -> (status: Int32, output: String) {
        let bin = scratch.file("bin"), sbin = scratch.file("sbin"), log = scratch.file("apt.log")
        try FileManager.default.createDirectory(atPath: sbin, withIntermediateDirectories: true)
        let pattern = missing.isEmpty ? "__none__" : missing.joined(separator: "|")
        try scratch.write("bin/dpkg-query", """
            #!/bin/sh
            for a; do p=$a; done
            case $p in \(pattern)) echo "dpkg-query: no packages found matching $p" >&2; exit 1 ;; esac
            printf 'ii '
            """)
        try scratch.write("bin/apt-get", """
            #!/bin/sh
            echo "apt-get $*" >> \(log)
            case " $* " in *" install "*)
                /usr/sbin/policy-rc.d ssh start >/dev/null 2>&1
                echo "service starts: exit $?" >> \(log) ;;
            esac
            """)
        for f in ["dpkg-query", "apt-get"] { chmod(bin + "/" + f, 0o755) }
        let command = "mount --bind \"$1\" /usr/sbin && PATH=\"$2:$PATH\" exec \"$3\" \"${@:4}\""
        return Lab.run(["/usr/bin/unshare", "--mount", "--propagation", "private", "--",
                        "/bin/bash", "-c", command, "_", sbin, bin, deps] + args)
    }

    private func aptLog() -> String {
        (try? String(contentsOfFile: scratch.file("apt.log"), encoding: .utf8)) ?? ""
    }

    func testInstallsOnlyWhatIsMissingWithServiceStartsRefused() throws {
        let r = try runDeps([], missing: ["libssh2-1-dev", "openssh-server"])
        XCTAssertEqual(r.status, 0, r.output)
        let log = aptLog()
        XCTAssertTrue(log.contains("apt-get install -y -qq --no-install-recommends libssh2-1-dev openssh-server\n"), log)
        // policy-rc.d's 101 is "action forbidden": installing openssh-server starts no sshd.
        XCTAssertTrue(log.contains("service starts: exit 101"), log)
        // The guard was the script's own: it is gone afterwards.
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.file("sbin/policy-rc.d")))
    }

    func testKeepsAPolicyRcDThatWasThere() throws {
        let mine = "#!/bin/sh\nexit 0\n"
        try scratch.write("sbin/policy-rc.d", mine)
        chmod(scratch.file("sbin/policy-rc.d"), 0o755)
        let r = try runDeps([], missing: ["iproute2"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(aptLog().contains("install -y -qq --no-install-recommends iproute2\n"), aptLog())
        XCTAssertEqual(try String(contentsOfFile: scratch.file("sbin/policy-rc.d"), encoding: .utf8), mine)
    }

    func testNothingMissingRunsNoAptGet() throws {
        let r = try runDeps([], missing: [])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("all 13 packages are installed"), r.output)
        XCTAssertEqual(aptLog(), "")
    }

    func testCheckNamesWhatIsMissingAndInstallsNothing() throws {
        let r = try runDeps(["--check"], missing: ["python3-yaml"])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("missing: python3-yaml\n"), r.output)
        XCTAssertEqual(aptLog(), "")
    }

    func testBuildSetIsTheBuildPackagesOnly() throws {
        let r = try runDeps(["build"], missing: ["libssh2-1-dev", "openssh-server"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(aptLog().contains("--no-install-recommends libssh2-1-dev\n"), aptLog())
    }

    /// The list lives in scripts/deps alone: no other script names one of its packages.
    func testNoOtherScriptListsPackages() throws {
        let list = Lab.run([deps, "--list"])
        XCTAssertEqual(list.status, 0, list.output)
        let packages = list.output.split(separator: "\n").map(String.init)
        XCTAssertTrue(packages.contains("libssh2-1-dev"), list.output)
        for script in [".ci/run", "scripts/test", "scripts/demo", "scripts/install"] {
            let text = try String(contentsOfFile: Lab.repo + "/" + script, encoding: .utf8)
            XCTAssertFalse(text.contains("apt-get"), "\(script) runs apt-get itself")
            for p in packages where p.contains("-") {
                XCTAssertFalse(text.contains(p), "\(script) names \(p)")
            }
            XCTAssertTrue(text.contains("scripts/deps") || text.contains("scripts/test"),
                          "\(script) does not install through scripts/deps")
        }
    }
}
