import FleetTestSupport
import Foundation
import XCTest

@testable import FleetCore
import FleetSteps

final class InventoryValidationTests: XCTestCase {
    private let base = InventoryFixture.cluster
    private let server = InventoryFixture.oneServer

    private func withCluster(_ keys: String, hosts: String = InventoryFixture.oneServer) -> String {
        "[cluster]\nk3s_version = \"v1.31.5+k3s1\"\n\(keys)\n\n" + hosts
    }

    // MARK: - Error format

    func testErrorDescriptionNamesFileLineKeyHostAndValue() throws {
        let toml = base + server + InventoryFixture.host("node-3", "fd00::zz", role: "agent")
        let error = try XCTUnwrap(assertSingleError(toml, contains: [], path: "inventory/home.toml"))
        XCTAssertEqual(error.file, "inventory/home.toml")
        XCTAssertEqual(error.line, 10)
        XCTAssertEqual(error.column, 1)
        XCTAssertEqual(error.key, "address")
        XCTAssertEqual(error.host, "node-3")
        XCTAssertEqual(error.hostIndex, 1)
        XCTAssertEqual(error.description, "inventory/home.toml:10:1: hosts[1] \"node-3\" key \"address\": \"fd00::zz\" is not an IPv6 address")
    }

    func testAllErrorsAreCollectedInFileOrder() {
        let toml = base
            + InventoryFixture.host("n1", "fd10::1")
            + InventoryFixture.host("n2", "fd10::zz", role: "agent")
            + InventoryFixture.host("n3", "fd10::3", role: "agent", extra: "port = 0")
        let errors = validationErrors(toml)
        XCTAssertEqual(errors.count, 2, errors.map(\.description).joined(separator: "\n"))
        XCTAssertEqual(errors.map(\.host), ["n2", "n3"])
        XCTAssertEqual(errors.map(\.key), ["address", "port"])
        XCTAssertEqual(errors.map(\.hostIndex), [1, 2])
        XCTAssertEqual(errors.map(\.line), [10, 17])
    }

    func testErrorsAcrossSectionsAreAllReported() {
        let toml = """
            [cluster]
            cluster_cidr = "10.42.0.0/16"

            [ssh]
            forks = 0

            [preflight]
            probe = "192.0.2.1"

            """ + server
        let errors = validationErrors(toml)
        // A missing key points at its table's header.
        XCTAssertEqual(errors.map(\.key), ["cluster.k3s_version", "cluster.cluster_cidr", "ssh.forks", "preflight.probe"])
        XCTAssertEqual(errors.map(\.line), [1, 2, 5, 8])
    }

    // MARK: - Unknown keys and types

    func testUnknownKeyInSectionSuggestsTheClosest() {
        let error = assertSingleError(base + "[ssh]\nusr = \"root\"\n\n" + server, contains: ["key \"ssh.usr\"", "unknown key", "did you mean \"user\"?"])
        XCTAssertEqual(error?.line, 4)
    }

    func testUnknownTableSuggestsTheClosest() {
        assertSingleError(base + "[preflght]\nprobe = \"fd10::9\"\n\n" + server, contains: ["key \"preflght\"", "did you mean \"preflight\"?"])
    }

    func testUnknownKeyWithoutCloseMatchListsAllowedKeys() {
        assertSingleError(base + "[k3s]\nchannel = \"stable\"\n\n" + server, contains: ["key \"k3s.channel\"", "allowed: source, airgap_dir"])
    }

    func testUnknownHostKeyNamesTheHost() {
        let toml = base + InventoryFixture.host("n1", "fd10::1", extra: "nodeip = \"fd10::1\"")
        assertSingleError(toml, contains: ["hosts[0] \"n1\"", "key \"nodeip\"", "did you mean \"node_ip\"?"])
    }

    func testWrongTypeNamesExpectedTypeAndValue() {
        assertSingleError(base + "[ssh]\nport = \"22\"\n\n" + server, contains: ["key \"ssh.port\"", "expected an integer", "string \"22\""])
        assertSingleError(withCluster("flannel_ipv6_masq = \"yes\""), contains: ["cluster.flannel_ipv6_masq", "expected a boolean", "\"yes\""])
        assertSingleError(withCluster("disable = \"traefik\""), contains: ["cluster.disable", "expected an array of strings", "\"traefik\""])
        assertSingleError(withCluster("tls_san = [\"a.example\", 5]"), contains: ["cluster.tls_san", "element 1 is integer 5"])
        assertSingleError(base + InventoryFixture.host("n1", "fd10::1", extra: "port = 22.5"), contains: ["\"n1\"", "key \"port\"", "floating-point number 22.5"])
        assertSingleError("ssh = 5\n" + base + server, contains: ["key \"ssh\"", "expected a table"])
    }

