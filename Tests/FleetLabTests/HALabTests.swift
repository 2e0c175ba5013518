import FleetCore
import FleetRemote
import FleetSteps
import Foundation
import XCTest

/// Several servers on the lab: three servers with embedded etcd and two agents. The first run meets
/// a second server whose join K3s refuses, so the third must not join; `--retry-failed` finishes the
/// cluster; a third run changes nothing.
///
/// The tests share one cluster and run in the order of their names.
final class HALabTests: LabTestCase {
    override class var labSpec: (hosts: Int, name: String, net: String) { (5, "hatest", "76") }
    override class var labServers: Int { 3 }

    static let dropIn = "/etc/rancher/k3s/config.yaml.d/50-test-mismatch.yaml"

    func playbook() throws -> Playbook {
        try Playbook.load(path: Lab.repo + "/playbooks/k3s-ipv6.toml", registry: K3sActions.registry)
    }

    func run(_ inv: Inventory, retryFailed: Bool = false) throws -> (RunSummary, String) {
        let sink = OutputSink.memory()
        let start = Date()
        let summary = try PlaybookRun.run(inventory: inv, playbook: try playbook(),
                                          options: .init(retryFailed: retryFailed), connector: SSHConnector(),
                                          reporter: JSONLinesReporter(out: sink))
        print("fleet up\(retryFailed ? " --retry-failed" : "") on 3 servers + 2 agents: "
              + String(format: "%.1f", Date().timeIntervalSince(start)) + " s")
        return (summary, sink.text)
    }

    func describe(_ s: RunSummary) -> String {
        s.results.map { "\($0.host)/\($0.step)=\($0.status.rawValue) \($0.message)" }.joined(separator: "\n")
    }

