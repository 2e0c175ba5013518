import FleetCore
import FleetRemote
import FleetSteps
import Foundation
import XCTest

/// `fleet check` and `fleet reset` on three lab hosts (a server and two agents) running the K3s
/// stand-in: a healthy check, a dynamic node address and a missing default route named with their
/// fix, then a cluster whose third host is reset alone and brought back by `up`.
final class CheckResetLabTests: LabTestCase {
    override class var labSpec: (hosts: Int, name: String, net: String) { (3, "checkreset", "75") }

    func playbook() throws -> Playbook {
        try Playbook.load(path: Lab.repo + "/playbooks/k3s-ipv6.toml", registry: K3sActions.registry)
    }

    func up(_ inv: Inventory) throws -> RunSummary {
        try PlaybookRun.run(inventory: inv, playbook: try playbook(), options: .init(), connector: SSHConnector(),
                            reporter: JSONLinesReporter(out: OutputSink.memory()))
    }

    func reset(_ inv: Inventory, _ request: ResetVerb.Request) throws -> RunSummary {
        try ResetVerb.run(inventory: inv, request: request, connector: SSHConnector(),
                          reporter: JSONLinesReporter(out: OutputSink.memory()), defaultPlaybook: "playbooks/k3s-ipv6.toml")
    }

    func check(_ inv: Inventory) -> [CheckFinding] {
        CheckVerb.inventoryFindings(inv) + CheckVerb.run(inventory: inv, hosts: inv.hosts, connector: SSHConnector(), forks: 10)
    }

    func errors(_ findings: [CheckFinding]) -> [String] {
        findings.filter { $0.severity == .error }.map(\.line)
    }

    func test1_CheckFindsDynamicAddressAndMissingRoute() throws {
        let lab = try lab()
        let inv = try lab.inventory()
        XCTAssertEqual(inv.hosts.map(\.role), [.server, .agent, .agent])
        XCTAssertEqual(errors(check(inv)), [], "a fresh lab is ready for up")

        // Host 2: its address becomes a lease.
        let a2 = lab.hosts[1].address
        XCTAssertEqual(lab.exec(2, "ip addr change \(a2)/64 dev lan0 valid_lft 3600 preferred_lft 3600").status, 0)
        defer { lab.exec(2, "ip addr change \(a2)/64 dev lan0 valid_lft forever preferred_lft forever") }
        // Host 3: no default route.
        let route = lab.exec(3, "ip -6 route show default").output.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(route.isEmpty)
        XCTAssertEqual(lab.exec(3, "ip -6 route del default").status, 0)
        defer { lab.exec(3, "ip -6 route add \(route)") }

        let found = check(inv)
        let e = found.filter { $0.severity == .error }
        let h2 = e.filter { $0.host == "checkreset-2" }
        XCTAssertEqual(h2.map(\.check), ["node_ip"], errors(found).joined(separator: "\n"))
        XCTAssertTrue(h2.first?.line.contains("checkreset-2 ERROR: node_ip \(a2) on lan0 is dynamic") ?? false, h2.first?.line ?? "")
        XCTAssertTrue(h2.first?.fix.contains("configure \(a2)/64 statically") ?? false, h2.first?.fix ?? "")
        let h3 = e.filter { $0.host == "checkreset-3" }
        XCTAssertEqual(h3.map(\.check), ["default_route"], errors(found).joined(separator: "\n"))
        XCTAssertTrue(h3.first?.fix.contains("ip -6 route add default") ?? false)
        XCTAssertEqual(e.filter { $0.host == "checkreset-1" }.count, 0)
    }

