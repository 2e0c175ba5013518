import FleetCore
@testable import FleetSteps
import Foundation
import XCTest

final class PreflightTests: XCTestCase {
    // `ip -6 -o addr show` on a host with a static lab address, a SLAAC address, a privacy address,
    // a DHCPv6 lease, a deprecated one and a link-local one.
    let addrShow = """
        1: lo    inet6 ::1/128 scope host noprefixroute \\       valid_lft forever preferred_lft forever
        2: lan0    inet6 fd42:f1ee:7:74::1:1/64 scope global nodad \\       valid_lft forever preferred_lft forever
        2: lan0    inet6 fe80::fc80:41ff:fe3b:d1da/64 scope link \\       valid_lft forever preferred_lft forever
        3: eth0    inet6 2001:db8:1:0:5054:ff:fe12:3456/64 scope global dynamic mngtmpaddr noprefixroute \\       valid_lft 86389sec preferred_lft 14389sec
        3: eth0    inet6 2001:db8:1:0:a1b2:c3d4:e5f6:789/64 scope global temporary dynamic \\       valid_lft 86389sec preferred_lft 3589sec
        4: eth1@if9    inet6 2001:db8:2::77/128 scope global dynamic noprefixroute \\       valid_lft 7150sec preferred_lft 7150sec
        5: eth2    inet6 2001:db8:3::9/64 scope global deprecated \\       valid_lft forever preferred_lft 0sec
        """

    func testParsesAddressLines() {
        let a = IPOutput.addresses(addrShow)
        XCTAssertEqual(a.count, 7)
        XCTAssertEqual(a[0], InterfaceAddress(interface: "lo", address: IPv6Address("::1")!, prefixLength: 128,
                                              scope: "host", flags: ["noprefixroute"]))
        XCTAssertEqual(a[1], InterfaceAddress(interface: "lan0", address: IPv6Address("fd42:f1ee:7:74::1:1")!,
                                              prefixLength: 64, scope: "global", flags: ["nodad"]))
        XCTAssertEqual(a[3].flags, ["dynamic", "mngtmpaddr", "noprefixroute"])
        XCTAssertEqual(a[3].validLifetime, 86389)
        XCTAssertEqual(a[3].preferredLifetime, 14389)
        XCTAssertEqual(a[4].flags, ["temporary", "dynamic"])
        XCTAssertEqual(a[5].interface, "eth1", "the @ifN peer suffix is dropped")
        XCTAssertEqual(a[5].prefixLength, 128)
        XCTAssertEqual(a[6].flags, ["deprecated"])
        XCTAssertNil(a[6].validLifetime)
        XCTAssertEqual(a[6].preferredLifetime, 0)
    }

    func testParsesDefaultRoutes() {
        XCTAssertEqual(IPOutput.defaultRoute("default via fd42:f1ee:7:74::1 dev lan0 metric 1024 pref medium\n"),
                       IPOutput.DefaultRoute(via: IPv6Address("fd42:f1ee:7:74::1"), interfaces: ["lan0"]))
        XCTAssertEqual(IPOutput.defaultRoute("default dev wg0 metric 1024 pref medium\n"),
                       IPOutput.DefaultRoute(via: nil, interfaces: ["wg0"]))
        let multipath = """
            default proto ra metric 1024 expires 1779sec pref medium
            \tnexthop via fe80::1 dev eth0 weight 1
            \tnexthop via fe80::2 dev eth1 weight 1
            """
        XCTAssertEqual(IPOutput.defaultRoute(multipath),
                       IPOutput.DefaultRoute(via: IPv6Address("fe80::1"), interfaces: ["eth0", "eth1"]))
        XCTAssertNil(IPOutput.defaultRoute(""))
        XCTAssertNil(IPOutput.defaultRoute("unreachable default dev lo proto kernel metric 4294967295 pref medium\n"))
    }

    func good(_ ip: String = "fd42:f1ee:7:74::1:1") -> PreflightFacts {
        PreflightFacts(
            disableIPv6: ["all": "0", "default": "0", "lo": "0", "lan0": "0"],
            addresses: IPOutput.addresses(addrShow),
            defaultRoute: IPOutput.DefaultRoute(via: IPv6Address("fd42:f1ee:7:74::1"), interfaces: ["lan0"]),
            resolvConf: "nameserver fd42:f1ee:7:74::1\n",
            hosts: "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
            probeStatus: 0)
    }