    func test1_ARefusedJoinStopsTheNextServerAndRetryFailedFinishes() throws {
        let lab = try lab()
        let inv = try lab.inventory()
        XCTAssertEqual(inv.servers.map(\.name), ["hatest-1", "hatest-2", "hatest-3"])
        XCTAssertFalse(inv.warnings.contains { $0.message.contains("even number") }, "three servers are an odd number: \(inv.warnings)")

        // Host 2 carries a drop-in that gives it another service range than the cluster's: K3s refuses
        // such a server ("critical configuration value mismatch").
        let put = lab.exec(2, "mkdir -p /etc/rancher/k3s/config.yaml.d && "
                           + "printf 'service-cidr: \"fd42:f1e1:99::/112\"\\n' > \(Self.dropIn)")
        XCTAssertEqual(put.status, 0, put.output)
        let (first, _) = try run(inv)
        XCTAssertEqual(first.result(host: "hatest-1", step: "server-install")?.status, .changed, describe(first))
        let refused = try XCTUnwrap(first.result(host: "hatest-2", step: "server-join"))
        XCTAssertEqual(refused.status, .failed, describe(first))
        XCTAssertTrue(refused.message.contains("critical configuration value mismatch"), refused.message)
        let stopped = try XCTUnwrap(first.result(host: "hatest-3", step: "server-join"))
        XCTAssertEqual(stopped.status, .blocked)
        XCTAssertEqual(stopped.message, "not run: server-join ended failed on hatest-2, and a step with serial = 1 stops at the first failure")
        XCTAssertEqual(lab.exec(3, "test -e /etc/rancher/k3s/config.yaml && echo written || echo untouched").output,
                       "untouched\n", "the third server was changed after the second one failed")
        for i in 4...5 {
            XCTAssertEqual(first.result(host: "hatest-\(i)", step: "agent-join")?.status, .changed, "agents join through the first server")
        }
        // The add-on step runs after every join, so it is blocked on the first server, and verify
        // (after it, on the same host) with it.
        let addons = try XCTUnwrap(first.result(host: "hatest-1", step: "addons"))
        XCTAssertEqual(addons.status, .blocked)
        XCTAssertEqual(addons.message, "blocked: runs after \"server-join\", which ended failed on hatest-2")
        let verify = try XCTUnwrap(first.result(host: "hatest-1", step: "verify"))
        XCTAssertEqual(verify.status, .blocked)
        XCTAssertEqual(verify.message, "not run: an earlier step on this host was blocked (addons)")

        // Fixed: only the joins and verify run again, in order.
        XCTAssertEqual(lab.exec(2, "rm \(Self.dropIn)").status, 0)
        let (retry, output) = try run(inv, retryFailed: true)
        XCTAssertTrue(retry.succeeded, describe(retry))
        let ran = retry.results.filter { $0.status != .skipped }.map { "\($0.host)/\($0.step)" }.sorted()
        // The add-on step (after server-join) was blocked on every server, so it runs again too.
        XCTAssertEqual(ran, ["hatest-1/addons", "hatest-1/token", "hatest-1/verify", "hatest-2/addons", "hatest-2/server-join",
                             "hatest-3/addons", "hatest-3/server-join"])
        let s2 = try XCTUnwrap(retry.result(host: "hatest-2", step: "server-join"))
        let s3 = try XCTUnwrap(retry.result(host: "hatest-3", step: "server-join"))
        XCTAssertEqual(s2.status, .changed, s2.message)
        XCTAssertEqual(s3.status, .changed, s3.message)
        XCTAssertLessThanOrEqual(s2.startedAt.addingTimeInterval(Double(s2.durationMs) / 1000), s3.startedAt.addingTimeInterval(0.001),
                                 "the third server started joining before the second had finished")
        let v = try XCTUnwrap(retry.result(host: "hatest-1", step: "verify"))
        XCTAssertTrue(v.message.contains("5 node(s) Ready on IPv6"), v.message)
        let table = v.message.split(separator: "\n").filter { $0.hasPrefix("hatest-") }
        XCTAssertEqual(table.filter { $0.contains("control-plane,etcd") }.count, 3, v.message)
        XCTAssertEqual(table.filter { $0.contains(" agent ") }.count, 2, v.message)

        // The token never reached the output or the state file.
        let token = lab.exec(1, "cat /var/lib/rancher/k3s/server/node-token").output
        let secret = String(token.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ":").last ?? "")
        XCTAssertGreaterThanOrEqual(secret.count, 16)
        XCTAssertFalse(output.contains(secret))
        let state = try String(contentsOfFile: RunState.path(forInventory: inv.path), encoding: .utf8)
        XCTAssertFalse(state.contains(secret))
    }

    func test2_EveryServerHoldsTheSameClusterKeys() throws {
        let lab = try lab()
        let first = lab.exec(1, "cat /etc/rancher/k3s/config.yaml").output
        XCTAssertTrue(first.contains("\ncluster-init: true\n"), first)
        XCTAssertFalse(first.contains("server:"), first)
        let keys = ["cluster-cidr", "service-cidr", "cluster-dns", "flannel-ipv6-masq", "disable"]
        func clusterLines(_ text: String) -> [String] {
            var out: [String] = []
            var inList = false
            for line in text.split(separator: "\n").map(String.init) {
                if line.hasPrefix("- ") { if inList { out.append(line) }; continue }
                inList = keys.contains(String(line.split(separator: ":").first ?? ""))
                if inList { out.append(line) }
            }
            return out
        }
        XCTAssertEqual(clusterLines(first).count, 6, first)
        for i in 2...3 {
            let text = lab.exec(i, "cat /etc/rancher/k3s/config.yaml").output
            XCTAssertTrue(text.contains("server: \"https://[\(lab.hosts[0].address)]:6443\""), text)
            XCTAssertTrue(text.contains("token-file: \"/etc/rancher/k3s/fleet-token\""), text)
            XCTAssertFalse(text.contains("cluster-init"), text)
            XCTAssertEqual(clusterLines(text), clusterLines(first), "hatest-\(i)")
            XCTAssertEqual(lab.exec(i, "stat -c %a /etc/rancher/k3s/config.yaml /etc/rancher/k3s/fleet-token").output, "600\n600\n")
            XCTAssertEqual(lab.exec(i, "grep -c TOKEN /etc/systemd/system/k3s.service.env").output, "0\n")
        }
    }

    func test3_ASecondRunChangesNothing() throws {
        let lab = try lab()
        let inv = try lab.inventory()
        func pids() -> [String] {
            (1...5).map { i in lab.exec(i, "cat /var/lib/rancher/.standin/\(i <= 3 ? "k3s" : "k3s-agent").pid").output }
        }
        let before = pids()
        let (summary, _) = try run(inv)
        XCTAssertTrue(summary.succeeded, describe(summary))
        let notOK = summary.results.filter { $0.status != .ok }.map { "\($0.host) \($0.step) \($0.status): \($0.message)" }
        XCTAssertEqual(notOK, [], "a second run changes nothing")
        XCTAssertEqual(summary.results.filter { $0.step == "server-join" }.count, 2)
        XCTAssertEqual(pids(), before, "no k3s process was restarted")
    }

    func test5_ResetOfOneServerRemovesItAndUpJoinsItAgain() throws {
        let lab = try lab()
        let inv = try lab.inventory()
        let three = inv.hosts.filter { $0.name == "hatest-3" }
        let request = try ResetVerb.Request(inventory: inv, hosts: three, sysctl: false)
        XCTAssertEqual(request.staying?.name, "hatest-1")
        let outcomes = try ResetVerb.run(inventory: inv, request: request, connector: SSHConnector(),
                                         reporter: JSONLinesReporter(out: OutputSink.memory()),
                                         defaultPlaybook: "playbooks/k3s-ipv6.toml")
        XCTAssertEqual(outcomes.results.map(\.status), [.changed], outcomes.results.map(\.message).joined(separator: "\n"))
        let r3 = try XCTUnwrap(outcomes.result(host: "hatest-3", step: "server-reset"))
        XCTAssertTrue(r3.message.hasPrefix("node deleted through hatest-1 (etcd member removed); removed:"), r3.message)
        XCTAssertNil(try RunState.load(path: RunState.path(forInventory: inv.path))?.hosts["hatest-3"], "its records are dropped")
        XCTAssertNotEqual(lab.exec(3, "/usr/local/bin/systemctl is-active k3s").status, 0, "k3s is gone from hatest-3")
        // Asked on the server that deleted it (the stand-in's other servers copy its view every 2 s).
        let nodes = lab.exec(1, "/usr/local/bin/k3s kubectl get nodes -o name")
        XCTAssertEqual(nodes.status, 0, nodes.output)
        XCTAssertFalse(nodes.output.contains("hatest-3"), nodes.output)

        // The four hosts that stay verify.
        let rest = try Inventory(path: lab.dir + "/rest.toml", cluster: inv.cluster, k3s: inv.k3s, ssh: inv.ssh,
                                 preflight: inv.preflight, hosts: inv.hosts.filter { $0.name != "hatest-3" })
        let restRun = try PlaybookRun.run(inventory: rest, playbook: try playbook(), options: .init(steps: ["verify"]),
                                          connector: SSHConnector(), reporter: JSONLinesReporter(out: OutputSink.memory()))
        let restVerify = try XCTUnwrap(restRun.result(host: "hatest-1", step: "verify"))
        XCTAssertEqual(restVerify.status, .ok, restVerify.message)
        XCTAssertTrue(restVerify.message.contains("4 node(s) Ready on IPv6"), restVerify.message)

        let (back, _) = try run(inv)
        XCTAssertTrue(back.succeeded, describe(back))
        XCTAssertEqual(back.result(host: "hatest-3", step: "server-join")?.status, .changed)
        XCTAssertEqual(back.result(host: "hatest-2", step: "server-join")?.status, .ok)
        let verify = try XCTUnwrap(back.result(host: "hatest-1", step: "verify"))
        XCTAssertTrue(verify.message.contains("5 node(s) Ready on IPv6"), verify.message)
    }

    func test4_KubeconfigThroughTheSecondServerListsEveryNode() throws {
        let lab = try lab()
        let kubectl = "/usr/bin/kubectl"
        guard FileManager.default.isExecutableFile(atPath: kubectl) else {
            throw XCTSkip("no kubectl at \(kubectl) on this machine: the kubeconfig is not checked with a real client")
        }
        let inv = try lab.inventory()
        let text = try KubeconfigVerb.fetch(inventory: inv, connector: SSHConnector(), server: "hatest-2")
        XCTAssertTrue(text.contains("server: https://[\(lab.hosts[1].address)]:6443"), text)
        let path = lab.dir + "/hatest-2.kubeconfig"
        try KubeconfigVerb.save(text, to: path)
        let home = lab.dir + "/kubectl-home"
        let env = "env -u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy -u ALL_PROXY -u all_proxy HOME=\(home)"
        let r = Lab.run(["/bin/sh", "-c", "\(env) \(kubectl) --kubeconfig \(path) --request-timeout=30s get nodes -o name 2>&1"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(r.output.split(separator: "\n").map(String.init).sorted(), (1...5).map { "node/hatest-\($0)" })
    }

    func test6_AgentsRegisterThroughTheSecondServerWhenToldTo() throws {
        let lab = try lab()
        let second = lab.hosts[1].address
        let inv = try lab.inventory(named: "via-second.toml") {
            $0.replacingOccurrences(of: "[cluster]\n", with: "[cluster]\nregistration_address = \"\(second)\"\n")
        }
        XCTAssertEqual(inv.registrationURL, "https://[\(second)]:6443")
        let (summary, _) = try run(inv)
        XCTAssertTrue(summary.succeeded, describe(summary))
        for i in 4...5 {
            let r = try XCTUnwrap(summary.result(host: "hatest-\(i)", step: "agent-join"))
            XCTAssertEqual(r.status, .changed, "a new registration address rewrites the agent's config")
            XCTAssertTrue(r.message.contains("agent registered with https://[\(second)]:6443"), r.message)
            XCTAssertTrue(lab.exec(i, "cat /etc/rancher/k3s/config.yaml").output.contains("server: \"https://[\(second)]:6443\""))
        }
        for i in 1...3 { XCTAssertEqual(summary.result(host: "hatest-\(i)", step: i == 1 ? "server-install" : "server-join")?.status, .ok) }
        let verify = try XCTUnwrap(summary.result(host: "hatest-1", step: "verify"))
        XCTAssertTrue(verify.message.contains("5 node(s) Ready on IPv6"), verify.message)
    }
}