    func test1b_CheckStorageReportsLonghornPrerequisitesFromEachHost() throws {
        let lab = try lab()
        let inv = try lab.inventory()
        // The lab's hosts share this machine's programs, so each must report what is missing here.
        func present(_ names: [String]) -> Bool {
            names.contains { n in ["/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"].contains { FileManager.default.isExecutableFile(atPath: $0 + n) } }
        }
        let expectedMissing = StoragePrereqs.tools.filter { tool in
            !present(tool == "mount.nfs" ? ["mount.nfs4", "mount.nfs"] : [tool])
        }
        let found = CheckVerb.run(inventory: inv, hosts: inv.hosts, connector: SSHConnector(), forks: 10, storage: true)
            .filter { $0.check == "storage" }
        for host in inv.hosts {
            let mine = found.filter { $0.host == host.name }
            // iscsid is never active in the lab (no systemd), so every host has one finding.
            XCTAssertEqual(mine.count, 1, "\(host.name): \(mine.map(\.line))")
            guard let f = mine.first else { continue }
            XCTAssertEqual(f.severity, .warning, "Debian with apt-get: the storage playbook can install it: \(f.line)")
            XCTAssertTrue(f.message.contains("iscsid not active"), f.message)
            for tool in StoragePrereqs.tools where tool != "mount.nfs" {
                XCTAssertEqual(f.message.contains(" \(tool)"), expectedMissing.contains(tool), "\(tool): \(f.message)")
            }
            XCTAssertTrue(f.fix.contains("systemctl enable --now iscsid"), f.fix)
        }
        // Without --storage, nothing about storage.
        let plain = CheckVerb.run(inventory: inv, hosts: inv.hosts, connector: SSHConnector(), forks: 10)
        XCTAssertEqual(plain.filter { $0.check == "storage" }.count, 0)
    }

    func test2_ResetOneAgentLeavesTheClusterAndUpBringsItBack() throws {
        let lab = try lab()
        let inv = try lab.inventory()
        // The routes and address of test1 are restored.
        XCTAssertEqual(errors(check(inv)), [])
        let first = try up(inv)
        XCTAssertTrue(first.succeeded, Style.summary(first, color: false))
        let statePath = RunState.path(forInventory: inv.path)
        XCTAssertNotNil(try RunState.load(path: statePath)?.hosts["checkreset-3"])

        // Check on a running cluster: the installed version and role match, nothing to report.
        let running = check(inv).filter { $0.check != "inventory" }
        XCTAssertEqual(running.map(\.line), [])

        let three = inv.hosts.filter { $0.name == "checkreset-3" }
        let request = try ResetVerb.Request(inventory: inv, hosts: three, sysctl: false)
        XCTAssertEqual(request.staying?.name, "checkreset-1")
        let outcomes = try reset(inv, request)
        let r3 = try XCTUnwrap(outcomes.result(host: "checkreset-3", step: "agent-reset"))
        XCTAssertEqual(outcomes.results.map(\.status), [.changed], outcomes.results.map(\.message).joined(separator: "\n"))
        XCTAssertTrue(r3.message.contains("k3s-agent-uninstall.sh"), r3.message)
        XCTAssertTrue(r3.message.hasSuffix("; node deleted through checkreset-1"), r3.message)

        XCTAssertNotEqual(lab.exec(3, "test -e /usr/local/bin/k3s-agent-uninstall.sh").status, 0)
        XCTAssertNotEqual(lab.exec(3, "test -e /etc/rancher/k3s/fleet-token").status, 0)
        XCTAssertNotEqual(lab.exec(3, "/usr/local/bin/systemctl is-active k3s-agent").status, 0, "k3s-agent is gone")
        let state = try XCTUnwrap(try RunState.load(path: statePath))
        XCTAssertNil(state.hosts["checkreset-3"])
        XCTAssertNotNil(state.hosts["checkreset-2"])
        XCTAssertEqual(lab.exec(2, "/usr/local/bin/systemctl is-active k3s-agent").status, 0, "the other agent still runs")
        let nodes = lab.exec(1, "/usr/local/bin/k3s kubectl get nodes")
        XCTAssertEqual(nodes.status, 0, nodes.output)
        XCTAssertTrue(nodes.output.contains("checkreset-2"), nodes.output)
        XCTAssertFalse(nodes.output.contains("checkreset-3"), "the reset agent is still a node: \(nodes.output)")

        // Verify of the hosts that stay passes.
        let rest = try Inventory(path: lab.dir + "/rest.toml", cluster: inv.cluster, k3s: inv.k3s, ssh: inv.ssh,
                                 preflight: inv.preflight,
                                 hosts: inv.hosts.filter { $0.name != "checkreset-3" })
        let restRun = try PlaybookRun.run(inventory: rest, playbook: try playbook(), options: .init(steps: ["verify"]),
                                          connector: SSHConnector(), reporter: JSONLinesReporter(out: OutputSink.memory()))
        let restVerify = try XCTUnwrap(restRun.result(host: "checkreset-1", step: "verify"))
        XCTAssertEqual(restVerify.status, .ok, restVerify.message)
        XCTAssertTrue(restVerify.message.contains("2 node(s) Ready on IPv6"), restVerify.message)

        // A second reset finds nothing to do.
        let again = try reset(inv, request)
        XCTAssertEqual(again.results.map(\.status), [.ok], again.results.map(\.message).joined(separator: "\n"))

        let back = try up(inv)
        XCTAssertTrue(back.succeeded, Style.summary(back, color: false))
        XCTAssertEqual(back.result(host: "checkreset-3", step: "agent-join")?.status, .changed)
        let verify = try XCTUnwrap(back.result(host: "checkreset-1", step: "verify"))
        XCTAssertEqual(verify.status, .ok, verify.message)
        XCTAssertTrue(verify.message.contains("checkreset-3 "), verify.message)
        XCTAssertEqual(lab.exec(3, "/usr/local/bin/systemctl is-active k3s-agent").status, 0)
    }

