import FleetCore
@testable import FleetSteps
import Foundation
import XCTest

/// Which hosts preflight looks up for AAAA records, from what the cluster will pull; and what it says when one has
/// none. Every answer here is given as facts: no lookup is made.
final class ImageHostsTests: XCTestCase {
    func inventory(_ extra: String, cni: String = "flannel", source: String = "") throws -> Inventory {
        let text = """
            [cluster]
            k3s_version = "v1.32.10+k3s1"
            cni = "\(cni)"
            \(source)
            \(extra)
            [[hosts]]
            name = "n1"
            address = "fd10::1"
            role = "server"
            """
        return try Inventory.parse(toml: text, path: "/srv/fleet/test.toml")
    }

    static let cilium = "[addons.cilium]\nrepo = \"https://helm.cilium.io/\"\nchart = \"cilium\"\nversion = \"1.18.2\"\n"

    func testHostsFollowTheCNIAndTheAddons() throws {
        let inv = try inventory(Self.cilium + "[addons.lh]\nkind = \"longhorn\"\nrepo = \"https://charts.longhorn.io\"\nchart = \"longhorn\"\nversion = \"1.10.0\"\n",
                                cni: "cilium")
        let hosts = ImageHosts.derive(inv, systemImages: true)
        XCTAssertEqual(hosts.map(\.name), ["registry-1.docker.io", "quay.io", "helm.cilium.io", "charts.longhorn.io"])
        XCTAssertTrue(hosts[0].purpose.contains("K3s's system images") && hosts[0].purpose.contains("Longhorn"), hosts[0].purpose)
        XCTAssertEqual(ImageHosts.derive(try inventory(""), systemImages: false), [], "air-gapped flannel pulls nothing")
    }

    func testAMirrorIsCheckedInsteadOfTheRegistry() throws {
        let mirror = "[registries.mirrors.\"quay.io\"]\nendpoint = [\"https://mirror.lan.test:5000\"]\n"
        let hosts = ImageHosts.derive(try inventory(Self.cilium + mirror, cni: "cilium"), systemImages: false)
        XCTAssertEqual(hosts.map(\.name), ["mirror.lan.test", "helm.cilium.io"])
        XCTAssertTrue(hosts[0].purpose.contains("the mirror of quay.io"), hosts[0].purpose)
    }

    func testAHostWithoutAAAASaysMirrorAirgapOrNAT64() throws {
        let inv = try inventory(Self.cilium, cni: "cilium")
        var e = PreflightExpectation(host: inv.hosts[0], inventory: inv)
        e.checkInternet = true
        XCTAssertEqual(Preflight.lookupNames(e), ["github.com", "registry-1.docker.io", "quay.io", "helm.cilium.io"])
        let script = Preflight.factScript(e).command
        XCTAssertTrue(script.contains("getent ahostsv6 quay.io"), script)
        XCTAssertFalse(script.contains("curl") || script.contains("ping -6 -c1 -W2 quay"), script)
        var f = PreflightFacts(ipv6Kernel: true)
        f.lookups = ["github.com": [IPv6Address("2001:db8::1")!], "registry-1.docker.io": [IPv6Address("2001:db8::2")!],
                     "quay.io": [], "helm.cilium.io": [IPv6Address("2001:db8::3")!]]
        let warnings = Preflight.evaluate(f, e).warnings.filter { $0.contains("AAAA") }
        XCTAssertEqual(warnings.count, 1, "\(warnings)")
        XCTAssertTrue(warnings[0].contains("quay.io has no IPv6 address") && warnings[0].contains("Cilium's images"), warnings[0])
        for fix in ["[registries.mirrors]", "air-gapped", "NAT64"] { XCTAssertTrue(warnings[0].contains(fix), fix) }
    }
}