    func testHostsMustBeAnArrayOfTables() {
        assertSingleError(base + "[hosts]\nname = \"n1\"\n", contains: ["key \"hosts\"", "[[hosts]]"])
    }

    // MARK: - Ranges of numbers

    func testPortRange() {
        assertSingleError(base + "[ssh]\nport = 0\n\n" + server, contains: ["ssh.port", "0 is out of range", "1 to 65535"])
        assertSingleError(base + InventoryFixture.host("n1", "fd10::1", extra: "port = 65536"), contains: ["\"n1\"", "key \"port\"", "65536", "1 to 65535"])
        XCTAssertNotNil(parseValid(base + InventoryFixture.host("n1", "fd10::1", extra: "port = 65535")))
    }

    func testForksRange() {
        assertSingleError(base + "[ssh]\nforks = 0\n\n" + server, contains: ["ssh.forks", "0 is out of range", "1 to 1000"])
        assertSingleError(base + "[ssh]\nforks = 1001\n\n" + server, contains: ["ssh.forks", "1001"])
        XCTAssertEqual(parseValid(base + "[ssh]\nforks = 1000\n\n" + server)?.ssh.forks, 1000)
    }

    func testTimeouts() {
        assertSingleError(base + "[ssh]\nconnect_timeout = 0\n\n" + server, contains: ["ssh.connect_timeout", "0 is out of range"])
        assertSingleError(base + "[ssh]\nconnect_timeout = 301\n\n" + server, contains: ["ssh.connect_timeout", "301", "at most 300"])
        assertSingleError(base + "[ssh]\ncommand_timeout = -1.5\n\n" + server, contains: ["ssh.command_timeout", "-1.5", "more than 0"])
        assertSingleError(base + "[ssh]\ncommand_timeout = nan\n\n" + server, contains: ["ssh.command_timeout", "nan"])
        XCTAssertEqual(parseValid(base + "[ssh]\nconnect_timeout = 300\n\n" + server)?.ssh.connectTimeout, 300)
    }

    func testKeepaliveInterval() {
        assertSingleError(base + "[ssh]\nkeepalive_interval = 0\n\n" + server, contains: ["ssh.keepalive_interval", "0 is out of range", "1 to 300"])
        assertSingleError(base + "[ssh]\nkeepalive_interval = 301\n\n" + server, contains: ["ssh.keepalive_interval", "301"])
        assertSingleError(base + "[ssh]\nkeepalive_interval = nan\n\n" + server, contains: ["ssh.keepalive_interval", "nan"])
        XCTAssertEqual(parseValid(base + "[ssh]\nkeepalive_interval = 2.5\n\n" + server)?.ssh.keepaliveInterval, 2.5)
        XCTAssertEqual(parseValid(base + server)?.ssh.keepaliveInterval, 10)
    }

    func testEnumerations() {
        assertSingleError(base + "[ssh]\nhost_key_policy = \"yes\"\n\n" + server, contains: ["ssh.host_key_policy", "\"yes\"", "\"strict\", \"accept-new\""])
        assertSingleError(base + "[ssh]\nbecome = \"su\"\n\n" + server, contains: ["ssh.become", "\"su\"", "\"none\", \"sudo\""])
        assertSingleError(base + "[k3s]\nsource = \"curl\"\n\n" + server, contains: ["k3s.source", "\"curl\"", "\"script\", \"airgap\""])
        assertSingleError(base + InventoryFixture.host("n1", "fd10::1", role: "master"), contains: ["\"n1\"", "key \"role\"", "\"master\"", "\"server\", \"agent\""])
    }

    // MARK: - Hosts

