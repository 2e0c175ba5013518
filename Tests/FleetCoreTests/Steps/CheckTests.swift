import FleetCore
@testable import FleetSteps
import FleetTestSupport
import Foundation
import XCTest

final class CheckTests: XCTestCase {
    let nodeIP = IPv6Address("fd42:f1ee:7:75::1:2")!

    /// Fact script output of a healthy host, with `addr`, `route`, `disk` and `k3s` replaceable.
    func output(addr: String? = nil, route: String = "default via fd42:f1ee:7:75::1 dev lan0 metric 1024 pref medium",
                disk: String = "/var/lib/rancher\n/dev/sda1 30830592 9157648 20083804 32% /",
                initSystem: String = "systemd-running\nsystemctl", k3s: String = "", uninstall: String = "") -> String {
        let a = addr ?? "2: lan0    inet6 fd42:f1ee:7:75::1:2/64 scope global nodad \\       valid_lft forever preferred_lft forever"
        return """
            @@fleet-fact:tools
            @@fleet-fact:kernel
            yes
            @@fleet-fact:disable
            /proc/sys/net/ipv6/conf/all/disable_ipv6 0
            /proc/sys/net/ipv6/conf/default/disable_ipv6 0
            @@fleet-fact:addr
            \(a)
            @@fleet-fact:route
            \(route)
            @@fleet-fact:resolv
            nameserver fd42:f1ee:7:75::1
            @@fleet-fact:resolved
            @@fleet-fact:hosts
            127.0.0.1 localhost
            ::1 localhost ip6-localhost ip6-loopback
            @@fleet-fact:disk
            \(disk)
            @@fleet-fact:init
            \(initSystem)
            @@fleet-fact:k3s
            \(k3s)
            @@fleet-fact:uninstall
            \(uninstall)
            """
    }

    func findings(_ text: String, role: HostRole = .agent, want: String = "v1.31.5+k3s1") -> [CheckFinding] {
        let want = K3sVersion(want)!
        let e = PreflightExpectation(nodeIP: nodeIP)
        return CheckVerb.evaluate(host: "h2", role: role, facts: CheckVerb.parse(text, e), expectation: e, k3sVersion: want)
    }

    func testHealthyHostHasNoFindings() {
        let e = PreflightExpectation(nodeIP: nodeIP)
        let facts = CheckVerb.parse(output(), e)
        XCTAssertEqual(facts.freeKB, 20083804)
        XCTAssertEqual(facts.diskPath, "/var/lib/rancher")
        XCTAssertTrue(facts.systemdRunning && facts.systemctl)
        XCTAssertNil(facts.k3sVersion)
        XCTAssertEqual(findings(output()), [])
    }

    func storageOutput(os: String, tools: [String], iscsid: String, pm: String) -> String {
        output() + "\n@@fleet-fact:storage-os\n\(os)\n@@fleet-fact:storage-tools\n" + tools.joined(separator: "\n")
            + "\n@@fleet-fact:storage-iscsid\n\(iscsid)\n@@fleet-fact:storage-pm\n\(pm)\n"
    }

    func storageFindings(_ text: String) -> [CheckFinding] {
        let e = PreflightExpectation(nodeIP: nodeIP)
        return CheckVerb.evaluate(host: "h2", role: .agent, facts: CheckVerb.parse(text, e, storage: true), expectation: e,
                                  k3sVersion: K3sVersion("v1.31.5+k3s1")!)
    }