    /// Counts the connections the runner opens, per host.
    final class CountingConnector: Connector, @unchecked Sendable {
        let inner = SSHConnector()
        let counts = Locked<[String: Int]>([:])
        func connect(to host: FleetCore.Host) throws -> Connection {
            counts.withLock { $0[host.name, default: 0] += 1 }
            return try inner.connect(to: host)
        }
    }

    /// Drops its connection to the first server (its sshd session is killed), then asks again.
    struct DropThenAsk: Action {
        func inputs(host: FleetCore.Host, inventory: Inventory) -> String { "drop" }
        func describe(_ vars: TemplateVariables) -> [String] { ["drop the connection to the first server, then ask it again"] }
        func run(_ ctx: TaskContext) throws -> ActionOutcome {
            let server = ctx.inventory.servers[0]
            let before = try ctx.connection(to: server).run("echo $PPID", stdin: nil, timeout: 10)
            // The shell's parent is the connection's sshd session: killing it drops the connection.
            let dropped = (try? ctx.connection(to: server).run("kill -9 $PPID; sleep 5", stdin: nil, timeout: 10))
            guard dropped == nil || !(dropped!.succeeded) else { throw TaskFailure("the connection did not drop") }
            let after = try ctx.connection(to: server).run("echo $PPID", stdin: nil, timeout: 10)
            return .ok("sessions \(before.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) "
                       + "\(after.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    func test3_ATaskReachesAnotherHostAndReconnectsAfterADrop() throws {
        let lab = try lab()
        let inv = try lab.inventory()
        let connector = CountingConnector()
        let agent = inv.agents[0].name
        let book = Playbook(name: "t", path: "t", steps: [
            Step(name: "drop", target: .hosts([agent]), actionName: "drop", action: DropThenAsk()),
        ])
        let summary = PlaybookRun.runReadOnly(inventory: inv, playbook: book, command: "test", connector: connector,
                                              reporter: JSONLinesReporter(out: OutputSink.memory()))
        let r = try XCTUnwrap(summary.result(host: agent, step: "drop"))
        XCTAssertEqual(r.status, .ok, r.message)
        let pids = r.message.split(separator: " ").dropFirst()
        XCTAssertEqual(pids.count, 2, r.message)
        XCTAssertNotEqual(pids.first, pids.last, "the second question came over a new session: \(r.message)")
        XCTAssertEqual(connector.counts.withLock { $0 }, [agent: 1, inv.servers[0].name: 2],
                       "its own host once; the server once, and once more after the drop")
    }
}