    func testHostNameRules() {
        assertSingleError(base + InventoryFixture.host("Node_1", "fd10::1"), contains: ["hosts[0] \"Node_1\"", "key \"name\"", "\"Node_1\"", "lowercase"])
        assertSingleError(base + InventoryFixture.host("", "fd10::1"), contains: ["hosts[0]", "key \"name\"", "must not be empty"])
        let longLabel = String(repeating: "a", count: 64)
        assertSingleError(base + InventoryFixture.host(longLabel, "fd10::1"), contains: [longLabel, "longer than 63"])
        assertSingleError(base + InventoryFixture.host("-n1", "fd10::1"), contains: ["\"-n1\"", "start and end"])
        assertSingleError(base + InventoryFixture.host("n1..x", "fd10::1"), contains: ["\"n1..x\"", "empty label"])
        XCTAssertNotNil(parseValid(base + InventoryFixture.host("rack1.node-01", "fd10::1")))
    }

    func testRequiredHostKeys() {
        let toml = base + "[[hosts]]\nrole = \"server\"\n"
        let errors = validationErrors(toml)
        XCTAssertEqual(errors.map(\.key), ["name", "address"])
        XCTAssertTrue(errors.allSatisfy { $0.description.contains("hosts[0]") && $0.description.contains("is required") })
        assertSingleError(base + "[[hosts]]\nname = \"n1\"\naddress = \"fd10::1\"\n", contains: ["\"n1\"", "key \"role\"", "is required"])
    }

    func testDuplicateHostNames() {
        let toml = base + server + InventoryFixture.host("n1", "fd10::2", role: "agent")
        let error = assertSingleError(toml, contains: ["hosts[1] \"n1\"", "key \"name\"", "\"n1\" is used twice", "hosts[0]"])
        XCTAssertEqual(error?.line, 9)
    }

    func testDuplicateAddressesCompareParsedIPv6() {
        let toml = base + server + InventoryFixture.host("n2", "FD10:0:0::1", role: "agent", extra: "node_ip = \"fd10::2\"")
        assertSingleError(toml, contains: ["hosts[1] \"n2\"", "key \"address\"", "\"FD10:0:0::1\"", "also the address of hosts[0] \"n1\""])
        let names = base + InventoryFixture.host("n1", "node.example", extra: "node_ip = \"fd10::1\"")
            + InventoryFixture.host("n2", "NODE.example.", role: "agent", extra: "node_ip = \"fd10::2\"")
        assertSingleError(names, contains: ["\"n2\"", "key \"address\"", "NODE.example."])
    }

    func testSameAddressOnDifferentPortsIsAllowed() {
        let toml = base + InventoryFixture.host("n1", "192.0.2.1", extra: "port = 2201\nnode_ip = \"fd10::1\"")
            + InventoryFixture.host("n2", "192.0.2.1", role: "agent", extra: "port = 2202\nnode_ip = \"fd10::2\"")
        XCTAssertEqual(parseValid(toml)?.hosts.count, 2)
    }

    func testDuplicateNodeIPs() {
        let toml = base + server + InventoryFixture.host("n2", "fd10::2", role: "agent", extra: "node_ip = \"fd10:0::1\"")
        assertSingleError(toml, contains: ["hosts[1] \"n2\"", "key \"node_ip\"", "\"fd10::1\"", "also the node IP of hosts[0] \"n1\""])
    }

    func testAtLeastOneHostAndOneServer() {
        assertSingleError(base, contains: ["key \"hosts\"", "at least one [[hosts]]"])
        assertSingleError("hosts = []\n" + base, contains: ["key \"hosts\"", "at least one [[hosts]]"])
        let agentsOnly = base + InventoryFixture.host("a1", "fd10::1", role: "agent") + InventoryFixture.host("a2", "fd10::2", role: "agent")
        assertSingleError(agentsOnly, contains: ["key \"hosts\"", "no host has role = \"server\""])
    }

    func testNoServerErrorIsNotAddedWhenARoleIsInvalid() {
        let toml = base + InventoryFixture.host("n1", "fd10::1", role: "srv")
        assertSingleError(toml, contains: ["\"srv\""])
    }

    func testAddressRules() {
        assertSingleError(base + InventoryFixture.host("n1", "[fd10::1]:22"), contains: ["\"n1\"", "key \"address\"", "\"[fd10::1]:22\"", "port = 22"])
        assertSingleError(base + InventoryFixture.host("n1", "192.0.2.1:22", extra: "node_ip = \"fd10::1\""), contains: ["\"192.0.2.1:22\"", "`port`"])
        assertSingleError(base + InventoryFixture.host("n1", "fe80::1%eth0", extra: "node_ip = \"fd10::1\""), contains: ["\"fe80::1%eth0\"", "zone"])
        assertSingleError(base + InventoryFixture.host("n1", "[node.example]", extra: "node_ip = \"fd10::1\""), contains: ["\"[node.example]\"", "brackets"])
        assertSingleError(base + InventoryFixture.host("n1", "300.1.1.1", extra: "node_ip = \"fd10::1\""), contains: ["\"300.1.1.1\"", "not a valid IPv4"])
        assertSingleError(base + InventoryFixture.host("n1", "bad_name.example", extra: "node_ip = \"fd10::1\""), contains: ["\"bad_name.example\"", "DNS name"])
        assertSingleError(base + InventoryFixture.host("n1", ""), contains: ["key \"address\"", "must not be empty"])
    }

