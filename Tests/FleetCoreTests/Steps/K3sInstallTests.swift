import FleetCore
@testable import FleetSteps
import Foundation
import XCTest

final class K3sInstallTests: XCTestCase {
    typealias I = K3sInstall
    let binary = String(repeating: "b", count: 64)
    let installer = String(repeating: "1", count: 64)
    let config = String(repeating: "c", count: 64)
    let v1315 = K3sVersion("v1.31.5+k3s1")!

    func wanted(_ role: I.Role = .server, source: K3sSource = .airgap, token: Bool = false) -> I.Wanted {
        I.Wanted(role: role, source: source, version: v1315,
                 binarySHA: source == .airgap ? binary : nil, installerSHA: source == .airgap ? installer : nil,
                 configSHA: config, token: token)
    }

    /// A host where everything is as wanted and the service runs.
    func installed(token: Bool = false) -> I.Facts {
        I.Facts(version: v1315,
                hashes: [I.binaryPath: binary, I.installerPath: installer, K3sConfigFile.path: config],
                configMode: 0o600, unitPresent: true, activeState: "active", subState: "running",
                tokenCurrent: token)
    }

    func testFreshHostGetsEverythingThenStarts() {
        XCTAssertEqual(I.plan(I.Facts(), wanted()),
                       [.uploadBinary, .uploadInstaller, .writeConfig, .runInstaller, .start])
        XCTAssertEqual(I.plan(I.Facts(), wanted(.agent, token: true)),
                       [.uploadBinary, .uploadInstaller, .writeConfig, .writeToken, .runInstaller, .start])
        XCTAssertEqual(I.plan(I.Facts(), wanted(source: .script)), [.writeConfig, .runInstaller, .start])
    }

    func testNothingToDoWhenVersionConfigAndServiceMatch() {
        XCTAssertEqual(I.plan(installed(), wanted()), [])
        XCTAssertEqual(I.plan(installed(token: true), wanted(.agent, token: true)), [])
        var script = installed()
        script.hashes[I.binaryPath] = "whatever the script downloaded"
        XCTAssertEqual(I.plan(script, wanted(source: .script)), [])
    }

    func testConfigChangeRestartsWithoutReinstalling() {
        var f = installed()
        f.hashes[K3sConfigFile.path] = "old"
        XCTAssertEqual(I.plan(f, wanted()), [.writeConfig, .restart])
        f = installed()
        f.configMode = 0o644
        XCTAssertEqual(I.plan(f, wanted()), [.writeConfig, .restart], "a readable config is rewritten 0600")
    }

    func testNewTokenRestartsTheAgent() {
        XCTAssertEqual(I.plan(installed(token: false), wanted(.agent, token: true)), [.writeToken, .restart])
    }

    func testNewBinaryReinstallsAndRestarts() {
        var f = installed()
        f.hashes[I.binaryPath] = "older"
        XCTAssertEqual(I.plan(f, wanted()), [.uploadBinary, .runInstaller, .restart])
    }

    func testStoppedOrFailingServiceIsStartedOrRestarted() {
        var f = installed()
        f.activeState = "inactive"
        f.subState = "dead"
        XCTAssertEqual(I.plan(f, wanted()), [.start])
        f.activeState = "failed"
        XCTAssertEqual(I.plan(f, wanted()), [.start])
        f.activeState = "activating"
        f.subState = "auto-restart"
        XCTAssertEqual(I.plan(f, wanted()), [.restart])
        f.subState = "start"
        XCTAssertEqual(I.plan(f, wanted()), [], "starting up: nothing to change")
    }

    func testMissingUnitRunsTheInstaller() {
        var f = installed()
        f.unitPresent = false
        XCTAssertEqual(I.plan(f, wanted()), [.runInstaller, .restart])
    }

    func testImagesAreUploadedWhenTheyDiffer() {
        var w = wanted()
        let path = I.imagesDirectory + "/k3s-airgap-images-amd64.tar.zst"
        w.images = [path: "img"]
        XCTAssertEqual(I.plan(installed(), w), [.uploadImage(path), .restart])
        var f = installed()
        f.hashes[path] = "img"
        XCTAssertEqual(I.plan(f, w), [])
    }

    func testInstallerCommandsPinTheVersionAndNeverCarryAToken() {
        XCTAssertEqual(I.installerCommand(.server, source: .airgap, version: v1315),
                       "INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_SKIP_START=true INSTALL_K3S_VERSION=v1.31.5+k3s1 "
                        + "INSTALL_K3S_EXEC=server sh /var/lib/rancher/fleet/install.sh")
        XCTAssertEqual(I.installerCommand(.agent, source: .airgap, version: v1315),
                       "INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_SKIP_START=true INSTALL_K3S_VERSION=v1.31.5+k3s1 "
                        + "INSTALL_K3S_EXEC=agent sh /var/lib/rancher/fleet/install.sh")
        XCTAssertEqual(I.installerCommand(.server, source: .script, version: v1315),
                       "mkdir -p /var/lib/rancher/fleet && curl -sfL --retry 3 -o /var/lib/rancher/fleet/install.sh "
                        + "https://get.k3s.io && INSTALL_K3S_SKIP_START=true INSTALL_K3S_VERSION=v1.31.5+k3s1 "
                        + "sh /var/lib/rancher/fleet/install.sh server")
        XCTAssertTrue(I.installerCommand(.agent, source: .script, version: v1315).hasSuffix(" agent"))
        for role in [I.Role.server, .agent] {
            for source in K3sSource.allCases {
                let c = I.installerCommand(role, source: source, version: v1315)
                XCTAssertFalse(c.contains("TOKEN") || c.contains("K3S_URL"), c)
            }
        }
    }

