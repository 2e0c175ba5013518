import FleetCore
import FleetRemote
import FleetSSH
import Foundation
import XCTest

/// The SSH layer against real OpenSSH servers reached over IPv6.
final class SSHLabTests: LabTestCase {
    override class var labSpec: (hosts: Int, name: String, net: String) { (21, "sshtest", "71") }

    func target(_ lab: Lab, _ index: Int, knownHosts: String? = nil, policy: HostKeyCheck = .strict,
                identity: String? = nil, passphrase: String? = nil, timeout: Double = 5) -> SSHTarget {
        SSHTarget(host: lab.hosts[index - 1].address, port: 22, user: "root",
                  credentials: SSHCredentials(identityFile: identity ?? lab.info.identity, passphrase: passphrase, useAgent: false),
                  knownHosts: knownHosts ?? lab.info.known_hosts, hostKeyCheck: policy, connectTimeout: timeout)
    }

    func tempFile(_ name: String, _ content: String = "") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-ssh-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try content.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testConnectsOverIPv6AndRunsOnTheRightHost() throws {
        let lab = try lab()
        let s = try SSHSession.connect(target(lab, 2))
        defer { s.close() }
        let r = try s.exec("hostname")
        XCTAssertEqual(r.exitCode, 0)
        XCTAssertEqual(r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), lab.hosts[1].name)
        XCTAssertTrue(lab.hosts[1].address.contains(":"), "lab addresses are IPv6")
        XCTAssertTrue(s.hostKeyFingerprint.hasPrefix("SHA256:"))
    }

    func testUnknownHostIsRefusedUnderStrictWithFingerprint() throws {
        let lab = try lab()
        let empty = try tempFile("known_hosts")
        XCTAssertThrowsError(try SSHSession.connect(target(lab, 3, knownHosts: empty))) { error in
            guard case SSHError.unknownHostKey(_, _, let fp, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(fp.hasPrefix("SHA256:"), fp)
            XCTAssertTrue("\(error)".contains(fp))
        }
        XCTAssertEqual(try String(contentsOfFile: empty, encoding: .utf8), "", "strict never writes known_hosts")
    }

    func testAcceptNewAppendsThenStrictAccepts() throws {
        let lab = try lab()
        let file = try tempFile("known_hosts", "# kept\n")
        let s = try SSHSession.connect(target(lab, 4, knownHosts: file, policy: .acceptNew))
        let fp = s.hostKeyFingerprint
        s.close()
        let text = try String(contentsOfFile: file, encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("# kept\n"))
        let lines = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
        XCTAssertEqual(lines.count, 1)
        XCTAssertTrue(lines[0].hasPrefix(lab.hosts[3].address + " ssh-ed25519 "), String(lines[0]))
        // Now known: strict accepts the same key.
        let again = try SSHSession.connect(target(lab, 4, knownHosts: file, policy: .strict))
        XCTAssertEqual(again.hostKeyFingerprint, fp)
        again.close()
        // The line libssh2 appended is one OpenSSH's own client accepts.
        let ssh = Lab.run(["/usr/bin/ssh", "-i", lab.info.identity, "-o", "UserKnownHostsFile=\(file)",
                           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "root@\(lab.hosts[3].address)", "true"])
        XCTAssertEqual(ssh.status, 0, ssh.output)
    }

    func testHashedKnownHostsAndEd25519Preference() throws {
        let lab = try lab()
        // Only the ed25519 line, hashed: libssh2 1.10 alone would negotiate ECDSA and miss it.
        let all = try String(contentsOfFile: lab.info.known_hosts, encoding: .utf8)
        let line = all.split(separator: "\n").first { $0.hasPrefix(lab.hosts[4].address + " ssh-ed25519") }!
        let file = try tempFile("known_hosts", String(line) + "\n")
        let keygen = Lab.run(["/usr/bin/ssh-keygen", "-H", "-f", file])
        XCTAssertEqual(keygen.status, 0, keygen.output)
        XCTAssertTrue(try String(contentsOfFile: file, encoding: .utf8).hasPrefix("|1|"))
        let s = try SSHSession.connect(target(lab, 5, knownHosts: file))
        XCTAssertEqual(s.hostKeyType, "ssh-ed25519")
        s.close()
    }

    func testChangedHostKeyIsRefusedWithItsFingerprint() throws {
        let lab = try lab()
        lab.rekey(21)
        XCTAssertThrowsError(try SSHSession.connect(target(lab, 21))) { error in
            guard case SSHError.changedHostKey(_, _, let fp, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(fp.hasPrefix("SHA256:"))
            XCTAssertTrue("\(error)".contains("HAS CHANGED"))
            XCTAssertTrue("\(error)".contains(fp))
        }
    }

    func testWrongKeyIsAClearAuthenticationError() throws {
        let lab = try lab()
        let key = try tempFile("placeholder")
        try FileManager.default.removeItem(atPath: key)
        XCTAssertEqual(Lab.run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key]).status, 0)
        XCTAssertThrowsError(try SSHSession.connect(target(lab, 7, identity: key))) { error in
            guard case SSHError.authentication(let user, _, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(user, "root")
            XCTAssertTrue(reason.contains("refused key"), reason)
        }
    }

    func testRSAKeyGetsAdvice() throws {
        let lab = try lab()
        let key = try tempFile("placeholder")
        try FileManager.default.removeItem(atPath: key)
        XCTAssertEqual(Lab.run(["/usr/bin/ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", key]).status, 0)
        XCTAssertThrowsError(try SSHSession.connect(target(lab, 7, identity: key))) { error in
            XCTAssertTrue("\(error)".contains("RSA"), "\(error)")
            XCTAssertTrue("\(error)".contains("ed25519"), "\(error)")
        }
    }

    func testPassphraseProtectedKeyAndAgent() throws {
        let lab = try lab()
        let key = try tempFile("placeholder")
        try FileManager.default.removeItem(atPath: key)
        XCTAssertEqual(Lab.run(["/usr/bin/ssh-keygen", "-q", "-t", "ecdsa", "-N", "s3cret phrase", "-f", key]).status, 0)
        let pub = try String(contentsOfFile: key + ".pub", encoding: .utf8)
        let auth = FileHandle(forWritingAtPath: lab.dir + "/authorized_keys")!
        auth.seekToEndOfFile()
        auth.write(Data(pub.utf8))
        try auth.close()

        let s = try SSHSession.connect(target(lab, 8, identity: key, passphrase: "s3cret phrase"))
        XCTAssertEqual(try s.exec("echo hi").stdoutText, "hi\n")
        s.close()
        XCTAssertThrowsError(try SSHSession.connect(target(lab, 8, identity: key, passphrase: "wrong"))) { error in
            XCTAssertTrue("\(error)".contains("passphrase"), "\(error)")
        }

        // ssh-agent holding the key: no identity file given.
        let sock = (key as NSString).deletingLastPathComponent + "/agent.sock"
        // ssh-agent forks once its socket is ready and prints its pid.
        let started = Lab.run(["/usr/bin/ssh-agent", "-s", "-a", sock])
        XCTAssertEqual(started.status, 0, started.output)
        let agentPid = started.output.components(separatedBy: "SSH_AGENT_PID=").dropFirst().first
            .flatMap { Int32($0.prefix { $0.isNumber }) }
        XCTAssertNotNil(agentPid, started.output)
        defer { if let agentPid { kill(agentPid, SIGTERM) } }
        let added = Lab.run(["/usr/bin/env", "SSH_AUTH_SOCK=\(sock)", "/usr/bin/ssh-add", lab.info.identity])
        XCTAssertEqual(added.status, 0, added.output)
        setenv("SSH_AUTH_SOCK", sock, 1)
        defer { unsetenv("SSH_AUTH_SOCK") }
        var t = target(lab, 8)
        t.credentials = SSHCredentials(identityFile: nil, passphrase: nil, useAgent: true)
        let viaAgent = try SSHSession.connect(t)
        XCTAssertEqual(try viaAgent.exec("hostname").stdoutText.trimmingCharacters(in: .newlines), lab.hosts[7].name)
        viaAgent.close()
    }

    func testExitCodesSignalsAndStdin() throws {
        let lab = try lab()
        let s = try SSHSession.connect(target(lab, 9))
        defer { s.close() }
        XCTAssertEqual(try s.exec("exit 7").exitCode, 7)
        let killed = try s.exec("kill -TERM $$")
        XCTAssertNil(killed.exitCode)
        XCTAssertEqual(killed.exitSignal, "TERM")
        var input = Data()
        for i in 0..<300_000 { input.append(UInt8(truncatingIfNeeded: i &* 31)) }
        let echoed = try s.exec("cat", stdin: input)
        XCTAssertEqual(echoed.stdout, input)
        let text = "héllo wörld ✓\n"
        XCTAssertEqual(try s.exec("printf %s \(shellQuote(text))").stdoutText, text, "non-ASCII command lengths are byte counts")
    }

    func testFloodOfStdoutAndStderrAtOnce() throws {
        let lab = try lab()
        let s = try SSHSession.connect(target(lab, 10))
        defer { s.close() }
        let r = try s.exec("head -c 5000000 /dev/zero | tr '\\0' o & head -c 5000000 /dev/zero | tr '\\0' e >&2 & wait", timeout: 120)
        XCTAssertEqual(r.exitCode, 0)
        // Both streams counted in full; only a head and a tail of each kept in memory.
        XCTAssertEqual(r.stdoutBytes, 5_000_000)
        XCTAssertEqual(r.stderrBytes, 5_000_000)
        XCTAssertEqual(r.stdout.count, OutputLimits.head + OutputLimits.tail)
        XCTAssertEqual(r.stderr.count, OutputLimits.head + OutputLimits.tail)
        XCTAssertTrue(r.stdout.allSatisfy { $0 == UInt8(ascii: "o") })
        XCTAssertTrue(r.stderr.allSatisfy { $0 == UInt8(ascii: "e") })
    }

    func testCommandPastItsTimeoutIsStopped() throws {
        let lab = try lab()
        let s = try SSHSession.connect(target(lab, 11))
        defer { s.close() }
        let marker = "31.\(Int.random(in: 100...999))"
        let r = try s.exec("echo started; sleep \(marker)", timeout: 2)
        XCTAssertTrue(r.timedOut)
        XCTAssertNil(r.exitCode)
        XCTAssertEqual(r.stdoutText, "started\n")
        XCTAssertLessThan(r.duration, 15)
        // The remote command is gone (the PID space is shared by the lab, so look for the marker).
        let left = try s.exec("pgrep -f '[s]leep \(marker)' || true")
        XCTAssertEqual(left.stdoutText, "", "the timed-out command still runs")
    }

    func testUploadEnforcesModeOverAnExistingFile() throws {
        let lab = try lab()
        let s = try SSHSession.connect(target(lab, 12))
        defer { s.close() }
        _ = try s.exec("umask 022; echo old > /etc/rancher/secret.txt; chmod 0644 /etc/rancher/secret.txt")
        let content = Data("new content with 'quotes' and $(not run)\n".utf8)
        try s.upload(content, to: "/etc/rancher/secret.txt", mode: 0o600)
        XCTAssertEqual(try s.exec("stat -c %a /etc/rancher/secret.txt").stdoutText, "600\n")
        XCTAssertEqual(try s.readFile("/etc/rancher/secret.txt"), content)
        XCTAssertEqual(try s.exec("ls -a /etc/rancher | grep -c fleet- || true").stdoutText, "0\n", "no temp file left")
        XCTAssertThrowsError(try s.readFile("/etc/rancher/missing"))
    }

    func testExecOnTwentyHostsAndOneHostDown() throws {
        let lab = try lab()
        let inventory = try lab.inventory(named: "fast.toml") { $0.replacingOccurrences(of: "connect_timeout = 5", with: "connect_timeout = 2") }
        let twenty = Array(inventory.hosts.prefix(20))
        let all = ExecVerb.run(command: "hostname", inventory: inventory, hosts: twenty, forks: 20, timeout: 30, connector: SSHConnector()) { _ in }.results
        XCTAssertEqual(all.map(\.status), Array(repeating: "ok", count: 20), all.map(\.human).joined(separator: "\n"))
        XCTAssertEqual(all.map { $0.stdout.trimmingCharacters(in: .newlines) }, twenty.map(\.name))

        lab.link(13, up: false)
        defer { lab.link(13, up: true) }
        let some = ExecVerb.run(command: "hostname", inventory: inventory, hosts: twenty, forks: 20, timeout: 30, connector: SSHConnector()) { _ in }.results
        for r in some {
            if r.host == lab.hosts[12].name {
                XCTAssertEqual(r.status, "unreachable", r.human)
                XCTAssertTrue(r.error?.contains("timed out") ?? false, r.human)
            } else {
                XCTAssertEqual(r.status, "ok", r.human)
            }
        }
    }
}
