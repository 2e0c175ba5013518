import FleetTestSupport
import Foundation
import XCTest

@testable import FleetCore
import FleetSteps

final class InventoryParseTests: XCTestCase {
    func testFullInventoryWithEveryKey() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        _ = try directory.write("bundle/k3s", "binary")
        _ = try directory.write("bundle/install.sh", "#!/bin/sh\n")
        _ = try directory.write("bundle/k3s-airgap-images-amd64.tar.zst", "images")
        let toml = """
            [cluster]
            name = "lab-1"
            cluster_cidr = "fd00:aa::/48"
            service_cidr = "fd00:bb::/108"
            cluster_dns = "fd00:bb::53"
            flannel_ipv6_masq = false
            disable = ["traefik", "servicelb"]
            k3s_version = "v1.31.5+k3s1"
            tls_san = ["api.example.net", "fd12::10", "*.k3s.example.net"]

            [k3s]
            source = "airgap"
            airgap_dir = "bundle"

            [ssh]
            user = "admin"
            port = 2200
            identity = "keys/id_ed25519"
            known_hosts = "/etc/fleet/known_hosts"
            host_key_policy = "accept-new"
            connect_timeout = 2.5
            command_timeout = 1200
            forks = 7
            become = "sudo"

            [preflight]
            probe = "fd12::1"
            check_internet = false

            [[hosts]]
            name = "s1"
            address = "[fd12::11]"
            role = "server"
            user = "root"
            port = 22
            identity = "/keys/s1"
            node_ip = "fd12:1::11"
            ra_interface = "enp1s0"
            become = "none"

            [[hosts]]
            name = "a1.example"
            address = "a1.example.net"
            role = "agent"
            node_ip = "fd12:1::21"
            """
        let path = directory.path + "/inventory.toml"
        let inventory = try XCTUnwrap(parseValid(toml, path: path))

        XCTAssertEqual(inventory.path, path)
        XCTAssertEqual(inventory.cluster.name, "lab-1")
        XCTAssertEqual(inventory.cluster.clusterCIDR.description, "fd00:aa::/48")
        XCTAssertEqual(inventory.cluster.serviceCIDR.description, "fd00:bb::/108")
        XCTAssertEqual(inventory.cluster.clusterDNS, IPv6Address("fd00:bb::53"))
        XCTAssertEqual(inventory.cluster.effectiveClusterDNS.description, "fd00:bb::53")
        XCTAssertFalse(inventory.cluster.flannelIPv6Masq)
        XCTAssertEqual(inventory.cluster.disable, ["traefik", "servicelb"])
        XCTAssertEqual(inventory.cluster.k3sVersion, "v1.31.5+k3s1")
        XCTAssertEqual(inventory.cluster.tlsSAN, ["api.example.net", "fd12::10", "*.k3s.example.net"])

        XCTAssertEqual(inventory.k3s.source, .airgap)
        XCTAssertEqual(inventory.k3s.airgapDir, directory.path + "/bundle")

        XCTAssertEqual(inventory.ssh.user, "admin")
        XCTAssertEqual(inventory.ssh.port, 2200)
        XCTAssertEqual(inventory.ssh.identity, directory.path + "/keys/id_ed25519")
        XCTAssertEqual(inventory.ssh.knownHosts, "/etc/fleet/known_hosts")
        XCTAssertEqual(inventory.ssh.hostKeyPolicy, .acceptNew)
        XCTAssertEqual(inventory.ssh.connectTimeout, 2.5)
        XCTAssertEqual(inventory.ssh.commandTimeout, 1200)
        XCTAssertEqual(inventory.ssh.forks, 7)
        XCTAssertEqual(inventory.ssh.become, .sudo)

        XCTAssertEqual(inventory.preflight.probe, IPv6Address("fd12::1"))
        XCTAssertFalse(inventory.preflight.checkInternet)