    func testNodeIPIsRequiredForNonIPv6Addresses() {
        assertSingleError(base + InventoryFixture.host("n1", "node1.example"), contains: ["\"n1\"", "key \"node_ip\"", "is required", "\"node1.example\" is a DNS name"])
        assertSingleError(base + InventoryFixture.host("n1", "192.0.2.1"), contains: ["\"n1\"", "key \"node_ip\"", "\"192.0.2.1\" is an IPv4 address"])
    }

    func testNodeIPRules() {
        assertSingleError(base + InventoryFixture.host("n1", "fd10::1", extra: "node_ip = \"192.0.2.1\""), contains: ["\"n1\"", "key \"node_ip\"", "\"192.0.2.1\"", "IPv4"])
        assertSingleError(base + InventoryFixture.host("n1", "fd10::1", extra: "node_ip = \"fe80::1\""), contains: ["\"n1\"", "key \"node_ip\"", "\"fe80::1\"", "link-local"])
        assertSingleError(base + InventoryFixture.host("n1", "fd10::1", extra: "node_ip = \"::1\""), contains: ["\"n1\"", "key \"node_ip\"", "\"::1\"", "loopback"])
        assertSingleError(base + InventoryFixture.host("n1", "fd10::1", extra: "node_ip = \"::\""), contains: ["\"::\"", "unspecified"])
        assertSingleError(base + InventoryFixture.host("n1", "fe80::5"), contains: ["\"n1\"", "key \"node_ip\"", "defaults to address \"fe80::5\"", "link-local"])
    }

    func testNodeIPMustBeOutsideTheClusterRanges() {
        assertSingleError(base + InventoryFixture.host("n1", "fd00:42::5"), contains: ["\"n1\"", "key \"node_ip\"", "\"fd00:42::5\"", "inside cluster_cidr \"fd00:42::/56\""])
        assertSingleError(base + InventoryFixture.host("n1", "fd10::1", extra: "node_ip = \"fd00:43::20\""),
            contains: ["\"n1\"", "key \"node_ip\"", "\"fd00:43::20\"", "inside service_cidr \"fd00:43::/112\""])
    }

    func testRAInterfaceName() {
        assertSingleError(base + InventoryFixture.host("n1", "fd10::1", extra: "ra_interface = \"a-very-long-interface0\""),
            contains: ["\"n1\"", "key \"ra_interface\"", "\"a-very-long-interface0\"", "15 characters"])
        assertSingleError(base + InventoryFixture.host("n1", "fd10::1", extra: "ra_interface = \"eth 0\""), contains: ["\"eth 0\""])
    }

    func testDocumentationRangeWarnsForNodeIP() {
        assertWarning(base + InventoryFixture.host("n1", "2001:db8::5"), contains: ["host \"n1\"", "key \"node_ip\"", "2001:db8::5", "documentation"])
    }

    func testEvenNumberOfServersWarns() {
        let two = base + server + InventoryFixture.host("n2", "fd10::2")
        assertWarning(two, contains: ["2 servers", "odd number"])
        let three = two + InventoryFixture.host("n3", "fd10::3")
        XCTAssertEqual(parseValid(three)?.warnings, [])
    }

    func testNonRootUserWithoutBecomeWarns() {
        assertWarning(base + InventoryFixture.host("n1", "fd10::1", extra: "user = \"ubuntu\""), contains: ["host \"n1\"", "\"ubuntu\"", "sudo"])
    }

    // MARK: - Cluster ranges

    func testIPv4ClusterCIDR() {
        let error = assertSingleError(withCluster("cluster_cidr = \"10.42.0.0/16\""), contains: [
            "key \"cluster.cluster_cidr\"",
            "\"10.42.0.0/16\" is IPv4; an IPv6-only cluster needs an IPv6 range such as fd00:42::/56",
        ])
        XCTAssertEqual(error?.line, 3)
        assertSingleError(withCluster("service_cidr = \"10.43.0.0/16\""), contains: ["key \"cluster.service_cidr\"", "\"10.43.0.0/16\" is IPv4"])
    }

