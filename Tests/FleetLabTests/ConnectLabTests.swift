import FleetCore
import FleetRemote
import FleetSSH
import Foundation
import XCTest

/// Setting up a connection: host key checking against known_hosts files that real users have
/// (revoked keys, other key types, bad lines, non-22 ports), one read of the file per run, and
/// one deadline for the whole set-up.
final class ConnectLabTests: LabTestCase {
    override class var labSpec: (hosts: Int, name: String, net: String) { (3, "cnkh", "b0") }

    func target(_ lab: Lab, _ index: Int, knownHosts: String, policy: HostKeyCheck = .strict, port: Int = 22,
                host: String? = nil, timeout: Double = 5) -> SSHTarget {
        SSHTarget(host: host ?? lab.hosts[index - 1].address, port: port, user: "root",
                  credentials: SSHCredentials(identityFile: lab.info.identity, useAgent: false),
                  knownHosts: knownHosts, hostKeyCheck: policy, connectTimeout: timeout,
                  knownHostsStore: KnownHostsStore())
    }

    func file(_ lab: Lab, _ content: String) throws -> String {
        let path = lab.dir + "/kh-\(UUID().uuidString)"
        try content.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The lab's known_hosts line for host `index` and key type `type`.
    func line(_ lab: Lab, _ index: Int, _ type: String) throws -> String {
        let all = try String(contentsOfFile: lab.info.known_hosts, encoding: .utf8)
        let l = all.split(separator: "\n").first { $0.hasPrefix(lab.hosts[index - 1].address + " " + type + " ") }
        return try XCTUnwrap(l.map(String.init), "no \(type) line for host \(index)")
    }

    func testRevokedKeyIsRefusedUnderEveryPolicy() throws {
        let lab = try lab()
        let all = try String(contentsOfFile: lab.info.known_hosts, encoding: .utf8)
        let key = try line(lab, 1, "ssh-ed25519").split(separator: " ")[2]
        let path = try file(lab, all + "@revoked * ssh-ed25519 \(key)\n")
        for policy in [HostKeyCheck.strict, .acceptNew] {
            XCTAssertThrowsError(try SSHSession.connect(target(lab, 1, knownHosts: path, policy: policy))) { error in
                guard case SSHError.revokedHostKey = error else { return XCTFail("\(policy): \(error)") }
                XCTAssertTrue("\(error)".contains("REVOKED"), "\(error)")
            }
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), all + "@revoked * ssh-ed25519 \(key)\n")
        let other = try SSHSession.connect(target(lab, 2, knownHosts: path))
        other.close()
    }

    func testAcceptNewNeverAppendsASecondKeyType() throws {
        let lab = try lab()
        // Host 2 is recorded with an ECDSA P-384 key it does not have: it offers ed25519, a new type.
        let keyPath = lab.dir + "/p384-\(UUID().uuidString)"
        let keygen = Lab.run(["/usr/bin/ssh-keygen", "-q", "-N", "", "-t", "ecdsa", "-b", "384", "-f", keyPath])
        XCTAssertEqual(keygen.status, 0, keygen.output)
        let pub = try String(contentsOfFile: keyPath + ".pub", encoding: .utf8).split(separator: " ")
        let content = "\(lab.hosts[1].address) \(pub[0]) \(pub[1])\n"
        let path = try file(lab, content)
        XCTAssertThrowsError(try SSHSession.connect(target(lab, 2, knownHosts: path, policy: .acceptNew))) { error in
            guard case SSHError.changedHostKey(_, let type, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(type, "ssh-ed25519")
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), content, "nothing appended")
    }

    func testBadLinesAreSkippedAndTheRestStillWorks() throws {
        let lab = try lab()
        let all = try String(contentsOfFile: lab.info.known_hosts, encoding: .utf8)
        let bad = "this line is not a known_hosts line\n"
            + "@cert-authority *.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFOrMFRb7FIms8mqW6lrJ30myvbS/0Y7qDIvWnE8yaoG\n"
            + "fd42:f1ee:7:b0::9 ssh-ed25519 " + String(repeating: "A", count: 20_000) + "\n"
        let path = try file(lab, bad + all)
        let s = try SSHSession.connect(target(lab, 3, knownHosts: path))
        XCTAssertEqual(s.hostKeyType, "ssh-ed25519")
        s.close()
    }

    func testBracketedPortDoesNotFallBackToThePort22Entry() throws {
        let lab = try lab()
        let addr = lab.hosts[0].address
        let hd = lab.dir + "/hosts/1"
        // A second sshd on host 1, port 2222, with the same host keys.
        let started = lab.exec(1, "/usr/sbin/sshd -f \(hd)/sshd_config -o 'ListenAddress [\(addr)]:2222' -o PidFile=\(hd)/sshd-2222.pid -E \(hd)/sshd-2222.log")
        XCTAssertEqual(started.status, 0, started.output)
        defer { lab.exec(1, "kill $(cat \(hd)/sshd-2222.pid)") }
        let plainOnly = try file(lab, try line(lab, 1, "ssh-ed25519") + "\n")
        XCTAssertThrowsError(try connectWhenListening(target(lab, 1, knownHosts: plainOnly, port: 2222))) { error in
            guard case SSHError.unknownHostKey(let name, _, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "[\(addr)]:2222")
        }
        let key = try line(lab, 1, "ssh-ed25519").split(separator: " ")[2]
        let bracketed = try file(lab, "[\(addr)]:2222 ssh-ed25519 \(key)\n")
        let s = try connectWhenListening(target(lab, 1, knownHosts: bracketed, port: 2222))
        s.close()
        XCTAssertThrowsError(try SSHSession.connect(target(lab, 1, knownHosts: bracketed))) { error in
            guard case SSHError.unknownHostKey = error else { return XCTFail("\(error)") }
        }
    }