    func testParsesFacts() {
        let output = """
            @@fleet-fact:token
            same
            @@fleet-fact:version
            k3s version v1.31.5+k3s1 (standin)
            @@fleet-fact:sha
            \(binary)  /usr/local/bin/k3s
            \(config)  /etc/rancher/k3s/config.yaml
            @@fleet-fact:mode
            600
            @@fleet-fact:unit
            yes
            @@fleet-fact:show
            ActiveState=active
            SubState=running
            NRestarts=2

            """
        let f = I.parseFacts(output)
        XCTAssertEqual(f, I.Facts(version: v1315,
                                  hashes: [I.binaryPath: binary, K3sConfigFile.path: config],
                                  configMode: 0o600, unitPresent: true, activeState: "active", subState: "running",
                                  restarts: 2, tokenCurrent: true))
        let empty = I.parseFacts("@@fleet-fact:version\n@@fleet-fact:sha\n@@fleet-fact:show\n")
        XCTAssertEqual(empty, I.Facts())
    }

    func testFactScriptComparesTheTokenOverStdinFirst() {
        let w = wanted(.agent, token: true)
        let script = I.factScript(w, paths: [I.binaryPath, K3sConfigFile.path]).command
        XCTAssertTrue(script.hasPrefix("echo @@fleet-fact:token; { cmp -s - /etc/rancher/k3s/fleet-token && echo same; }"), script)
        XCTAssertTrue(script.contains("systemctl show -p ActiveState -p SubState -p NRestarts k3s-agent"))
        XCTAssertFalse(I.factScript(wanted(), paths: []).command.contains("cmp"))
    }

    func testStartReadsTheLogLengthAfterStoppingTheOldProcess() {
        XCTAssertEqual(I.startCommand(.agent, stopFirst: true),
                       "systemctl stop k3s-agent >/dev/null 2>&1; "
                        + "n=$(journalctl -u k3s-agent --no-pager -o cat 2>/dev/null | grep -vc '^-- No entries --$'); "
                        + "systemctl reset-failed k3s-agent >/dev/null 2>&1; systemctl start --no-block k3s-agent && echo \"$n\"")
        XCTAssertTrue(I.startCommand(.server, stopFirst: false).hasPrefix("n=$(journalctl -u k3s "))
    }

    func testFactSections() {
        var script = FactScript()
        script.add("a", "echo one")
        script.add("b", "false")
        XCTAssertEqual(script.command, "echo @@fleet-fact:a; { echo one; } 2>/dev/null\necho @@fleet-fact:b; { false; } 2>/dev/null\ntrue")
        XCTAssertEqual(FactScript.sections("noise\n@@fleet-fact:a\none\ntwo\n@@fleet-fact:b\n@@fleet-fact:c\nlast"),
                       ["a": "one\ntwo\n", "b": "", "c": "last\n"])
    }

    // MARK: A version change is an upgrade's job

    func testAnotherInstalledVersionIsRefusedWithNothingPlannedBeforeIt() throws {
        for source in K3sSource.allCases {
            var older = installed()
            older.version = K3sVersion("v1.30.9+k3s1")
            let why = try XCTUnwrap(I.refusal(older, wanted(source: source)))
            XCTAssertTrue(why.contains("K3s v1.30.9+k3s1 runs here and the inventory wants v1.31.5+k3s1"), why)
            XCTAssertTrue(why.contains("fleet upgrade"), why)
            XCTAssertTrue(why.contains("k3s_version = \"v1.30.9+k3s1\""), why)
            var newer = installed()
            newer.version = K3sVersion("v1.32.0+k3s1")
            XCTAssertNotNil(I.refusal(newer, wanted(source: source)), "a downgrade is refused too")
            XCTAssertNil(I.refusal(installed(), wanted(source: source)), "the same version is not a change")
        }
    }

    func testANewHostGetsTheInventorysVersion() {
        for source in K3sSource.allCases {
            XCTAssertNil(I.refusal(I.Facts(), wanted(source: source)), "nothing installed: nothing to refuse")
            XCTAssertTrue(I.plan(I.Facts(), wanted(source: source)).contains(.runInstaller))
        }
        XCTAssertTrue(I.installerCommand(.agent, source: .script, version: v1315).contains("INSTALL_K3S_VERSION=v1.31.5+k3s1"))
    }
}
