import FleetCore
import FleetRemote
import FleetSteps
import Foundation
import XCTest

/// The K3s playbook end to end on five lab hosts running the K3s stand-in: `up` on a server and
/// three agents, a second run that changes nothing, a wrong token, `add-worker` of the fifth host,
/// and a real kubectl through the kubeconfig fleet writes.
///
/// The tests share one cluster and run in the order of their names; each brings the cluster up
/// first if an earlier one has not.
final class K3sLabTests: LabTestCase {
    override class var labSpec: (hosts: Int, name: String, net: String) { (5, "k3stest", "73") }
    nonisolated(unsafe) static var first: (summary: RunSummary, output: String, seconds: Double)?
    nonisolated(unsafe) static var scanner: CommandLineScanner?

    override class func tearDown() {
        scanner?.stop()
        super.tearDown()
    }

    /// The cluster's inventory: the lab's, without host 5 (which add-worker brings in).
    func clusterInventoryPath(_ lab: Lab) throws -> String {
        let path = lab.dir + "/cluster.toml"
        if !FileManager.default.fileExists(atPath: path) {
            let text = try String(contentsOfFile: lab.inventoryPath, encoding: .utf8)
            guard let cut = text.range(of: "\n[[hosts]]\nname = \"k3stest-5\"") else {
                throw LabError("host 5 not found in \(lab.inventoryPath)")
            }
            try String(text[..<cut.lowerBound]).write(toFile: path, atomically: true, encoding: .utf8)
        }
        return path
    }

    func playbook() throws -> Playbook {
        try Playbook.load(path: Lab.repo + "/playbooks/k3s-ipv6.toml", registry: K3sActions.registry)
    }

    func run(_ inv: Inventory, _ book: Playbook, options: PlaybookRun.Options = .init()) throws -> (RunSummary, String, Double) {
        let sink = OutputSink.memory()
        let start = Date()
        let summary = try PlaybookRun.run(inventory: inv, playbook: book, options: options, connector: SSHConnector(),
                                          reporter: JSONLinesReporter(out: sink))
        return (summary, sink.text, Date().timeIntervalSince(start))
    }

    /// `fleet up` on hosts 1–4, once for the whole class, with every process's command line and
    /// environment watched while it runs.
    @discardableResult
    func clusterUp() throws -> (summary: RunSummary, output: String, seconds: Double) {
        if let done = K3sLabTests.first { return done }
        let lab = try lab()
        let inv = try Inventory.load(path: try clusterInventoryPath(lab))
        XCTAssertEqual(inv.hosts.count, 4)
        XCTAssertFalse(inv.preflight.checkInternet, "the lab inventory must not look outside")
        let scanner = CommandLineScanner()
        K3sLabTests.scanner = scanner
        scanner.start()
        let result = try run(inv, try playbook())
        scanner.stop()
        print("fleet up on 4 hosts: \(String(format: "%.1f", result.2)) s")
        K3sLabTests.first = result
        return result
    }