    func testStoragePrerequisitesAreReportedOnlyWhenAskedFor() {
        let all = StoragePrereqs.tools
        let debian = "ID=debian\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\""
        XCTAssertEqual(storageFindings(storageOutput(os: debian, tools: all, iscsid: "active", pm: "apt-get")), [])

        let missing = storageFindings(storageOutput(os: debian, tools: all.filter { $0 != "iscsiadm" && $0 != "mount.nfs" },
                                                    iscsid: "inactive", pm: "apt-get"))
        XCTAssertEqual(missing, [CheckFinding(
            host: "h2", severity: .warning, check: "storage",
            message: "Longhorn prerequisites: missing iscsiadm, mount.nfs4 (NFSv4 client) (packages open-iscsi nfs-common); iscsid not active",
            fix: "the storage playbook (fleet up … --playbook playbooks/storage.toml) runs: "
                + "DEBIAN_FRONTEND=noninteractive apt-get update -q && "
                + "DEBIAN_FRONTEND=noninteractive apt-get install -y open-iscsi nfs-common && systemctl enable --now iscsid")])

        let unknown = storageFindings(storageOutput(os: "ID=plan9", tools: ["bash"], iscsid: "inactive", pm: ""))
        XCTAssertEqual(unknown.map(\.severity), [.error])
        XCTAssertTrue(unknown[0].fix.contains("is not one fleet installs packages on"), unknown[0].fix)

        // Without --storage the same host has no storage finding, and the script does not ask.
        XCTAssertEqual(findings(storageOutput(os: debian, tools: [], iscsid: "inactive", pm: "apt-get")), [])
        let e = PreflightExpectation(nodeIP: nodeIP)
        XCTAssertFalse(CheckVerb.script(e).contains("storage-"))
        let script = CheckVerb.script(e, storage: true)
        let markers = script.components(separatedBy: "echo @@fleet-fact:").dropFirst().map { String($0.prefix { $0 != ";" }) }
        XCTAssertEqual(markers.count, Set(markers).count, "a section name repeats: \(markers)")
        XCTAssertTrue(markers.contains("storage-tools") && markers.contains("tools"), "\(markers)")
    }

    func testDynamicAddressIsAnErrorWithItsFix() {
        let dyn = "2: lan0    inet6 fd42:f1ee:7:75::1:2/64 scope global dynamic \\       valid_lft 3599sec preferred_lft 3599sec"
        let f = findings(output(addr: dyn))
        XCTAssertEqual(f.count, 1)
        XCTAssertEqual(f[0].severity, .error)
        XCTAssertEqual(f[0].check, "node_ip")
        XCTAssertTrue(f[0].message.contains("is dynamic"), f[0].message)
        XCTAssertTrue(f[0].fix.contains("statically"), f[0].fix)
        XCTAssertTrue(f[0].line.hasPrefix("h2 ERROR: node_ip fd42:f1ee:7:75::1:2 on lan0"), f[0].line)
        XCTAssertTrue(f[0].line.contains(" — K3s does not survive"), f[0].line)
    }

    func testMissingDefaultRouteAndMissingAddress() {
        let f = findings(output(addr: "", route: ""))
        XCTAssertEqual(Set(f.map(\.check)), ["node_ip", "default_route"])
        XCTAssertTrue(f.allSatisfy { $0.severity == .error })
        let route = f.first { $0.check == "default_route" }!
        XCTAssertTrue(route.fix.contains("ip -6 route add default"), route.fix)
    }

    func testProblemAndFixAreSplitWhereTheyAreMadeNotAtTheFirstColon() {
        // The host has other global addresses: their list holds ": ", which must stay in the message.
        let other = "2: lan0    inet6 fd42:f1ee:7:75::9:9/64 scope global nodad \\       valid_lft forever preferred_lft forever"
        let f = findings(output(addr: other))
        let nodeIP = try? XCTUnwrap(f.first { $0.check == "node_ip" })
        XCTAssertEqual(nodeIP?.message, "node_ip fd42:f1ee:7:75::1:2 is not an address of this host (its global IPv6 addresses: fd42:f1ee:7:75::9:9 (lan0))")
        XCTAssertEqual(nodeIP?.fix, "add fd42:f1ee:7:75::1:2 statically to the node's interface, or set node_ip in the inventory to one of its addresses")
    }

    func testDiskThresholds() {
        XCTAssertEqual(CheckVerb.dfAvailableKB("/dev/sda1 30830592 9157648 20083804 32% /"), 20083804)
        XCTAssertEqual(CheckVerb.dfAvailableKB("/dev/mapper/vg-root  100  50  50  50% /var lib"), 50)
        XCTAssertNil(CheckVerb.dfAvailableKB("df: /x: No such file"))
        let low = findings(output(disk: "/var/lib\n/dev/sda1 30830592 9157648 1048576 99% /"))
        XCTAssertEqual(low.map(\.severity), [.warning])
        XCTAssertTrue(low[0].message.contains("1.0 GiB free on /var/lib (where /var/lib/rancher will be)"), low[0].message)
        let full = findings(output(disk: "/var/lib/rancher\n/dev/sda1 30830592 9157648 102400 99% /"))
        XCTAssertEqual(full.map(\.severity), [.error])
        XCTAssertEqual(full[0].check, "disk")
        let unknown = findings(output(disk: ""))
        XCTAssertEqual(unknown.map(\.check), ["disk"])
    }