    func testCIDRHostBits() {
        assertSingleError(withCluster("cluster_cidr = \"fd00:42::1/56\""), contains: ["cluster.cluster_cidr", "\"fd00:42::1/56\"", "host bits", "fd00:42::/56"])
        assertSingleError(withCluster("service_cidr = \"fd00:43::1/112\""), contains: ["cluster.service_cidr", "\"fd00:43::1/112\"", "host bits"])
        assertSingleError(withCluster("cluster_cidr = \"fd00:42::\""), contains: ["cluster.cluster_cidr", "\"fd00:42::\"", "prefix"])
    }

    func testClusterCIDRPrefixBounds() {
        assertSingleError(withCluster("cluster_cidr = \"fd00::/47\""), contains: ["cluster.cluster_cidr", "\"fd00::/47\"", "between /48 and /64", "16 bits", "/56 gives 256 nodes"])
        assertSingleError(withCluster("cluster_cidr = \"fd00:42::/65\""), contains: ["cluster.cluster_cidr", "\"fd00:42::/65\"", "between /48 and /64"])
        XCTAssertNotNil(parseValid(withCluster("cluster_cidr = \"fd00:42::/48\"")))
        XCTAssertNotNil(parseValid(withCluster("cluster_cidr = \"fd00:42::/64\"")))
    }

    func testServiceCIDRSize() {
        assertSingleError(withCluster("service_cidr = \"fd00:43::/107\""), contains: ["cluster.service_cidr", "\"fd00:43::/107\"", "mask must be >= 108"])
        assertWarning(withCluster("service_cidr = \"fd00:43::/108\""), contains: ["cluster.service_cidr", "fd00:43::/108", "/112"])
        XCTAssertEqual(parseValid(withCluster("service_cidr = \"fd00:43::/112\""))?.warnings, [])
        XCTAssertEqual(parseValid(withCluster("service_cidr = \"fd00:43::/120\""))?.warnings, [])
        assertSingleError(withCluster("service_cidr = \"fd00:43::/126\""), contains: ["cluster.service_cidr", "too small", "10th address"])
    }

    func testRangesMustNotOverlap() {
        assertSingleError(withCluster("cluster_cidr = \"fd00:42::/56\"\nservice_cidr = \"fd00:42:0:10::/112\""),
            contains: ["cluster.service_cidr", "\"fd00:42:0:10::/112\"", "overlaps cluster_cidr \"fd00:42::/56\""])
    }

    func testDocumentationRangeWarnsForCIDRs() {
        assertWarning(withCluster("cluster_cidr = \"2001:db8:42::/56\""), contains: ["cluster.cluster_cidr", "2001:db8:42::/56", "documentation"])
        assertWarning(withCluster("service_cidr = \"2001:db8:43::/112\""), contains: ["cluster.service_cidr", "2001:db8:43::/112", "documentation"])
    }

    func testMoreHostsThanSlash64s() {
        let toml = withCluster("cluster_cidr = \"fd00:42::/64\"", hosts: server + InventoryFixture.host("n2", "fd10::2", role: "agent"))
        let error = assertSingleError(toml, contains: ["cluster.cluster_cidr", "\"fd00:42::/64\"", "room for 1 nodes", "2 hosts"])
        XCTAssertEqual(error?.line, 3)
    }

    func testClusterDNS() {
        assertSingleError(withCluster("cluster_dns = \"fd00:44::a\""), contains: ["cluster.cluster_dns", "\"fd00:44::a\"", "outside service_cidr \"fd00:43::/112\""])
        assertSingleError(withCluster("cluster_dns = \"10.43.0.10\""), contains: ["cluster.cluster_dns", "\"10.43.0.10\"", "IPv4"])
        assertSingleError(withCluster("cluster_dns = \"fd00:43::1\""), contains: ["cluster.cluster_dns", "\"fd00:43::1\"", "kubernetes API service"])
        XCTAssertEqual(parseValid(withCluster("cluster_dns = \"fd00:43::53\""))?.cluster.effectiveClusterDNS.description, "fd00:43::53")
        XCTAssertEqual(
            parseValid(withCluster("service_cidr = \"fd00:99::/120\""))?.cluster.effectiveClusterDNS.description, "fd00:99::a")
    }

