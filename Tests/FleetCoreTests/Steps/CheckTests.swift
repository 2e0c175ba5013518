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
        return Check.evaluate(host: "h2", role: role, facts: Check.parse(text, e), expectation: e, k3sVersion: want)
    }

    func testHealthyHostHasNoFindings() {
        let e = PreflightExpectation(nodeIP: nodeIP)
        let facts = Check.parse(output(), e)
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
        return Check.evaluate(host: "h2", role: .agent, facts: Check.parse(text, e, storage: true), expectation: e,
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
        XCTAssertFalse(Check.script(e).contains("storage-"))
        let script = Check.script(e, storage: true)
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
        XCTAssertEqual(Check.dfAvailableKB("/dev/sda1 30830592 9157648 20083804 32% /"), 20083804)
        XCTAssertEqual(Check.dfAvailableKB("/dev/mapper/vg-root  100  50  50  50% /var lib"), 50)
        XCTAssertNil(Check.dfAvailableKB("df: /x: No such file"))
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

    func testResetOutcomesAndScript() {
        XCTAssertEqual(Reset.outcome(host: "a", exitCode: 0, stdout: "did:\n", stderr: "").status, "ok")
        let changed = Reset.outcome(host: "a", exitCode: 0, stdout: "did: k3s-agent-uninstall.sh /var/lib/rancher/fleet\n", stderr: "")
        XCTAssertEqual(changed.status, "changed")
        XCTAssertEqual(changed.message, "removed: k3s-agent-uninstall.sh, /var/lib/rancher/fleet")
        let failed = Reset.outcome(host: "a", exitCode: 1, stdout: "", stderr: "boom\nk3s-uninstall.sh failed\n")
        XCTAssertEqual(failed.line, "a failed: exit 1: boom; k3s-uninstall.sh failed")
        XCTAssertFalse(Reset.script(sysctl: false).contains("sysctl.d"))
        XCTAssertTrue(Reset.script(sysctl: true).contains("/etc/sysctl.d/91-fleet-ipv6-forwarding.conf"))
        XCTAssertTrue(Reset.script(sysctl: false).contains("/etc/rancher/k3s/fleet-token"))
    }

    func testResetRunsAgentsBeforeServersAndStopsWhenAnAgentFails() {
        let inv = Fixtures.inventory([("s1", .server), ("a1", .agent), ("a2", .agent)])
        let fleet = FakeFleet()
        for name in ["s1", "a1", "a2"] {
            fleet[name].on(contains: "did=", stdout: "did: /var/lib/rancher/fleet\n")
        }
        let outcomes = Reset.run(hosts: inv.hosts, connector: fleet, forks: 10, sysctl: false)
        XCTAssertEqual(outcomes.map(\.host), ["s1", "a1", "a2"], "results in inventory order")
        XCTAssertEqual(outcomes.map(\.status), ["changed", "changed", "changed"])
        let started = fleet.events.filter { $0.kind == .commandStarted }
        let server = started.first { $0.host == "s1" }!.seq
        XCTAssertTrue(fleet.events.filter { $0.kind == .commandFinished && $0.host != "s1" }.allSatisfy { $0.seq < server },
                      "the server starts after every agent finished")

        let failing = FakeFleet()
        failing["s1"].on(contains: "did=", stdout: "did:\n")
        failing["a1"].on(contains: "did=", exit: 1, stderr: "k3s-agent-uninstall.sh failed\n")
        failing["a2"].on(contains: "did=", stdout: "did:\n")
        let second = Reset.run(hosts: inv.hosts, connector: failing, forks: 10, sysctl: false)
        XCTAssertEqual(second.map(\.status), ["skipped", "failed", "ok"])
        XCTAssertTrue(second[0].message.contains("agent(s) a1 could not be reset first"), second[0].message)
        XCTAssertFalse(failing.events.contains { $0.host == "s1" && $0.kind == .commandStarted })
    }

    func testPartialResetLeavesTheClusterThroughAServerThatStays() throws {
        let inv = Fixtures.inventory([("s1", .server), ("s2", .server), ("s3", .server), ("a1", .agent)])
        let resetting = inv.hosts.filter { ["s2", "s3", "a1"].contains($0.name) }
        let staying = try XCTUnwrap(Reset.stayingServer(inv, resetting: resetting))
        XCTAssertEqual(staying.name, "s1")
        XCTAssertNil(Reset.stayingServer(inv, resetting: inv.hosts), "the whole cluster: nothing to leave")
        XCTAssertNil(Reset.firstServerProblem(inv, resetting: resetting))
        XCTAssertNil(Reset.firstServerProblem(inv, resetting: inv.hosts), "the whole cluster may go")
        let firstOnly = try XCTUnwrap(Reset.firstServerProblem(inv, resetting: inv.hosts.filter { $0.name == "s1" }))
        XCTAssertTrue(firstOnly.hasPrefix("s1 is the first server and s2, s3 would stay"), firstOnly)
        XCTAssertEqual(Reset.deleteNodeCommand("it's"),
                       "/usr/local/bin/k3s kubectl delete node 'it'\\''s' --ignore-not-found --timeout=60s </dev/null")

        let fleet = FakeFleet()
        for name in ["s2", "s3", "a1"] { fleet[name].on(contains: "did=", stdout: "did: k3s-uninstall.sh\n") }
        fleet["s1"].on(contains: "kubectl delete node", stdout: "node deleted\n")
        let outcomes = Reset.run(hosts: resetting, connector: fleet, forks: 10, sysctl: false, staying: staying)
        XCTAssertEqual(outcomes.map(\.status), ["changed", "changed", "changed"], outcomes.map(\.line).joined(separator: "\n"))
        XCTAssertTrue(outcomes[0].message.hasPrefix("node deleted through s1 (etcd member removed); removed:"), outcomes[0].message)
        XCTAssertTrue(outcomes[2].message.hasSuffix("; node deleted through s1"), outcomes[2].message)

        // The order: a1 uninstalled, then its node deleted; then per server, its node deleted, then it
        // is uninstalled, one server after the other.
        let steps = fleet.events.filter { $0.kind == .commandStarted }.map { e -> String in
            e.host == "s1" ? "delete " + (e.text.components(separatedBy: "delete node ").last?.split(separator: " ").first ?? "")
                           : "uninstall \(e.host)"
        }
        XCTAssertEqual(steps, ["uninstall a1", "delete a1", "delete s2", "uninstall s2", "delete s3", "uninstall s3"])
        XCTAssertFalse(fleet["s1"].commands.contains { $0.contains("did=") }, "the staying server is not reset")

        // A server that cannot be removed is left installed, and the next one is not touched.
        let failing = FakeFleet()
        for name in ["s2", "s3"] { failing[name].on(contains: "did=", stdout: "did: k3s-uninstall.sh\n") }
        failing["s1"].on(contains: "kubectl delete node", exit: 1, stderr: "Error from server: etcdserver: unhealthy cluster\n")
        let second = Reset.run(hosts: inv.hosts.filter { $0.name != "s1" && $0.role == .server }, connector: failing,
                               forks: 10, sysctl: false, staying: staying)
        XCTAssertEqual(second.map(\.status), ["failed", "skipped"])
        XCTAssertTrue(second[0].message.contains("could not remove it from the cluster through s1 (exit 1: Error from server: etcdserver: unhealthy cluster)"),
                      second[0].message)
        XCTAssertEqual(second[1].message, "not reset: s2 could not be removed from the cluster first")
        XCTAssertTrue(failing["s2"].commands.isEmpty && failing["s3"].commands.isEmpty, "nothing was uninstalled")
    }
}