    func expect(_ ip: String = "fd42:f1ee:7:74::1:1", probe: String? = "fd42:f1ee:7:74::1") -> PreflightExpectation {
        PreflightExpectation(nodeIP: IPv6Address(ip)!, probe: probe.flatMap(IPv6Address.init))
    }

    func testAHealthyHostPasses() {
        let r = Preflight.evaluate(good(), expect())
        XCTAssertEqual(r.failures, [])
        XCTAssertEqual(r.warnings, [])
        XCTAssertTrue(r.passed.contains("node_ip fd42:f1ee:7:74::1:1 on lan0 (global, static)"), "\(r.passed)")
        XCTAssertTrue(r.passed.contains("probe fd42:f1ee:7:74::1 answers"))
        XCTAssertTrue(r.passed.contains("IPv6 nameserver fd42:f1ee:7:74::1"))
    }

    func testNodeIPIsComparedAsAnAddress() {
        let r = Preflight.evaluate(good(), expect("fd42:f1ee:0007:0074:0:0:1:1"))
        XCTAssertEqual(r.failures, [])
    }

    func testSaysWhichFlagMakesTheAddressDynamic() {
        var f = good()
        f.defaultRoute = IPOutput.DefaultRoute(via: IPv6Address("fe80::1"), interfaces: ["eth0"])
        let slaac = Preflight.evaluate(f, expect("2001:db8:1:0:5054:ff:fe12:3456"))
        XCTAssertEqual(slaac.failures.count, 1)
        XCTAssertTrue(slaac.failures[0].contains("is dynamic"), slaac.failures[0])
        XCTAssertTrue(slaac.failures[0].contains("mngtmpaddr"), slaac.failures[0])
        XCTAssertTrue(slaac.failures[0].contains("valid_lft 86389sec, not forever"), slaac.failures[0])
        XCTAssertTrue(slaac.failures[0].contains("K3s does not survive a node address change"), slaac.failures[0])

        let privacy = Preflight.evaluate(f, expect("2001:db8:1:0:a1b2:c3d4:e5f6:789"))
        XCTAssertTrue(privacy.failures[0].contains("temporary (privacy) address"), privacy.failures[0])

        let lease = Preflight.evaluate(f, expect("2001:db8:2::77"))
        XCTAssertTrue(lease.failures[0].contains("dynamic"))
        XCTAssertTrue(lease.failures[0].contains("valid_lft 7150sec"))
        XCTAssertFalse(lease.failures[0].contains("mngtmpaddr"))

        let old = Preflight.evaluate(f, expect("2001:db8:3::9"))
        XCTAssertTrue(old.failures[0].contains("deprecated"), old.failures[0])

        let linkLocal = Preflight.evaluate(f, expect("fe80::fc80:41ff:fe3b:d1da"))
        XCTAssertTrue(linkLocal.failures[0].contains("scope link, not global"), linkLocal.failures[0])
    }

    func testDynamicAddressesOnlyWarnWhenAllowed() {
        var e = expect("2001:db8:2::77")
        e.allowDynamicAddress = true
        var f = good()
        f.defaultRoute = IPOutput.DefaultRoute(via: nil, interfaces: ["eth1"])
        let r = Preflight.evaluate(f, e)
        XCTAssertEqual(r.failures, [])
        XCTAssertTrue(r.warnings.contains { $0.contains("dynamic") && $0.contains("allow_dynamic_address") }, "\(r.warnings)")

        // A privacy address changes for sure: still a failure.
        e.nodeIP = IPv6Address("2001:db8:1:0:a1b2:c3d4:e5f6:789")!
        f.defaultRoute = IPOutput.DefaultRoute(via: nil, interfaces: ["eth0"])
        XCTAssertEqual(Preflight.evaluate(f, e).failures.count, 1)
    }