    func testMasqueradeOffWithULAPodsWarns() {
        assertWarning(withCluster("flannel_ipv6_masq = false"), contains: ["cluster.flannel_ipv6_masq", "fd00:42::/56"])
        XCTAssertEqual(parseValid(withCluster("flannel_ipv6_masq = false\ncluster_cidr = \"2a01:4f8:1:2::/64\""))?.warnings, [])
    }

    func testDisableUnknownComponentWarns() {
        assertWarning(withCluster("disable = [\"traefik\", \"traefic\"]"), contains: ["cluster.disable", "\"traefic\"", "did you mean \"traefik\"?"])
        XCTAssertEqual(parseValid(withCluster("disable = [\"traefik\", \"servicelb\", \"local-storage\", \"metrics-server\", \"coredns\", \"network-policy\", \"helm-controller\"]"))?.warnings, [])
    }

    func testTLSSANEntries() {
        assertSingleError(withCluster("tls_san = [\"[fd00::1]\"]"), contains: ["cluster.tls_san", "\"[fd00::1]\"", "without brackets"])
    }

    func testClusterName() {
        assertSingleError(withCluster("name = \"my cluster\""), contains: ["cluster.name", "\"my cluster\""])
        XCTAssertEqual(parseValid(withCluster("name = \"Lab_2\""))?.cluster.name, "Lab_2")
    }

    // MARK: - K3s

    func testK3sVersionIsRequired() {
        let error = assertSingleError("[cluster]\nname = \"x\"\n\n" + server, contains: ["key \"cluster.k3s_version\"", "is required", "v1.31.5+k3s1"])
        XCTAssertEqual(error?.line, 1)
        assertSingleError(server, contains: ["key \"cluster.k3s_version\"", "is required"])
    }

    func testK3sVersionShape() {
        func toml(_ version: String) -> String { "[cluster]\nk3s_version = \"\(version)\"\n\n" + server }
        assertSingleError(toml("latest"), contains: ["cluster.k3s_version", "\"latest\"", "channel"])
        assertSingleError(toml("stable"), contains: ["\"stable\"", "channel"])
        for bad in ["1.31.5+k3s1", "v1.31.5", "v1.31+k3s1", "v1.31.5+k3s", "v1.31.5-rc1+k3s1", "v1.31.5+rke2r1", " v1.31.5+k3s1"] {
            assertSingleError(toml(bad), contains: ["cluster.k3s_version", "\"\(bad)\"", "vMAJOR.MINOR.PATCH+k3sN"])
        }
        assertSingleError(toml("v1.22.8+k3s1"), contains: ["\"v1.22.8+k3s1\"", "v1.22.9+k3s1"])
        XCTAssertNotNil(parseValid(toml("v1.22.9+k3s1")))
        XCTAssertNotNil(parseValid(toml("v1.33.10+k3s2")))
    }

    func testAirgapNeedsAnExistingDirectoryWithK3sAndInstallScript() throws {
        assertSingleError(base + "[k3s]\nsource = \"airgap\"\n\n" + server, contains: ["key \"k3s.airgap_dir\"", "is required when source = \"airgap\""])

        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let path = directory.path + "/inventory.toml"
        let missing = base + "[k3s]\nsource = \"airgap\"\nairgap_dir = \"nowhere\"\n\n" + server
        assertSingleError(missing, contains: ["k3s.airgap_dir", "\(directory.path)/nowhere", "does not exist"], path: path)

        _ = try directory.write("bundle/k3s", "binary")
        let incomplete = base + "[k3s]\nsource = \"airgap\"\nairgap_dir = \"bundle\"\n\n" + server
        assertSingleError(incomplete, contains: ["k3s.airgap_dir", "\(directory.path)/bundle", "lacks install.sh"], path: path)

        _ = try directory.write("bundle/install.sh", "#!/bin/sh\n")
        let inventory = try XCTUnwrap(parseValid(incomplete, path: path))
        XCTAssertEqual(inventory.k3s.airgapDir, directory.path + "/bundle")
        XCTAssertEqual(inventory.warnings.map(\.key), ["k3s.airgap_dir"], "missing image tarball should warn")

        _ = try directory.write("bundle/k3s-airgap-images-amd64.tar.zst", "images")
        XCTAssertEqual(parseValid(incomplete, path: path)?.warnings, [])
    }