        XCTAssertEqual(inventory.hosts.count, 2)
        let server = inventory.hosts[0]
        XCTAssertEqual(server.name, "s1")
        XCTAssertEqual(server.address, "fd12::11")
        XCTAssertEqual(server.role, .server)
        XCTAssertEqual(server.nodeIP.description, "fd12:1::11")
        XCTAssertEqual(server.raInterface, "enp1s0")
        XCTAssertEqual(server.ssh.user, "root")
        XCTAssertEqual(server.ssh.port, 22)
        XCTAssertEqual(server.ssh.identity, "/keys/s1")
        XCTAssertEqual(server.ssh.become, .none)
        XCTAssertEqual(server.ssh.forks, 7)
        XCTAssertEqual(server.ssh.knownHosts, "/etc/fleet/known_hosts")

        let agent = inventory.hosts[1]
        XCTAssertEqual(agent.name, "a1.example")
        XCTAssertEqual(agent.address, "a1.example.net")
        XCTAssertEqual(agent.role, .agent)
        XCTAssertEqual(agent.nodeIP.description, "fd12:1::21")
        XCTAssertNil(agent.raInterface)
        XCTAssertEqual(agent.ssh.user, "admin")
        XCTAssertEqual(agent.ssh.port, 2200)
        XCTAssertEqual(agent.ssh.become, .sudo)