    func testListsEveryProblemWithItsFix() {
        let f = PreflightFacts(
            disableIPv6: ["all": "0", "default": "0", "eth0": "1"],
            addresses: IPOutput.addresses(addrShow).filter { $0.interface == "lo" },
            defaultRoute: nil,
            resolvConf: "# generated\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nsearch example.org\n",
            hosts: "127.0.0.1 localhost\n# ::1 localhost\n::1 ip6-localhost\n",
            probeStatus: 1)
        let r = Preflight.evaluate(f, expect())
        XCTAssertEqual(r.failures.count, 5, r.failures.joined(separator: "\n"))
        XCTAssertTrue(r.failures[0].hasPrefix("node_ip fd42:f1ee:7:74::1:1 is not an address of this host (it has no global IPv6 address at all)"), r.failures[0])
        XCTAssertTrue(r.failures[0].contains("disable_ipv6 = 1 on eth0"))
        XCTAssertTrue(r.failures[1].contains("no IPv6 default route"))
        XCTAssertTrue(r.failures[1].contains("ip -6 route add default"))
        XCTAssertTrue(r.failures[2].contains("no answer from probe fd42:f1ee:7:74::1"))
        XCTAssertTrue(r.failures[3].contains("lists only 10.0.0.2, 10.0.0.3"), r.failures[3])
        XCTAssertTrue(r.failures[3].contains("k3s#11675"))
        XCTAssertTrue(r.failures[4].contains("::1 localhost"))
        let message = Preflight.message(r, skippedInternet: true)
        XCTAssertTrue(message.hasPrefix("5 problem(s):\n  - node_ip"), message)
    }

    func testResolvedStubFallsBackToTheRealResolvers() {
        var f = good()
        f.resolvConf = "nameserver 127.0.0.53\noptions edns0 trust-ad\n"
        f.resolvedConf = "nameserver 2001:4860:4860::8888\nnameserver 192.0.2.53\n"
        XCTAssertEqual(Preflight.evaluate(f, expect()).failures, [])
        f.resolvedConf = "nameserver 192.0.2.53\n"
        let r = Preflight.evaluate(f, expect())
        XCTAssertEqual(r.failures.count, 1)
        XCTAssertTrue(r.failures[0].contains("/run/systemd/resolve/resolv.conf"), r.failures[0])
        f.resolvConf = "nameserver ::1\n"
        f.resolvedConf = nil
        XCTAssertTrue(Preflight.evaluate(f, expect()).failures[0].contains("no usable nameserver"))
        f.resolvConf = "nameserver fe80::1%eth0\n"
        XCTAssertEqual(Preflight.evaluate(f, expect()).failures, [], "a link-local resolver with a zone is IPv6")
    }

    func testWarnsWhenTheDefaultRouteLeavesThroughAnotherInterface() {
        var f = good()
        f.defaultRoute = IPOutput.DefaultRoute(via: IPv6Address("fe80::1"), interfaces: ["eth0"])
        let r = Preflight.evaluate(f, expect())
        XCTAssertEqual(r.failures, [])
        XCTAssertTrue(r.warnings.first?.contains("flannel-iface") ?? false, "\(r.warnings)")
    }

    func testDisabledIPv6() {
        var f = good()
        f.ipv6Kernel = false
        f.addresses = []
        let off = Preflight.evaluate(f, expect())
        XCTAssertTrue(off.failures[0].contains("ipv6.disable=1"), "\(off.failures)")
        f = good()
        f.disableIPv6["default"] = "1"
        let sysctlOff = Preflight.evaluate(f, expect())
        XCTAssertEqual(sysctlOff.failures, [])
        XCTAssertTrue(sysctlOff.warnings[0].contains("kernel-ipv6 step"), "\(sysctlOff.warnings)")
    }

    func testMissingIPCommandIsNamed() {
        var f = good()
        f.ipTool = false
        XCTAssertEqual(Preflight.evaluate(f, expect()).failures, ["the ip command is missing, so addresses and routes cannot be checked: install iproute2"])
        XCTAssertFalse(Preflight.parseFacts("@@fleet-fact:tools\nip\n", expect(probe: nil)).ipTool)
        XCTAssertTrue(Preflight.parseFacts("@@fleet-fact:tools\n", expect(probe: nil)).ipTool)
    }

    func testProbeIsOptionalAndPingMissingIsNamed() {
        var f = good()
        f.probeStatus = nil
        XCTAssertEqual(Preflight.evaluate(f, expect(probe: nil)).failures, [])
        f.probeStatus = 127
        XCTAssertTrue(Preflight.evaluate(f, expect()).failures[0].contains("ping is not installed"))
    }