    func testAirgapDirIsIgnoredWithScriptSource() {
        assertWarning(base + "[k3s]\nairgap_dir = \"/nonexistent\"\n\n" + server, contains: ["k3s.airgap_dir", "ignored"])
    }

    // MARK: - Preflight

    func testPreflightProbeMustBeIPv6() {
        assertSingleError(base + "[preflight]\nprobe = \"192.0.2.1\"\n\n" + server, contains: ["key \"preflight.probe\"", "\"192.0.2.1\"", "not an IPv6 address"])
        assertSingleError(base + "[preflight]\nprobe = \"router\"\n\n" + server, contains: ["preflight.probe", "\"router\""])
    }

    // MARK: - Robustness

    func testOddInputsNeverCrash() {
        let inputs = [
            "", "[cluster]", "hosts = 5", "hosts = [1, 2]", "[[hosts]]", "[[hosts]]\nname = 5\naddress = []\nrole = {}\n",
            "cluster = { k3s_version = \"v1.31.5+k3s1\" }\nhosts = [{ name = \"n1\", address = \"fd10::1\", role = \"server\" }]",
            "[cluster]\nk3s_version = \"v1.31.5+k3s1\"\n[[hosts]]\nname = \"n1\"\naddress = \"\\u0000\"\nrole = \"server\"\n",
            "x = \"\0\"",
        ]
        for input in inputs {
            XCTAssertNoThrow(try? Inventory.parse(toml: input, path: "odd.toml"), input)
        }
        XCTAssertNotNil(try? Inventory.parse(toml: inputs[6], path: "odd.toml"), "inline tables are valid TOML")
    }

    func testInlineTableErrorsPointAtTheirLine() {
        let toml = "cluster = { k3s_version = \"v1.31.5+k3s1\" }\n\nhosts = [\n  { name = \"n1\", address = \"fd10::1\", role = \"server\" },\n  { name = \"n2\", address = \"fd10::zz\", role = \"agent\" },\n]\n"
        let error = assertSingleError(toml, contains: ["hosts[1] \"n2\"", "\"fd10::zz\""])
        XCTAssertEqual(error?.line, 3)
    }

    // MARK: - registration_address

    func testRegistrationAddressMustBeAServerOrNamedByTheCertificate() throws {
        let hosts = InventoryFixture.host("s1", "fd10::1") + InventoryFixture.host("s2", "fd10::2")
            + InventoryFixture.host("s3", "fd10::3") + InventoryFixture.host("a1", "fd10::4", role: "agent")
        func cluster(_ keys: String) -> String { withCluster(keys, hosts: hosts) }

        let viaSecond = try XCTUnwrap(parseValid(cluster("registration_address = \"fd10:0::2\"")))
        XCTAssertEqual(viaSecond.cluster.registrationAddress, "fd10::2")
        XCTAssertEqual(viaSecond.registrationURL, "https://[fd10::2]:6443")
        let byName = try XCTUnwrap(parseValid(cluster("tls_san = [\"k3s.example.org\"]\nregistration_address = \"k3s.example.org\"")))
        XCTAssertEqual(byName.registrationURL, "https://k3s.example.org:6443")
        let floating = try XCTUnwrap(parseValid(cluster("tls_san = [\"fd10::100\"]\nregistration_address = \"fd10::100\"")))
        XCTAssertEqual(floating.registrationURL, "https://[fd10::100]:6443")
        let none = try XCTUnwrap(parseValid(cluster("")))
        XCTAssertEqual(none.registrationURL, "https://[fd10::1]:6443", "default: the first server")

        assertSingleError(cluster("registration_address = \"fd10::4\""),
                          contains: ["registration_address", "node_ip of agent", "agents register with a server"])
        assertSingleError(cluster("registration_address = \"fd10::99\""),
                          contains: ["neither a server's node_ip nor in tls_san", "add it to tls_san"])
        assertSingleError(cluster("registration_address = \"k3s.example.org\""),
                          contains: ["neither a server's node_ip nor in tls_san"])
        assertSingleError(cluster("registration_address = \"[fd10::2]\""), contains: ["without brackets"])
        assertSingleError(cluster("registration_address = \"192.0.2.7\""), contains: ["is IPv4"])
        assertSingleError(cluster("registration_address = \"no spaces allowed\""), contains: ["not an IPv6 address or DNS name"])
    }
}
