import FleetCore
import FleetTestSupport
@testable import FleetSteps
import Foundation
import XCTest
import Yams

final class RegistriesTests: XCTestCase {
    func testTheFileMirrorsRegistriesYAMLAndThePasswordComesFromItsFile() throws {
        let scratch = try ScratchDirectory()
        let pw = try scratch.write("pw", "hunter2-long-password\nignored\n")
        let ca = try scratch.write("ca.pem", "CA")
        let text = """
            [cluster]
            k3s_version = "v1.31.5+k3s1"

            [registries.mirrors."docker.io"]
            endpoint = ["https://mirror.test:5000"]
            [registries.mirrors."docker.io".rewrite]
            "^rancher/(.*)" = "mirrored/$1"
            [registries.mirrors."*"]
            [registries.configs."mirror.test:5000".auth]
            username = "u"
            password_file = "\(pw)"
            [registries.configs."mirror.test:5000".tls]
            ca_file = "\(ca)"

            [[hosts]]
            name = "n1"
            address = "fd10::1"
            role = "server"
            """
        let inv = try Inventory.parse(toml: text, path: scratch.file("inv.toml"))
        let config = inv.registries
        XCTAssertEqual(config.mirrors["docker.io"]?.endpoints, ["https://mirror.test:5000"])
        let password = try RegistriesFile.password(fromFile: pw)
        XCTAssertEqual(password, "hunter2-long-password")
        let yaml = try RegistriesFile.render(config, passwords: ["mirror.test:5000": password])
        let doc = try XCTUnwrap(try Yams.load(yaml: yaml) as? [String: Any])
        let mirrors = try XCTUnwrap(doc["mirrors"] as? [String: Any])
        XCTAssertNotNil(mirrors["*"], "an empty mirror entry (for the embedded registry) is kept")
        XCTAssertEqual((mirrors["docker.io"] as? [String: Any])?["rewrite"] as? [String: String], ["^rancher/(.*)": "mirrored/$1"])
        let host = try XCTUnwrap((doc["configs"] as? [String: Any])?["mirror.test:5000"] as? [String: Any])
        XCTAssertEqual((host["auth"] as? [String: Any])?["password"] as? String, password)
        XCTAssertEqual((host["tls"] as? [String: Any])?["ca_file"] as? String, "/etc/rancher/k3s/registries.d/mirror.test_5000/ca.crt")
        // The digest's inputs name the file, never its content.
        let inputs = try K3sRegistriesAction().inputs(host: inv.hosts[0], inventory: inv)
        let json = String(decoding: try JSONEncoder().encode(inputs), as: UTF8.self)
        XCTAssertFalse(json.contains(password))
    }

    func testAPasswordInTheInventoryIsNotAKey() throws {
        let text = """
            [cluster]
            k3s_version = "v1.31.5+k3s1"
            [registries.configs."r.test".auth]
            username = "u"
            password = "plain"
            [[hosts]]
            name = "n1"
            address = "fd10::1"
            role = "server"
            """
        XCTAssertThrowsError(try Inventory.parse(toml: text, path: "/srv/inv.toml")) { error in
            XCTAssertTrue("\(error)".contains("password_file"), "\(error)")
        }
    }

    func testRestartOnlyWhenSomethingChanged() {
        let path = RegistriesFile.path
        XCTAssertEqual(K3sRegistriesAction.plan(remote: [path: "a"], wanted: [path: "a"], fleetOwned: true, running: true), [])
        XCTAssertEqual(K3sRegistriesAction.plan(remote: [path: "a"], wanted: [path: "b"], fleetOwned: true, running: true),
                       [.write(path), .restart])
        XCTAssertEqual(K3sRegistriesAction.plan(remote: [:], wanted: [path: "b"], fleetOwned: false, running: false), [.write(path)])
        XCTAssertEqual(K3sRegistriesAction.plan(remote: [path: "a"], wanted: [path: nil], fleetOwned: false, running: true), [],
                       "a file fleet did not write stays")
        XCTAssertEqual(K3sRegistriesAction.plan(remote: [path: "a"], wanted: [path: nil], fleetOwned: true, running: true),
                       [.remove(path), .restart])
    }

    func testEmbeddedRegistryNeedsV1322OnIPv6() {
        func parse(_ version: String) -> String {
            let text = "[cluster]\nk3s_version = \"\(version)\"\nembedded_registry = true\n[[hosts]]\nname = \"n1\"\naddress = \"fd10::1\"\nrole = \"server\"\n"
            do { _ = try Inventory.parse(toml: text, path: "/srv/inv.toml"); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(parse("v1.32.1+k3s1").contains("cluster.embedded_registry"))
        XCTAssertEqual(parse("v1.32.2+k3s1"), "")
    }
}