    /// sshd forks into the background before it listens: a refused connect is tried again.
    func connectWhenListening(_ t: SSHTarget) throws -> SSHSession {
        let until = Date().addingTimeInterval(5)
        while true {
            do { return try SSHSession.connect(t) } catch let e as SSHError {
                guard case .connect(_, _, let reason) = e, reason.contains("refused"), Date() < until else { throw e }
                sched_yield()
            }
        }
    }

    func testConnectionsReadKnownHostsOncePerRun() throws {
        let lab = try lab()
        let copy = lab.dir + "/kh-once-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: lab.info.known_hosts, toPath: copy)
        let inv = try lab.inventory(named: "kh-once.toml") {
            $0.replacingOccurrences(of: "known_hosts = \"\(lab.info.known_hosts)\"", with: "known_hosts = \"\(copy)\"")
        }
        XCTAssertEqual(inv.hosts[0].ssh.knownHosts, copy)
        let connector = SSHConnector()
        DispatchQueue.concurrentPerform(iterations: inv.hosts.count * 3) { i in
            do {
                let c = try connector.connect(to: inv.hosts[i % inv.hosts.count])
                c.close()
            } catch {
                XCTFail("\(error)")
            }
        }
        XCTAssertEqual(KnownHostsStore.shared.reads(of: copy), 1, "9 connections, one read of known_hosts")
    }

    /// Through a relay that holds every server-to-client chunk for 0.4 s, the handshake and the
    /// authentication each take well under 2 s but together more: with connect_timeout 2 the
    /// connection must fail, and by 2 s plus a little (each phase once had a 2 s deadline of its own).
    func testOneDeadlineCoversHandshakeAndAuthentication() throws {
        let lab = try lab()
        let relay = try DelayRelay(listen: lab.info.gateway, to: lab.hosts[0].address, port: 22, delay: 0.4)
        defer { relay.stop() }
        let key = try line(lab, 1, "ssh-ed25519").split(separator: " ")[2]
        let kh = try file(lab, "[\(lab.info.gateway)]:\(relay.port) ssh-ed25519 \(key)\n")
        // With time enough, the relayed connection works (so a failure below is the deadline's).
        let slow = target(lab, 1, knownHosts: kh, port: relay.port, host: lab.info.gateway, timeout: 30)
        let t0 = Date()
        try SSHSession.connect(slow).close()
        let whole = Date().timeIntervalSince(t0)
        XCTAssertGreaterThan(whole, 2.4, "the relay slows set-up down enough for the test to mean something")

        let start = Date()
        XCTAssertThrowsError(try SSHSession.connect(target(lab, 1, knownHosts: kh, port: relay.port,
                                                           host: lab.info.gateway, timeout: 2))) { error in
            XCTAssertTrue("\(error)".contains("connect_timeout (2 s) passed"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2.5)
    }
}

/// A TCP relay on a lab address that delays each chunk from the server by `delay` seconds: a
/// slow link. Relays every connection it accepts until stopped.
final class DelayRelay: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var fds: [Int32] = []

    init(listen address: String, to upstream: String, port upstreamPort: Int, delay: Double) throws {
        var addr = sockaddr_in6()
        addr.sin6_family = sa_family_t(AF_INET6)
        guard inet_pton(AF_INET6, address, &addr.sin6_addr) == 1 else { throw LabError("bad address \(address)") }
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
        guard bound == 0, listen(fd, 8) == 0 else { throw LabError("relay: cannot listen: \(String(cString: strerror(errno)))") }
        var len = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: addr.sin6_port))
        var up = sockaddr_in6()
        up.sin6_family = sa_family_t(AF_INET6)
        up.sin6_port = UInt16(upstreamPort).bigEndian
        guard inet_pton(AF_INET6, upstream, &up.sin6_addr) == 1 else { throw LabError("bad address \(upstream)") }
        let target = up
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 { return }
                let server = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                var t = target
                let ok = withUnsafePointer(to: &t) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(server, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
                }
                track(client); track(server)
                guard ok == 0 else { continue }
                Thread.detachNewThread { Self.pump(from: client, to: server, delay: 0) }
                Thread.detachNewThread { Self.pump(from: server, to: client, delay: delay) }
            }
        }
    }

    private func track(_ fd: Int32) {
        lock.lock(); fds.append(fd); lock.unlock()
    }

    private static func pump(from: Int32, to: Int32, delay: Double) {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            if delay > 0 { usleep(UInt32(delay * 1_000_000)) }   // the slow link
            var off = 0
            while off < n {
                let w = buf[off..<n].withUnsafeBytes { send(to, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if w <= 0 { break }
                off += w
            }
        }
        shutdown(to, Int32(SHUT_WR))
    }

    /// Stops accepting and cuts every relayed connection.
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        lock.lock(); defer { lock.unlock() }
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
    }
}