        // The only warning: masquerading is off for a ULA pod range. /108 warns too.
        XCTAssertEqual(Set(inventory.warnings.compactMap(\.key)), ["cluster.flannel_ipv6_masq", "cluster.service_cidr"])
    }

    func testDefaults() throws {
        let inventory = try XCTUnwrap(parseValid(InventoryFixture.cluster + InventoryFixture.oneServer))
        XCTAssertEqual(inventory.cluster.name, "test")
        XCTAssertEqual(inventory.cluster.clusterCIDR.description, "fd00:42::/56")
        XCTAssertEqual(inventory.cluster.serviceCIDR.description, "fd00:43::/112")
        XCTAssertNil(inventory.cluster.clusterDNS)
        XCTAssertEqual(inventory.cluster.effectiveClusterDNS.description, "fd00:43::a")
        XCTAssertTrue(inventory.cluster.flannelIPv6Masq)
        XCTAssertEqual(inventory.cluster.disable, [])
        XCTAssertEqual(inventory.cluster.tlsSAN, [])
        XCTAssertEqual(inventory.k3s.source, .script)
        XCTAssertNil(inventory.k3s.airgapDir)

        let home = InventoryPaths.homeDirectory()
        let ssh = inventory.ssh
        XCTAssertEqual(ssh.user, "root")
        XCTAssertEqual(ssh.port, 22)
        XCTAssertNil(ssh.identity)
        XCTAssertEqual(ssh.knownHosts, home + "/.ssh/known_hosts")
        XCTAssertEqual(ssh.hostKeyPolicy, .strict)
        XCTAssertEqual(ssh.connectTimeout, 10)
        XCTAssertEqual(ssh.commandTimeout, 600)
        XCTAssertEqual(ssh.forks, 50)
        XCTAssertEqual(ssh.become, .none)

        XCTAssertNil(inventory.preflight.probe)
        XCTAssertTrue(inventory.preflight.checkInternet)

        let host = try XCTUnwrap(inventory.hosts.first)
        XCTAssertEqual(host.nodeIP, IPv6Address("fd10::1"))
        XCTAssertEqual(host.ssh, ssh)
        XCTAssertNil(host.raInterface)
        XCTAssertEqual(inventory.warnings, [])
    }

    func testDefaultsOfValueTypesMatchTheFileDefaults() {
        let settings = SSHSettings()
        XCTAssertEqual(settings.user, "root")
        XCTAssertEqual(settings.port, 22)
        XCTAssertEqual(settings.forks, 50)
        XCTAssertEqual(settings.knownHosts, InventoryPaths.homeDirectory() + "/.ssh/known_hosts")
        let cluster = ClusterConfig(name: "x", k3sVersion: "v1.31.5+k3s1")
        XCTAssertEqual(cluster.clusterCIDR.description, "fd00:42::/56")
        XCTAssertEqual(cluster.serviceCIDR.description, "fd00:43::/112")
        XCTAssertEqual(cluster.effectiveClusterDNS.description, "fd00:43::a")
    }

    func testPerHostOverridesOfUserPortIdentityAndBecome() throws {
        let toml = InventoryFixture.cluster + """
            [ssh]
            user = "deploy"
            port = 2022
            identity = "~/.ssh/fleet"
            become = "sudo"
            forks = 3

            """ + InventoryFixture.host("n1", "fd10::1", extra: "user = \"root\"\nport = 22\nidentity = \"../keys/n1\"\nbecome = \"none\"")
            + InventoryFixture.host("n2", "fd10::2", role: "agent", extra: "port = 2222")
            + InventoryFixture.host("n3", "fd10::3", role: "agent")
        let inventory = try XCTUnwrap(parseValid(toml))
        let home = InventoryPaths.homeDirectory()

        let n1 = try XCTUnwrap(inventory.host(named: "n1"))
        XCTAssertEqual(n1.ssh.user, "root")
        XCTAssertEqual(n1.ssh.port, 22)
        XCTAssertEqual(n1.ssh.identity, "/srv/fleet/keys/n1")
        XCTAssertEqual(n1.ssh.become, .none)
        XCTAssertEqual(n1.ssh.forks, 3)

        let n2 = try XCTUnwrap(inventory.host(named: "n2"))
        XCTAssertEqual(n2.ssh.user, "deploy")
        XCTAssertEqual(n2.ssh.port, 2222)
        XCTAssertEqual(n2.ssh.identity, home + "/.ssh/fleet")
        XCTAssertEqual(n2.ssh.become, .sudo)

        let n3 = try XCTUnwrap(inventory.host(named: "n3"))
        XCTAssertEqual(n3.ssh, inventory.ssh)
        XCTAssertEqual(inventory.ssh.port, 2022)
    }

    func testRolesAndLookups() throws {
        let toml = InventoryFixture.cluster
            + InventoryFixture.host("a1", "fd10::1", role: "agent")
            + InventoryFixture.host("s1", "fd10::2")
            + InventoryFixture.host("s2", "fd10::3")
            + InventoryFixture.host("s3", "fd10::4")
            + InventoryFixture.host("a2", "fd10::5", role: "agent")
        let inventory = try XCTUnwrap(parseValid(toml))
        XCTAssertEqual(inventory.servers.map(\.name), ["s1", "s2", "s3"])
        XCTAssertEqual(inventory.agents.map(\.name), ["a1", "a2"])
        XCTAssertEqual(inventory.firstServer.name, "s1")
        XCTAssertEqual(inventory.host(named: "a2")?.address, "fd10::5")
        XCTAssertNil(inventory.host(named: "nope"))
        XCTAssertEqual(inventory.warnings, [])
    }

    func testAddressFormsAndPortLookingIPv6() throws {
        let toml = InventoryFixture.cluster
            + InventoryFixture.host("n1", "[FD10:0::1]")
            + InventoryFixture.host("n2", "fd00::1:22", role: "agent")
            + InventoryFixture.host("n3", "192.0.2.7", role: "agent", extra: "node_ip = \"fd10::3\"")
            + InventoryFixture.host("n4", "n4.example.org.", role: "agent", extra: "node_ip = \"fd10::4\"")
        let inventory = try XCTUnwrap(parseValid(toml))
        XCTAssertEqual(inventory.hosts.map(\.address), ["FD10:0::1", "fd00::1:22", "192.0.2.7", "n4.example.org."])
        XCTAssertEqual(inventory.hosts.map(\.nodeIP.description), ["fd10::1", "fd00::1:22", "fd10::3", "fd10::4"])
        XCTAssertEqual(inventory.hosts[0].ipv6Address, IPv6Address("fd10::1"))
        XCTAssertNil(inventory.hosts[2].ipv6Address)
    }

    func testRelativeInventoryPathBecomesAbsolute() throws {
        let inventory = try XCTUnwrap(parseValid(InventoryFixture.cluster + InventoryFixture.oneServer, path: "inv/../home.toml"))
        XCTAssertEqual(inventory.path, FileManager.default.currentDirectoryPath + "/home.toml")
        XCTAssertEqual(inventory.cluster.name, "home")
    }

    func testHomeExampleLoadsWithoutErrorsOrWarnings() throws {
        let repository = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = repository.appendingPathComponent("inventory/home.toml").path
        let inventory: Inventory
        do {
            inventory = try Inventory.load(path: path)
        } catch {
            return XCTFail("inventory/home.toml does not load:\n\(error)")
        }
        XCTAssertEqual(inventory.warnings, [])
        XCTAssertEqual(inventory.servers.count, 1)
        XCTAssertEqual(inventory.agents.count, 2)
        XCTAssertEqual(inventory.firstServer.name, "node-1")
        XCTAssertEqual(inventory.cluster.k3sVersion, "v1.31.5+k3s1")

        // Every documented key appears in the example, uncommented (airgap_dir only as a comment).
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let schema = K3sInventory.schema
        let keys = Set(schema.sections.flatMap(\.keys) + schema.hostKeys.flatMap(\.keys) + InventoryKeys.ssh + InventoryKeys.host)
        for key in keys {
            let written = lines.contains { $0.hasPrefix("\(key) =") }
            let commented = lines.contains { $0.hasPrefix("# \(key) =") }
            XCTAssertTrue(written || (key == "airgap_dir" && commented), "home.toml does not show \(key)")
        }
    }

    func testSyntaxErrorReportsLineAndColumn() {
        let toml = """
            [cluster]
            k3s_version = "v1.31.5+k3s1"
            name = = "x"
            """
        do {
            _ = try Inventory.parse(toml: toml, path: "inventory/broken.toml")
            XCTFail("expected a syntax error")
        } catch let error as InventoryError {
            XCTAssertEqual(error.line, 3)
            XCTAssertNotNil(error.column)
            XCTAssertGreaterThan(error.column ?? 0, 1)
            XCTAssertTrue(error.description.hasPrefix("inventory/broken.toml:3:\(error.column ?? 0): TOML syntax error"), error.description)
        } catch {
            XCTFail("expected InventoryError, got \(error)")
        }
    }

    func testDuplicateKeyIsASyntaxError() {
        let toml = "[cluster]\nk3s_version = \"v1.31.5+k3s1\"\n\n[ssh]\nport = 22\nport = 23\n"
        XCTAssertThrowsError(try Inventory.parse(toml: toml, path: "x.toml")) { error in
            XCTAssertEqual((error as? InventoryError)?.line, 6, "\(error)")
        }
    }

    func testLoadOfMissingFileNamesIt() {
        XCTAssertThrowsError(try Inventory.load(path: "/nonexistent/fleet/inventory.toml")) { error in
            XCTAssertTrue("\(error)".hasPrefix("/nonexistent/fleet/inventory.toml: cannot read"), "\(error)")
            XCTAssertTrue("\(error)".contains("no such file"), "\(error)")
        }
    }

    func testLoadReadsTheFile() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let path = try directory.write("site.toml", InventoryFixture.cluster + InventoryFixture.oneServer)
        let inventory = try Inventory.load(path: path)
        XCTAssertEqual(inventory.path, path)
        XCTAssertEqual(inventory.cluster.name, "site")
        XCTAssertEqual(inventory.hosts.map(\.name), ["n1"])
    }

    func testInventoryInitializerRequiresAServer() throws {
        let agent = Host(name: "a", address: "fd10::1", role: .agent, nodeIP: IPv6Address("fd10::1")!)
        XCTAssertThrowsError(try Inventory(path: "/x.toml", cluster: ClusterConfig(name: "x", k3sVersion: "v1.31.5+k3s1"), hosts: [agent]))
        let server = Host(name: "s", address: "fd10::2", role: .server, nodeIP: IPv6Address("fd10::2")!)
        let inventory = try Inventory(path: "/x.toml", cluster: ClusterConfig(name: "x", k3sVersion: "v1.31.5+k3s1"), hosts: [agent, server])
        XCTAssertEqual(inventory.firstServer, server)
    }
}
