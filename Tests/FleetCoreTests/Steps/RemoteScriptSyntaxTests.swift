import FleetCore
import FleetTestSupport
@testable import FleetSteps
import Foundation
import XCTest

/// Every shell script fleet sends to a host, rendered with sample inputs (awkward ones where the
/// input is free text: quotes, spaces, `$`), is valid POSIX sh: `/bin/sh -n` (dash on Debian, the
/// shell sshd runs commands with there) parses it without running it. The upload script is
/// FleetSSH's and is checked with it.
final class RemoteScriptSyntaxTests: XCTestCase {
    /// `sh -n`'s complaint about `script`, or nil when it parses.
    static func syntaxError(_ script: String) throws -> String? {
        let r = LocalCommand.run(["/bin/sh", "-n"], stdin: Data(script.utf8))
        return r.status == 0 ? nil : r.stderrText
    }

    func assertParses(_ scripts: [String: String], file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertFalse(scripts.isEmpty, file: file, line: line)
        for (name, script) in scripts.sorted(by: { $0.key < $1.key }) {
            XCTAssertFalse(script.isEmpty, "\(name) is empty", file: file, line: line)
            if let error = try Self.syntaxError(script) {
                XCTFail("\(name) does not parse: \(error)\n\(script)", file: file, line: line)
            }
        }
    }

    func testTheCheckerFindsABrokenScript() throws {
        XCTAssertNil(try Self.syntaxError("if true; then echo 'a b'; fi"))
        XCTAssertNotNil(try Self.syntaxError("if true; then echo"))
        XCTAssertNotNil(try Self.syntaxError("echo 'unterminated"))
        XCTAssertNotNil(try Self.syntaxError("{ echo; ) 2>/dev/null"))
    }

    // MARK: Fact scripts

    func testPreflightAndCheckFactScripts() throws {
        let node = IPv6Address("fd00:10::1")!
        var scripts: [String: String] = [:]
        for source in [K3sSource.script, .airgap] {
            let e = PreflightExpectation(nodeIP: node, probe: IPv6Address("2001:db8::1"), checkInternet: true,
                                         source: source)
            scripts["preflight \(source)"] = Preflight.factScript(e).command
            scripts["check \(source)"] = CheckVerb.script(e)
            scripts["check --storage \(source)"] = CheckVerb.script(e, storage: true)
        }
        scripts["preflight, no probe"] = Preflight.factScript(PreflightExpectation(nodeIP: node)).command
        try assertParses(scripts)
    }

    func testK3sInstallScripts() throws {
        var scripts: [String: String] = [:]
        for role in [K3sInstall.Role.server, .agent] {
            for source in [K3sSource.airgap, .script] {
                let w = K3sInstall.Wanted(role: role, source: source, version: K3sVersion("v1.31.5+k3s1")!, binarySHA: "ab",
                                          installerSHA: "cd", images: [:], configSHA: "ef", token: role == .agent)
                let paths = [K3sInstall.binaryPath, K3sInstall.installerPath, K3sConfigFile.path,
                             K3sInstall.imagesDirectory + "/k3s-airgap-images-amd64 (copy).tar.zst"]
                scripts["facts \(role) \(source)"] = K3sInstall.factScript(w, paths: paths).command
                scripts["installer \(role) \(source)"] = K3sInstall.installerCommand(role, source: source,
                                                                                      version: K3sVersion("v1.31.5+k3s1")!)
            }
            scripts["start \(role)"] = K3sInstall.startCommand(role, stopFirst: false)
            scripts["restart \(role)"] = K3sInstall.startCommand(role, stopFirst: true)
            scripts["show \(role)"] = K3sInstall.showCommand(role)
            scripts["journal \(role)"] = K3sInstall.journalCommand(role)
        }
        try assertParses(scripts)
    }

    func testVerifyResetAndStorageScripts() throws {
        var scripts: [String: String] = [
            "verify": Verify.command,
            "verify with add-ons": Verify.command(addons: true),
            "add-on facts": K3sAddonsAction.factScript().command,
            "registries facts": K3sRegistriesAction.factScript(paths: [RegistriesFile.path, "/etc/rancher/k3s/registries.d/h_1/ca.crt"],
                                                               service: "k3s").command,
            "add-on removal": K3sAddonsAction.removeCommand("my-addon"),
            "add-on pod log": AddonStatus.logCommand(pod: "helm-install-x-abcde"),
            "add-on job pods": AddonStatus.podsCommand(job: "helm-install-x"),
            "reset": ResetVerb.script(sysctl: false),
            "reset --sysctl": ResetVerb.script(sysctl: true),
            "delete node": ResetVerb.deleteNodeCommand("node 'one' $x"),
            "storage facts": StoragePrereqs.factScript.command,
        ]
        for (family, managers) in [(DistroFamily.debian, ["apt-get"]), (.rhel, ["dnf"]), (.rhel, ["yum"]),
                                   (.suse, ["zypper"])] {
            let packages = StoragePrereqs.tools.map { StoragePrereqs.package($0, family) }
            let install = try XCTUnwrap(StoragePrereqs.installCommand(family, managers, packages))
            scripts["storage install \(family) \(managers[0])"] = install.joined(separator: "\n")
        }
        try assertParses(scripts)
    }

    // MARK: What the built-in actions and forwarding send, captured from a run

    func testCommandsOfABuiltInActionRun() throws {
        let fleet = FakeFleet()
        let host = fleet.host("s1")
        host.setSysctl("net.ipv6.conf.all.disable_ipv6", "1")
        host.setSysctl("net.ipv6.conf.all.forwarding", "0")
        host.setSysctl("net.ipv6.conf.default.forwarding", "0")
        host.setSysctl("net.ipv6.conf.default.accept_ra", "1")
        host.setSysctl("net.ipv6.conf.eth0.accept_ra", "1")
        host.makeDirectory("/proc/sys/net/ipv6/conf/eth0")
        host.setFile("/etc/it's here/token", "K10secret::server:abc\n", mode: 0o600)
        _ = host.on(contains: "ip -6 route show default", stdout: "default via fe80::1 dev eth0 proto ra metric 1024\n")
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "kernel"
            action = "sysctl"
            file = "/etc/sysctl.d/90-fleet-ipv6.conf"
            [steps.values]
            "net.ipv6.conf.all.disable_ipv6" = 0

            [[steps]]
            name = "file"
            action = "upload"
            content = "name {{ host.name }}\\n"
            dest = "/etc/it's here/a file"
            mode = "0600"

            [[steps]]
            name = "shell"
            action = "shell"
            check = "test -e \\"/etc/it's here/done\\""
            command = "echo {{ host.name }}"

            [[steps]]
            name = "wait"
            action = "wait_for"
            command = "true"

            [[steps]]
            name = "token"
            action = "fetch_secret"
            path = "/etc/it's here/token"
            secret = "token"

            [[steps]]
            name = "forwarding"
            action = "ipv6_forwarding"
            """, registry: K3sActions.registry)
        let summary = FakeRun.run(book, inventory: Fixtures.inventory([("s1", .server)]), fleet: fleet)
        for step in ["kernel", "file", "shell", "wait", "token", "forwarding"] {
            XCTAssertEqual(summary.status("s1", step)?.succeeded, true, "\(step): \(summary.results)")
        }
        let commands = fleet.allCommands
        XCTAssertGreaterThanOrEqual(commands.count, 8, "\(commands)")
        try assertParses(Dictionary(commands.enumerated().map { ("command \($0.offset)", $0.element) },
                                    uniquingKeysWith: { a, _ in a }))
    }
}