    func token(_ lab: Lab) -> String {
        lab.exec(1, "cat /var/lib/rancher/k3s/server/node-token").output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func password(of token: String) -> String {
        String(token.split(separator: ":").last ?? "")
    }

    /// Lines in host `i`'s sshd log: one or more per SSH connection (sshd ends them with CR LF, so
    /// count the LF bytes).
    func sshdLogLines(_ lab: Lab, _ i: Int) -> Int {
        let data = FileManager.default.contents(atPath: "\(lab.dir)/hosts/\(i)/sshd.log") ?? Data()
        return data.filter { $0 == 0x0A }.count
    }

    // MARK: - Tests

    func test1_UpPassesVerifyAndTheTokenStaysSecret() throws {
        let lab = try lab()
        let (summary, output, seconds) = try clusterUp()
        XCTAssertTrue(summary.succeeded, Style.summary(summary, color: false))
        let verify = try XCTUnwrap(summary.result(host: "k3stest-1", step: "verify"))
        XCTAssertEqual(verify.status, .ok, verify.message)
        for i in 1...4 {
            XCTAssertTrue(verify.message.contains("k3stest-\(i) "), verify.message)
            XCTAssertTrue(verify.message.contains(lab.hosts[i - 1].address), verify.message)
        }
        XCTAssertTrue(verify.message.contains("4 node(s) Ready on IPv6"), verify.message)
        for i in 2...4 {
            XCTAssertEqual(summary.result(host: "k3stest-\(i)", step: "agent-join")?.status, .changed)
        }
        XCTAssertLessThan(seconds, 120)

        let token = token(lab)
        let secret = password(of: token)
        XCTAssertTrue(token.hasPrefix("K10") && secret.count >= 16, "unexpected token shape")
        XCTAssertFalse(output.contains(secret), "the token is in the JSON output")
        let state = try String(contentsOfFile: RunState.path(forInventory: try clusterInventoryPath(lab)), encoding: .utf8)
        XCTAssertFalse(state.contains(secret), "the token is in the state file")
        let scanner = try XCTUnwrap(K3sLabTests.scanner)
        XCTAssertGreaterThan(scanner.seen.count, 20, "the scanner saw the run's processes")
        XCTAssertTrue(scanner.seen.contains { $0.contains("kubectl") }, "the scanner saw the run's processes")
        let leaks = scanner.seen.filter { $0.contains(secret) }
        XCTAssertEqual(leaks, [], "the token was on a command line or in an environment")

        // Files: config and token 0600; the installer's env file has no token.
        XCTAssertEqual(lab.exec(1, "stat -c %a /etc/rancher/k3s/config.yaml").output, "600\n")
        for i in 2...4 {
            XCTAssertEqual(lab.exec(i, "stat -c %a /etc/rancher/k3s/config.yaml /etc/rancher/k3s/fleet-token").output, "600\n600\n")
            XCTAssertEqual(lab.exec(i, "grep -c TOKEN /etc/systemd/system/k3s-agent.service.env").output, "0\n")
            XCTAssertTrue(lab.exec(i, "cat /etc/rancher/k3s/config.yaml").output
                .contains("server: \"https://[\(lab.hosts[0].address)]:6443\""))
        }
    }

    func test2_SecondRunIsAllOkAndRestartsNothing() throws {
        let lab = try lab()
        try clusterUp()
        func pids() -> [String] {
            (1...4).map { i in
                lab.exec(i, "cat /var/lib/rancher/.standin/\(i == 1 ? "k3s" : "k3s-agent").pid; "
                         + "/usr/local/bin/systemctl show -p NRestarts --value \(i == 1 ? "k3s" : "k3s-agent")").output
            }
        }
        let before = pids()
        XCTAssertTrue(before.allSatisfy { !$0.isEmpty })
        let inv = try Inventory.load(path: try clusterInventoryPath(lab))
        let (summary, output, seconds) = try run(inv, try playbook())
        print("second fleet up on 4 hosts: \(String(format: "%.1f", seconds)) s")
        XCTAssertTrue(summary.succeeded, Style.summary(summary, color: false))
        let notOK = summary.results.filter { $0.status != .ok }.map { "\($0.host) \($0.step) \($0.status): \($0.message)" }
        XCTAssertEqual(notOK, [], "a second run changes nothing")
        XCTAssertEqual(summary.results.count, 4 * 4 + 1 + 1 + 1 + 3 + 1)
        XCTAssertEqual(pids(), before, "no k3s process was restarted")
        XCTAssertFalse(output.contains(password(of: token(lab))))
    }

    func test3_WrongTokenFailsTheJoinClearly() throws {
        let lab = try lab()
        try clusterUp()
        let inv = try lab.inventory(named: "wrongtoken.toml") { $0 }
        let bookPath = lab.dir + "/wrongtoken.playbook.toml"
        try """
            [[steps]]
            name = "bad-token"
            description = "a token that is not the cluster's"
            action = "fetch_secret"
            target = "k3stest-5"
            path = "/root/bad-token"
            secret = "token"

            [[steps]]
            name = "agent-join"
            description = "join with it"
            action = "k3s_agent"
            target = "k3stest-5"
            needs = ["token"]
            timeout = 60
            """.write(toFile: bookPath, atomically: true, encoding: .utf8)
        let book = try Playbook.load(path: bookPath, registry: K3sActions.registry)
        let good = token(lab)
        let hash = String(good.prefix { $0 != ":" })

        // The cluster's CA hash with a wrong secret: the server answers 401.
        let wrongSecret = "0123456789abcdef0123456789abcdef"
        lab.exec(5, "echo '\(hash)::server:\(wrongSecret)' > /root/bad-token")
        let (refused, output, seconds) = try run(inv, book)
        let join = try XCTUnwrap(refused.result(host: "k3stest-5", step: "agent-join"))
        XCTAssertEqual(join.status, .failed)
        XCTAssertTrue(join.message.hasPrefix("the server refused the join token (401 Unauthorized)"), join.message)
        XCTAssertLessThan(seconds, 30, "a refused token fails fast")
        XCTAssertFalse(output.contains(wrongSecret))
        print("wrong token refused in \(String(format: "%.1f", seconds)) s: \(join.message)")

        // A token of another cluster: its CA hash does not match.
        lab.exec(5, "echo 'K10\(String(repeating: "ab", count: 32))::server:\(wrongSecret)' > /root/bad-token")
        let (other, _, seconds2) = try run(inv, book)
        let join2 = try XCTUnwrap(other.result(host: "k3stest-5", step: "agent-join"))
        XCTAssertEqual(join2.status, .failed)
        XCTAssertTrue(join2.message.hasPrefix("the join token is from another cluster"), join2.message)
        XCTAssertLessThan(seconds2, 30)
        lab.exec(5, "rm -f /root/bad-token")
    }

    func test4_AddWorkerJoinsTheFifthHostAndTouchesNoOtherAgent() throws {
        let lab = try lab()
        try clusterUp()
        let path = try clusterInventoryPath(lab)
        let original = try String(contentsOfFile: path, encoding: .utf8)
        let before = (1...5).map { sshdLogLines(lab, $0) }

        let request = AddWorkerVerb.Request(inventoryPath: path, name: "k3stest-5", address: lab.hosts[4].address)
        let lock = try InventoryLock.acquire(inventory: path)
        defer { lock.release() }
        let (inv, added) = try AddWorkerVerb.append(request, lock: lock)
        XCTAssertTrue(added)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.hasPrefix(original), "the inventory's text is kept")
        XCTAssertTrue(text.contains("name = \"k3stest-5\""))
        XCTAssertEqual(inv.hosts.count, 5)

        let sink = OutputSink.memory()
        let scanner = CommandLineScanner()
        scanner.start()
        let start = Date()
        let summaries = try AddWorkerVerb.run(inventory: inv, playbook: try playbook(), worker: "k3stest-5",
                                          connector: SSHConnector(), reporter: JSONLinesReporter(out: sink), lock: lock)
        let seconds = Date().timeIntervalSince(start)
        scanner.stop()
        let secret = password(of: token(lab))
        XCTAssertEqual(scanner.seen.filter { $0.contains(secret) }, [],
                       "the token was on a command line or in an environment during add-worker")
        print("add-worker: \(String(format: "%.1f", seconds)) s")
        for s in summaries { XCTAssertTrue(s.succeeded, Style.summary(s, color: false)) }
        guard summaries.count == 2 else { return XCTFail("expected the join run and the verify run") }
        let join = summaries[0]
        XCTAssertEqual(Set(join.results.map(\.host)), ["k3stest-1", "k3stest-5"])
        XCTAssertEqual(join.results.filter { $0.host == "k3stest-1" }.map(\.step), ["token"])
        XCTAssertEqual(join.result(host: "k3stest-5", step: "agent-join")?.status, .changed)
        let verify = try XCTUnwrap(summaries[1].result(host: "k3stest-1", step: "verify"))
        XCTAssertEqual(summaries[1].results.count, 1)
        XCTAssertTrue(verify.message.contains("5 node(s) Ready on IPv6"), verify.message)
        XCTAssertTrue(verify.message.contains("k3stest-5 "), verify.message)
        XCTAssertFalse(sink.text.contains(secret))

        // No connection at all to the other agents: their sshd logged nothing new.
        let after = (1...5).map { sshdLogLines(lab, $0) }
        XCTAssertEqual(Array(after[1...3]), Array(before[1...3]), "sshd logs of hosts 2-4 grew: a command ran there")
        XCTAssertGreaterThan(after[0], before[0], "the server was asked for the token and verified")
        XCTAssertGreaterThan(after[4], before[4])

        // Again: nothing to add, nothing to change, still no other agent touched.
        let (again, addedAgain) = try AddWorkerVerb.append(request, lock: lock)
        XCTAssertFalse(addedAgain)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), text)
        let rerun = try AddWorkerVerb.run(inventory: again, playbook: try playbook(), worker: "k3stest-5",
                                      connector: SSHConnector(), reporter: JSONLinesReporter(out: OutputSink.memory()),
                                      lock: lock)
        let notOK = rerun.flatMap(\.results).filter { $0.status != .ok }.map { "\($0.host) \($0.step): \($0.message)" }
        XCTAssertEqual(notOK, [])
        XCTAssertEqual(Array((1...5).map { sshdLogLines(lab, $0) }[1...3]), Array(before[1...3]))
    }

    func test5_KubeconfigListsEveryNodeThroughARealKubectl() throws {
        let lab = try lab()
        try clusterUp()
        let kubectl = "/usr/bin/kubectl"
        guard FileManager.default.isExecutableFile(atPath: kubectl) else {
            throw XCTSkip("no kubectl at \(kubectl) on this machine: the kubeconfig is not checked with a real client")
        }
        let inv = try Inventory.load(path: try clusterInventoryPath(lab))
        let text = try KubeconfigVerb.fetch(inventory: inv, connector: SSHConnector())
        let path = KubeconfigVerb.defaultOutput(for: inv)
        try KubeconfigVerb.save(text, to: path)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int, 0o600)
        XCTAssertTrue(text.contains("server: https://[\(lab.hosts[0].address)]:6443"), text)
        XCTAssertFalse(text.contains("default"))

        let home = lab.dir + "/kubectl-home"
        let env = "env -u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy -u ALL_PROXY -u all_proxy HOME=\(home)"
        let r = Lab.run(["/bin/sh", "-c", "\(env) \(kubectl) --kubeconfig \(path) --request-timeout=30s get nodes -o json 2>/dev/null"])
        XCTAssertEqual(r.status, 0, r.output)
        struct Nodes: Decodable {
            struct Item: Decodable {
                struct Meta: Decodable { var name: String }
                var metadata: Meta
            }
            var items: [Item]
        }
        let names = try JSONDecoder().decode(Nodes.self, from: Data(r.output.utf8)).items.map(\.metadata.name)
        for host in inv.hosts { XCTAssertTrue(names.contains(host.name), "\(host.name) missing from \(names)") }
        let context = Lab.run(["/bin/sh", "-c", "\(env) \(kubectl) --kubeconfig \(path) config current-context"])
        XCTAssertEqual(context.output, "k3stest\n")
    }
}

