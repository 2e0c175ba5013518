import FleetCore
import Foundation
import XCTest

/// Hosts behind jump hosts, through the `fleet` executable: 24 targets (lab jump1) that this
/// machine has no route to, reachable only through the hosts of a second lab (jump2, `scripts/lab
/// behind`): jump2-1 runs sshd with OpenSSH's default MaxStartups, jump2-2 has AllowTcpForwarding
/// no, jump2-3 is a first hop in front of jump2-1.
final class JumpLabTests: LabTestCase {
    override class var labSpec: (hosts: Int, name: String, net: String) { (24, "jump1", "e0") }
    nonisolated(unsafe) static var bastions: Lab?
    nonisolated(unsafe) static var bastionLock: Int32 = -1
    nonisolated(unsafe) static var setUpError: String?

    override class func setUp() {
        super.setUp()
        bastionLock = open("/run/fleet-lab-jump2.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if bastionLock >= 0 { while flock(bastionLock, LOCK_EX) != 0 && errno == EINTR {} }
        do {
            let lab = try Lab.up(3, name: "jump2", net: "e1", hostKeys: "ed25519")
            bastions = lab
            let r = Lab.run([Lab.script, "behind", "--name", "jump1", "--via", "jump2"])
            if r.status != 0 { setUpError = "scripts/lab behind failed: \(r.output)" }
        } catch {
            setUpError = "\(error)"
        }
    }

    override class func tearDown() {
        bastions?.down()
        bastions = nil
        if bastionLock >= 0 { close(bastionLock) }
        super.tearDown()
    }

    func labs() throws -> (targets: Lab, bastions: Lab) {
        let targets = try lab()
        if let e = Self.setUpError { throw LabError(e) }
        return (targets, try XCTUnwrap(Self.bastions))
    }

    func fleetBinary() throws -> String {
        let path = Lab.repo + "/.build/debug/fleet"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw LabError("\(path) is missing: run swift build --build-tests first")
        }
        return path
    }

    /// A hop to bastion host `i`, with the bastion lab's own key and known_hosts.
    func hop(_ b: Lab, _ i: Int, knownHosts: String? = nil) -> String {
        "{ host = \"root@[\(b.hosts[i - 1].address)]:22\", identity = \"\(b.info.identity)\", known_hosts = \"\(knownHosts ?? b.info.known_hosts)\" }"
    }

