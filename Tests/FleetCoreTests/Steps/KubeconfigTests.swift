import FleetCore
import FleetTestSupport
@testable import FleetSteps
import Foundation
import XCTest

final class KubeconfigTests: XCTestCase {
    /// The shape K3s writes on an IPv6-only server (data shortened).
    static let k3sYAML = """
        apiVersion: v1
        clusters:
        - cluster:
            certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
            server: https://[::1]:6443
          name: default
        contexts:
        - context:
            cluster: default
            user: default
          name: default
        current-context: default
        kind: Config
        preferences: {}
        users:
        - name: default
          user:
            client-certificate-data: Q0VSVA==
            client-key-data: S0VZ

        """

    func testPointsAtTheServerAndRenamesDefault() throws {
        let out = try KubeconfigVerb.rewrite(Self.k3sYAML, clusterName: "lab", host: "[fd42:f1ee:7:1::1:1]")
        XCTAssertEqual(out, """
            apiVersion: v1
            clusters:
            - cluster:
                certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
                server: https://[fd42:f1ee:7:1::1:1]:6443
              name: "lab"
            contexts:
            - context:
                cluster: "lab"
                user: "lab"
              name: "lab"
            current-context: "lab"
            kind: Config
            preferences: {}
            users:
            - name: "lab"
              user:
                client-certificate-data: Q0VSVA==
                client-key-data: S0VZ

            """)
    }

    func testIPv4LoopbackCustomPortAndNamesThatLookLikeOtherTypes() throws {
        let text = Self.k3sYAML.replacingOccurrences(of: "https://[::1]:6443", with: "https://127.0.0.1:7443")
        let out = try KubeconfigVerb.rewrite(text, clusterName: "0600", host: "[2001:db8::10]")
        XCTAssertTrue(out.contains("server: https://[2001:db8::10]:7443\n"), out)
        XCTAssertTrue(out.contains("current-context: \"0600\"\n"), "a name is always a string: \(out)")
        XCTAssertFalse(out.contains("default"), out)
    }

    func testOtherEntriesAreKept() throws {
        let text = Self.k3sYAML.replacingOccurrences(of: "users:\n", with: """
            users:
            - name: someone-else
              user:
                token: abc

            """)
        let out = try KubeconfigVerb.rewrite(text, clusterName: "prod", host: "[fd00::1]")
        XCTAssertTrue(out.contains("- name: someone-else\n  user:\n    token: abc\n"), out)
        XCTAssertTrue(out.contains("- name: \"prod\"\n"), out)
    }

    func testRefusesWhatIsNotAKubeconfig() {
        XCTAssertThrowsError(try KubeconfigVerb.rewrite("just text", clusterName: "x", host: "[fd00::1]"))
        XCTAssertThrowsError(try KubeconfigVerb.rewrite("a: [1, 2", clusterName: "x", host: "[fd00::1]"))
        XCTAssertThrowsError(try KubeconfigVerb.rewrite("kind: Config\n", clusterName: "x", host: "[fd00::1]"))
    }

    func testPort() {
        XCTAssertEqual(KubeconfigVerb.port(of: "https://[::1]:6443"), 6443)
        XCTAssertEqual(KubeconfigVerb.port(of: "https://[::1]:16443/"), 16443)
        XCTAssertEqual(KubeconfigVerb.port(of: "https://[::1]"), 6443)
        XCTAssertEqual(KubeconfigVerb.port(of: "https://127.0.0.1:7443"), 7443)
    }

    func testSavesWithMode0600AndReplacesAtomically() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let path = dir.file("sub/lab.kubeconfig")
        try KubeconfigVerb.save("one\n", to: path)
        try KubeconfigVerb.save("two\n", to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "two\n")
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.file("sub")), ["lab.kubeconfig"])
    }

    func testDefaultOutputIsBesideTheInventory() {
        let inv = Fixtures.inventory([("s1", .server)], path: "/srv/clusters/inventory/prod.toml", clusterName: "prod")
        XCTAssertEqual(KubeconfigVerb.defaultOutput(for: inv), "/srv/clusters/inventory/prod.kubeconfig")
    }

    func testServerChoiceIsAServerOrATLSSAN() throws {
        let base = Fixtures.inventory([("s1", .server), ("s2", .server), ("s3", .server), ("a1", .agent)])
        var cluster = base.cluster
        cluster.tlsSAN = ["k3s.example.org", "2001:db8::100"]
        let inv = try Inventory(path: base.path, cluster: cluster, k3s: base.k3s, hosts: base.hosts)

        let first = try KubeconfigVerb.endpoint(nil, in: inv)
        XCTAssertEqual(first.read.name, "s1")
        XCTAssertEqual(first.host, "[fd00:10::1]")
        let s2 = try KubeconfigVerb.endpoint("s2", in: inv)
        XCTAssertEqual(s2.read.name, "s2", "read from the chosen server")
        XCTAssertEqual(s2.host, "[fd00:10::2]")
        XCTAssertEqual(try KubeconfigVerb.endpoint("fd00:10:0::3", in: inv).read.name, "s3", "a server's node_ip names it too")
        let name = try KubeconfigVerb.endpoint("k3s.example.org", in: inv)
        XCTAssertEqual(name.read.name, "s1")
        XCTAssertEqual(name.host, "k3s.example.org")
        XCTAssertEqual(try KubeconfigVerb.endpoint("[2001:DB8:0::100]", in: inv).host, "[2001:db8::100]")
        XCTAssertThrowsError(try KubeconfigVerb.endpoint("a1", in: inv)) { error in
            XCTAssertTrue("\(error)".contains("--server \"a1\" is neither a server of"), "\(error)")
            XCTAssertTrue("\(error)".contains("(s1, s2, s3)") && "\(error)".contains("k3s.example.org, 2001:db8::100"), "\(error)")
        }

        let out = try KubeconfigVerb.rewrite(Self.k3sYAML, clusterName: "lab", host: name.host)
        XCTAssertTrue(out.contains("server: https://k3s.example.org:6443\n"), out)
    }
}