    func testInternetCheckIsNameResolutionOnly() {
        let getent = """
            ::ffff:140.82.121.4 STREAM github.com
            ::ffff:140.82.121.4 DGRAM
            ::ffff:140.82.121.4 RAW
            """
        XCTAssertEqual(Preflight.getentAddresses(getent), [])
        let registry = """
            2600:1f18:2148:bc01::1 STREAM registry-1.docker.io
            2600:1f18:2148:bc01::1 DGRAM
            2600:1f18:2148:bc02::2 STREAM
            """
        XCTAssertEqual(Preflight.getentAddresses(registry), [IPv6Address("2600:1f18:2148:bc01::1")!, IPv6Address("2600:1f18:2148:bc02::2")!])

        var e = expect()
        e.checkInternet = true
        e.source = .script
        XCTAssertEqual(Preflight.lookupNames(e), ["github.com", "registry-1.docker.io"])
        var f = good()
        f.lookups = ["github.com": [], "registry-1.docker.io": Preflight.getentAddresses(registry)]
        let r = Preflight.evaluate(f, e)
        XCTAssertEqual(r.failures, [], "no IPv6 to GitHub is a warning, not a failure")
        XCTAssertEqual(r.warnings.count, 1)
        XCTAssertTrue(r.warnings[0].contains("github.com has no IPv6 address"), r.warnings[0])
        XCTAssertTrue(r.warnings[0].contains("source = \"airgap\""), r.warnings[0])
        XCTAssertTrue(r.warnings[0].contains("hybrid"), r.warnings[0])

        // Air-gapped with the images tarball: nothing to fetch from outside.
        e.source = .airgap
        e.imagesBundled = true
        XCTAssertEqual(Preflight.lookupNames(e), [])
        // The lookups are only in the fact script when the check is on, and never connect anywhere.
        XCTAssertFalse(Preflight.factScript(expect()).command.contains("getent"))
        e.imagesBundled = false
        let script = Preflight.factScript(e).command
        XCTAssertTrue(script.contains("timeout 5 getent ahostsv6 registry-1.docker.io"), script)
        XCTAssertFalse(script.contains("curl") || script.contains("wget") || script.contains("nc "), script)
    }

    func testParsesTheFactScriptOutput() {
        let e = expect()
        let output = """
            @@fleet-fact:kernel
            yes
            @@fleet-fact:disable
            /proc/sys/net/ipv6/conf/all/disable_ipv6 0
            /proc/sys/net/ipv6/conf/default/disable_ipv6 0
            /proc/sys/net/ipv6/conf/lan0/disable_ipv6 0
            /proc/sys/net/ipv6/conf/lo/disable_ipv6 0
            @@fleet-fact:addr
            1: lo    inet6 ::1/128 scope host \\       valid_lft forever preferred_lft forever
            2: lan0    inet6 fd42:f1ee:7:74::1:1/64 scope global nodad \\       valid_lft forever preferred_lft forever
            @@fleet-fact:route
            default via fd42:f1ee:7:74::1 dev lan0 metric 1024 pref medium
            @@fleet-fact:resolv
            nameserver fd42:f1ee:7:74::1
            @@fleet-fact:resolved
            @@fleet-fact:hosts
            127.0.0.1 localhost
            ::1 localhost ip6-localhost ip6-loopback
            @@fleet-fact:probe
            0

            """
        let f = Preflight.parseFacts(output, e)
        XCTAssertTrue(f.ipv6Kernel)
        XCTAssertEqual(f.disableIPv6, ["all": "0", "default": "0", "lan0": "0", "lo": "0"])
        XCTAssertEqual(f.addresses.count, 2)
        XCTAssertEqual(f.defaultRoute?.interfaces, ["lan0"])
        XCTAssertNil(f.resolvedConf)
        XCTAssertEqual(f.probeStatus, 0)
        XCTAssertNil(f.lookups)
        XCTAssertEqual(Preflight.evaluate(f, e).failures, [])
    }

    func testHostsFile() {
        XCTAssertTrue(Preflight.hostsHasIPv6Localhost("::1 localhost\n"))
        XCTAssertTrue(Preflight.hostsHasIPv6Localhost("0:0:0:0:0:0:0:1\tip6-localhost localhost # loopback\n"))
        XCTAssertFalse(Preflight.hostsHasIPv6Localhost("127.0.0.1 localhost\n::1 ip6-localhost\n"))
        XCTAssertFalse(Preflight.hostsHasIPv6Localhost("#::1 localhost\n"))
    }
}