    func testInitSystem() {
        XCTAssertEqual(findings(output(initSystem: "")).map(\.check), ["init"])
        XCTAssertEqual(findings(output(initSystem: "systemctl")), [], "systemctl on PATH is enough")
        XCTAssertEqual(findings(output(initSystem: "openrc")).map(\.message),
                       ["OpenRC found, but fleet's steps drive K3s through systemd"])
    }

    func testInstalledVersionAndRole() {
        XCTAssertEqual(findings(output(k3s: "k3s version v1.31.5+k3s1 (56ec5dd4)\ngo version go1.22.10", uninstall: "k3s-agent")), [])
        let older = findings(output(k3s: "k3s version v1.30.2+k3s1 (abc)", uninstall: "k3s-agent"))
        XCTAssertEqual(older.map(\.severity), [.error], "up would refuse it")
        XCTAssertEqual(older[0].message, "K3s v1.30.2+k3s1 is installed, the inventory wants v1.31.5+k3s1: "
                        + "up refuses to change the version of a node that already runs K3s")
        XCTAssertTrue(older[0].fix.contains("fleet upgrade"), older[0].fix)
        let newer = findings(output(k3s: "k3s version v1.32.0+k3s1 (abc)"))
        XCTAssertEqual(newer.map(\.check), ["k3s_version"])
        for finding in older + newer {
            XCTAssertFalse(finding.message.contains("up will") || finding.fix.contains("let up"), "check no longer advertises an upgrade by up")
        }
        let role = findings(output(k3s: "k3s version v1.31.5+k3s1 (abc)", uninstall: "k3s"))
        XCTAssertEqual(role.map(\.check), ["k3s_role"])
        XCTAssertTrue(role[0].fix.contains("fleet reset --limit h2"))
    }

    func testJSONLine() throws {
        let f = CheckFinding(host: "h3", severity: .error, check: "default_route", message: "no route", fix: "add one")
        let obj = try JSONSerialization.jsonObject(with: Data(f.jsonLine.utf8)) as? [String: String]
        XCTAssertEqual(obj, ["host": "h3", "severity": "error", "check": "default_route", "message": "no route", "fix": "add one"])
        XCTAssertFalse(f.jsonLine.contains("\n"))
    }

    func testResetOutcomesAndScript() throws {
        XCTAssertEqual(try ResetVerb.outcome(exitCode: 0, stdout: "did:\n", stderr: "").get().message, "nothing installed")
        let changed = try ResetVerb.outcome(exitCode: 0, stdout: "did: k3s-agent-uninstall.sh /var/lib/rancher/fleet\n", stderr: "").get()
        XCTAssertEqual(changed.status, .changed)
        XCTAssertEqual(changed.message, "removed: k3s-agent-uninstall.sh, /var/lib/rancher/fleet")
        guard case .failure(let failed) = ResetVerb.outcome(exitCode: 1, stdout: "", stderr: "boom\nk3s-uninstall.sh failed\n") else {
            return XCTFail("a failed script is a failure")
        }
        XCTAssertEqual(failed.message, "exit 1: boom; k3s-uninstall.sh failed")
        XCTAssertFalse(ResetVerb.script(sysctl: false).contains("sysctl.d"))
        XCTAssertTrue(ResetVerb.script(sysctl: true).contains("/etc/sysctl.d/91-fleet-ipv6-forwarding.conf"))
        XCTAssertTrue(ResetVerb.script(sysctl: false).contains("/etc/rancher/k3s/fleet-token"))
        let reset = ResetVerb.script(sysctl: false)
        let links = try XCTUnwrap(reset.range(of: "cilium_host cilium_net cilium_vxlan"))
        let killall = try XCTUnwrap(reset.range(of: "k3s-killall.sh") ?? reset.range(of: "uninstall"))
        XCTAssertLessThan(links.lowerBound, killall.lowerBound, "Cilium's links go before K3s is stopped")
    }
}