    /// The targets' lab inventory with `[ssh]` lines added (and, with `upTo`, only hosts 1…upTo).
    func inventory(_ t: Lab, _ file: String, ssh: String, upTo: Int? = nil) throws -> String {
        var text = try String(contentsOfFile: t.inventoryPath, encoding: .utf8)
        text = text.replacingOccurrences(of: "forks = 50\n", with: "forks = 50\n\(ssh)\n")
        if let upTo, let cut = text.range(of: "\n[[hosts]]\nname = \"jump1-\(upTo + 1)\"") {
            text = String(text[..<cut.lowerBound])
        }
        let path = t.dir + "/" + file
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    struct ExecLine: Decodable {
        var host: String
        var status: String
        var stdout: String
        var error: String?
    }

    /// `fleet exec INVENTORY --json -- COMMAND`: one result per host, and the seconds it took.
    func exec(_ inventory: String, _ command: String, limit: String? = nil) throws -> ([String: ExecLine], Double) {
        var args = [try fleetBinary(), "exec", inventory, "--json"]
        if let limit { args += ["--limit", limit] }
        let start = Date()
        let r = Lab.run(args + ["--", command])
        let seconds = Date().timeIntervalSince(start)
        var out: [String: ExecLine] = [:]
        for line in r.output.split(separator: "\n") where line.hasPrefix("{") {
            if let e = try? JSONDecoder().decode(ExecLine.self, from: Data(line.utf8)) { out[e.host] = e }
        }
        return (out, seconds)
    }

    func logins(_ b: Lab, _ i: Int) -> [String] {
        // sshd ends its lines with CR LF, which Swift counts as one Character: split the bytes.
        let data = FileManager.default.contents(atPath: "\(b.dir)/hosts/\(i)/sshd.log") ?? Data()
        return data.split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
            .filter { $0.contains("Accepted publickey") }
    }

    // MARK: - Tests

    /// 24 targets through one bastion with OpenSSH's default MaxStartups (10 pending logins), three
    /// runs in a row: every host answers each time, over one bastion login per run.
    func test1_EveryTargetThroughOneBastionThreeTimes() throws {
        let (t, b) = try labs()
        let config = try String(contentsOfFile: "\(b.dir)/hosts/1/sshd_config", encoding: .utf8)
        XCTAssertFalse(config.contains("MaxStartups"), "the bastion must run with OpenSSH's default MaxStartups")
        // No direct way: the targets are unreachable without the jump host.
        let direct = try inventory(t, "direct.toml", ssh: "")
        let (alone, _) = try exec(direct, "hostname", limit: "jump1-1")
        XCTAssertEqual(alone["jump1-1"]?.status, "unreachable", "\(String(describing: alone["jump1-1"]))")

        let inv = try inventory(t, "through.toml", ssh: "jump = [\(hop(b, 1))]")
        let before = logins(b, 1).count
        for run in 1...3 {
            let (results, _) = try exec(inv, "hostname")
            XCTAssertEqual(results.count, 24, "run \(run)")
            for i in 1...24 {
                let r = results["jump1-\(i)"]
                XCTAssertEqual(r?.status, "ok", "run \(run), jump1-\(i): \(r?.error ?? "no result")")
                XCTAssertEqual(r?.stdout, "jump1-\(i)\n", "run \(run)")
            }
        }
        XCTAssertEqual(logins(b, 1).count - before, 3, "one bastion login per run, shared by all 24 targets")
    }

    /// A bastion whose key differs from known_hosts: refused, naming the hop and the offered fingerprint.
    func test2_WrongBastionKeyIsRefusedNamingTheHopAndFingerprint() throws {
        let (t, b) = try labs()
        let address = b.hosts[0].address
        // known_hosts that records host 2's key under host 1's address.
        let key = try String(contentsOfFile: "\(b.dir)/hosts/2/ssh_host_ed25519_key.pub", encoding: .utf8)
            .split(separator: " ")
        let wrong = t.dir + "/wrong_known_hosts"
        try "\(address) \(key[0]) \(key[1])\n".write(toFile: wrong, atomically: true, encoding: .utf8)
        let offered = Lab.run(["/usr/bin/ssh-keygen", "-l", "-f", "\(b.dir)/hosts/1/ssh_host_ed25519_key.pub"]).output
            .split(separator: " ")[1]
        let inv = try inventory(t, "wrongkey.toml", ssh: "jump = [\(hop(b, 1, knownHosts: wrong))]")
        let (results, _) = try exec(inv, "hostname", limit: "jump1-1,jump1-2")
        for name in ["jump1-1", "jump1-2"] {
            let r = try XCTUnwrap(results[name])
            XCTAssertEqual(r.status, "failed", "a changed key is a refusal, not an unreachable host")
            let error = r.error ?? ""
            XCTAssertTrue(error.contains("jump host root@[\(address)]:22"), error)
            XCTAssertTrue(error.contains("HAS CHANGED"), error)
            XCTAssertTrue(error.contains(String(offered)), "fingerprint \(offered) missing: \(error)")
        }
    }

    /// A bastion with AllowTcpForwarding no: a clear error, at once.
    func test3_ForwardingDisabledIsAClearErrorWithinSeconds() throws {
        let (t, b) = try labs()
        let inv = try inventory(t, "noforward.toml", ssh: "jump = [\(hop(b, 2))]")
        let (results, seconds) = try exec(inv, "hostname", limit: "jump1-1,jump1-2,jump1-3")
        XCTAssertEqual(results.count, 3)
        for (_, r) in results {
            XCTAssertEqual(r.status, "failed")
            let error = r.error ?? ""
            XCTAssertTrue(error.contains("jump host root@[\(b.hosts[1].address)]:22"), error)
            XCTAssertTrue(error.contains("administratively prohibited") && error.contains("AllowTcpForwarding"), error)
        }
        XCTAssertLessThan(seconds, 5)
    }

    /// A target the bastion cannot reach (nothing listens on its port): unreachable, and the cause named.
    func test3b_TargetUnreachableFromTheBastionIsNamed() throws {
        let (t, b) = try labs()
        var text = try String(contentsOfFile: try inventory(t, "closed.toml", ssh: "jump = [\(hop(b, 1))]"), encoding: .utf8)
        let entry = "address = \"\(t.hosts[0].address)\"\n"
        XCTAssertTrue(text.contains(entry))
        text = text.replacingOccurrences(of: entry, with: entry + "port = 2323\n")
        let inv = t.dir + "/closed.toml"
        try text.write(toFile: inv, atomically: true, encoding: .utf8)
        let (results, _) = try exec(inv, "hostname", limit: "jump1-1,jump1-2")
        let r = try XCTUnwrap(results["jump1-1"])
        XCTAssertEqual(r.status, "unreachable")
        let error = r.error ?? ""
        XCTAssertTrue(error.contains("jump host root@[\(b.hosts[0].address)]:22 could not open a connection to [\(t.hosts[0].address)]:2323"), error)
        XCTAssertTrue(error.contains("connect failed") && error.contains("the jump host cannot reach it"), error)
        XCTAssertEqual(results["jump1-2"]?.status, "ok", "the bastion session stays usable for the other hosts")
    }

    /// The bastion gone silent: every target unreachable within connect_timeout + 5 s, naming the hop.
    func test4_BastionDownMakesEveryTargetUnreachableInTime() throws {
        let (t, b) = try labs()
        var text = try String(contentsOfFile: try inventory(t, "down.toml", ssh: "jump = [\(hop(b, 1))]"), encoding: .utf8)
        text = text.replacingOccurrences(of: "connect_timeout = 5", with: "connect_timeout = 3")
        let inv = t.dir + "/down.toml"
        try text.write(toFile: inv, atomically: true, encoding: .utf8)
        b.link(1, up: false)
        defer { b.link(1, up: true) }
        let (results, seconds) = try exec(inv, "hostname")
        XCTAssertEqual(results.count, 24)
        for i in 1...24 {
            let r = results["jump1-\(i)"]
            XCTAssertEqual(r?.status, "unreachable", "jump1-\(i)")
            XCTAssertTrue(r?.error?.contains("jump host root@[\(b.hosts[0].address)]:22") ?? false, r?.error ?? "")
        }
        XCTAssertLessThan(seconds, 3 + 5)
    }

    /// Two hops: jump2-3, then jump2-1 (which sees the login come from jump2-3), then the targets.
    func test5_TwoHops() throws {
        let (t, b) = try labs()
        let inv = try inventory(t, "twohops.toml", ssh: "jump = [\(hop(b, 3)), \(hop(b, 1))]")
        let before = logins(b, 1).count
        let (results, _) = try exec(inv, "hostname", limit: "jump1-1,jump1-2,jump1-3,jump1-4")
        XCTAssertEqual(results.count, 4)
        for (name, r) in results {
            XCTAssertEqual(r.status, "ok", "\(name): \(r.error ?? "")")
            XCTAssertEqual(r.stdout, "\(name)\n")
        }
        let new = logins(b, 1).dropFirst(before)
        XCTAssertEqual(new.count, 1)
        XCTAssertTrue(new.first?.contains("from \(b.hosts[2].address)") ?? false, "\(new)")
    }

    /// A host the inventory names only by its ssh config alias: HostName, User, IdentityFile,
    /// UserKnownHostsFile and ProxyJump (itself an alias) come from the config, and check says so.
    func test6_HostDefinedOnlyInAnSSHConfigFile() throws {
        let (t, b) = try labs()
        let config = t.dir + "/ssh_config"
        try """
            # fleet's lab test
            Host bastion
                HostName \(b.hosts[0].address)
                User root
                IdentityFile \(b.info.identity)
                UserKnownHostsFile \(b.info.known_hosts)

            Host web-a
                HostName \(t.hosts[4].address)

            Host web-* !web-z
                User root
                IdentityFile \(t.info.identity)
                UserKnownHostsFile \(t.info.known_hosts)
                ProxyJump bastion
                Port 22
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let lab = try String(contentsOfFile: t.inventoryPath, encoding: .utf8)
        let head = try XCTUnwrap(lab.range(of: "[ssh]"))
        let inv = t.dir + "/alias.toml"
        try (String(lab[..<head.lowerBound])
            + "[ssh]\nconfig = \"\(config)\"\n\n[[hosts]]\nname = \"web\"\naddress = \"web-a\"\nrole = \"server\"\n"
            + "node_ip = \"\(t.hosts[4].address)\"\n")
            .write(toFile: inv, atomically: true, encoding: .utf8)
        let (results, _) = try exec(inv, "hostname")
        XCTAssertEqual(results["web"]?.status, "ok", results["web"]?.error ?? "no result")
        XCTAssertEqual(results["web"]?.stdout, "jump1-5\n")

        let check = Lab.run([try fleetBinary(), "check", inv])
        let line = check.output.split(separator: "\n").first { $0.hasPrefix("web connection:") }.map(String.init) ?? check.output
        XCTAssertTrue(line.contains("address \(t.hosts[4].address) (ssh config \(config):9, HostName for web-a)"), line)
        XCTAssertTrue(line.contains("user root (ssh config \(config):12, User)"), line)
        XCTAssertTrue(line.contains("jump root@[\(b.hosts[0].address)]:22 (ssh config \(config):15, ProxyJump)"), line)
    }

    /// The K3s playbook, end to end, on three targets reached only through the bastion.
    func test7_K3sPlaybookThroughTheBastion() throws {
        let (t, b) = try labs()
        let inv = try inventory(t, "k3s.toml", ssh: "jump = [\(hop(b, 1))]", upTo: 3)
        let r = Lab.run([try fleetBinary(), "up", inv, "--playbook", Lab.repo + "/playbooks/k3s-ipv6.toml", "--json"])
        XCTAssertEqual(r.status, 0, r.output.suffix(3000).description)
        let verify = r.output.split(separator: "\n").first { $0.contains("\"verify\"") && $0.contains("\"task_finished\"") }
        XCTAssertTrue(verify?.contains("3 node(s) Ready on IPv6") ?? false, String(verify ?? "no verify result"))
        XCTAssertEqual(t.exec(2, "cat /etc/rancher/k3s/config.yaml | grep -c 'server: \"https://\\[\(t.hosts[0].address)\\]:6443\"'").output, "1\n")
    }
}