/// Collects every distinct command line and environment of every process, from a background
/// thread, while a run goes on (the lab's hosts share the test's PID namespace).
final class CommandLineScanner: @unchecked Sendable {
    private let lock = NSLock()
    private var texts: Set<String> = []
    private var running = false
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    var seen: Set<String> {
        lock.lock(); defer { lock.unlock() }
        return texts
    }

    func start() {
        lock.lock()
        running = true
        lock.unlock()
        let t = Thread { [self] in
            while isRunning {
                scan()
                Thread.sleep(forTimeInterval: 0.05)
            }
            scan()
            done.signal()
        }
        thread = t
        t.start()
    }

    private var isRunning: Bool {
        lock.lock(); defer { lock.unlock() }
        return running
    }

    func stop() {
        lock.lock()
        let wasRunning = running
        running = false
        lock.unlock()
        if wasRunning, thread != nil { done.wait() }
        thread = nil
    }

    private func scan() {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return }
        var found: [String] = []
        for pid in entries where pid.allSatisfy(\.isNumber) {
            for file in ["cmdline", "environ"] {
                if let data = CommandLineScanner.read("/proc/\(pid)/\(file)"), !data.isEmpty {
                    found.append(String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self))
                }
            }
        }
        lock.lock()
        texts.formUnion(found)
        lock.unlock()
    }

    /// procfs files report size 0: read until end of file.
    static func read(_ path: String) -> Data? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out = Data()
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        return out
    }
}
