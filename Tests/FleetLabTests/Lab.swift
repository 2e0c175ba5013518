import FleetCore
import Foundation
import XCTest

/// A lab of real sshd hosts in network namespaces, made by `scripts/lab` for a test class.
final class Lab: @unchecked Sendable {
    struct LabHost: Decodable {
        var index: Int
        var name: String
        var address: String
    }

    struct Info: Decodable {
        var name: String
        var dir: String
        var gateway: String
        var inventory: String
        var identity: String
        var known_hosts: String
        var hosts: [LabHost]
    }

    static let repo: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }()

    static var script: String { repo + "/scripts/lab" }

    let info: Info
    var hosts: [LabHost] { info.hosts }
    var dir: String { info.dir }
    var inventoryPath: String { info.inventory }

    /// Skips the test when the machine cannot build a lab (not root, no sshd).
    static func requireLab() throws {
        guard getuid() == 0 else { throw XCTSkip("the lab needs root (network namespaces)") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd") else {
            throw XCTSkip("the lab needs openssh-server (/usr/sbin/sshd)")
        }
    }

    /// `hostKeys`: the host key types to make (scripts/lab's FLEET_LAB_HOST_KEYS; nil: its default).
    static func up(_ n: Int, servers: Int = 1, name: String, net: String, hostKeys: String? = nil) throws -> Lab {
        try requireLab()
        let dir = "/run/fleet-test-\(name)"
        _ = run([script, "down", "--name", name, "--net", net, "--dir", dir])
        var env = ["/usr/bin/env"]
        if let hostKeys { env.append("FLEET_LAB_HOST_KEYS=\(hostKeys)") }
        // A big lab's sshds take a while to answer on a busy machine.
        if n > 100 { env.append("FLEET_LAB_UP_TIMEOUT=\(30 + n / 5)") }
        let r = run(env + [script, "up", String(n), "--servers", String(servers), "--name", name, "--net", net, "--dir", dir])
        guard r.status == 0 else { throw LabError("scripts/lab up failed: \(r.output)") }
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/lab.json"))
        return Lab(info: try JSONDecoder().decode(Info.self, from: data), net: net)
    }

    let net: String

    private init(info: Info, net: String) {
        self.info = info
        self.net = net
    }

    func down() {
        _ = Lab.run([Lab.script, "down", "--name", info.name, "--net", net, "--dir", info.dir])
    }

    /// Runs a command inside host `index`'s namespaces.
    @discardableResult
    func exec(_ index: Int, _ command: String) -> (status: Int32, output: String) {
        Lab.run([Lab.script, "exec", String(index), "--name", info.name, "--", "sh", "-c", command])
    }

    func link(_ index: Int, up: Bool) {
        _ = Lab.run([Lab.script, "link", String(index), up ? "up" : "down", "--name", info.name])
    }

    func rekey(_ index: Int) {
        let r = Lab.run([Lab.script, "rekey", String(index), "--name", info.name])
        XCTAssertEqual(r.status, 0, r.output)
    }

    func inventory() throws -> Inventory {
        try Inventory.load(path: info.inventory)
    }

    /// Writes a variant of the lab inventory (text replaced) beside it and loads it.
    func inventory(named file: String, _ edit: (String) -> String) throws -> Inventory {
        let text = try String(contentsOfFile: info.inventory, encoding: .utf8)
        let path = info.dir + "/" + file
        try edit(text).write(toFile: path, atomically: true, encoding: .utf8)
        return try Inventory.load(path: path)
    }

    /// Runs a program and waits for it (posix_spawn + waitpid: the lab's background hosts must
    /// not keep a pipe open, and Foundation's Process does not always notice a child's exit here).
    @discardableResult
    static func run(_ args: [String], stdin: String? = nil) -> (status: Int32, output: String) {
        let r = LocalCommand.run(args, stdin: Data((stdin ?? "").utf8), mergeStderr: true)
        return (r.status, r.stdoutText)
    }
}

struct LabError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A test class with a lab of its own, brought up once for the class and torn down after it.
class LabTestCase: XCTestCase {
    /// Hosts, name and net (a hex number no other test class uses) of the class's lab.
    class var labSpec: (hosts: Int, name: String, net: String) { (1, "labtest", "70") }
    /// How many of the hosts (the first ones) the lab's inventory makes servers.
    class var labServers: Int { 1 }
    /// The host key types the lab's hosts get (nil: scripts/lab's default, ed25519 and ECDSA).
    class var labHostKeys: String? { nil }

    nonisolated(unsafe) private static var labs: [String: Lab] = [:]
    nonisolated(unsafe) private static var locks: [String: Int32] = [:]

    override class func setUp() {
        super.setUp()
        let spec = labSpec
        // Two test processes on one machine (two checkouts) must not tear down each other's lab of
        // the same name: the class holds a lock on its lab's name from set-up to tear-down.
        let fd = open("/run/fleet-lab-\(spec.name).lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 {
            while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
            locks[spec.name] = fd
        }
        labs[spec.name] = try? Lab.up(spec.hosts, servers: labServers, name: spec.name, net: spec.net,
                                      hostKeys: labHostKeys)
    }

    override class func tearDown() {
        labs.removeValue(forKey: labSpec.name)?.down()
        if let fd = locks.removeValue(forKey: labSpec.name) { close(fd) }
        super.tearDown()
    }

    /// The class's lab; skips without root, fails when it did not come up.
    func lab() throws -> Lab {
        try Lab.requireLab()
        guard let lab = LabTestCase.labs[type(of: self).labSpec.name] else { throw LabError("the lab did not come up") }
        return lab
    }
}

/// A non-root user with the lab key and passwordless sudo, for `become = "sudo"` tests. /etc is
/// shared by every lab host and this machine: the user is made once (kept if it exists) and the
/// test class that asked for it removes it, with its sudoers entry, when it is done.
enum LabSudoUser {
    static func sudoersFile(_ name: String) -> String { "/etc/sudoers.d/fleet-lab-\(name)" }

    /// Creates `name` (home /tmp, private per lab host; login shell bash) with NOPASSWD sudo.
    static func add(_ name: String) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/sudo") else {
            throw XCTSkip("sudo is not installed (apt-get install sudo)")
        }
        let file = sudoersFile(name)
        let script = """
            set -e
            id -u \(name) >/dev/null 2>&1 || useradd -M -d /tmp -s /bin/bash \(name)
            usermod -p '*' \(name)   # '!' (locked) would make sshd refuse it without PAM
            printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\\n' \(name) > \(file).tmp
            chmod 0440 \(file).tmp
            visudo -cqf \(file).tmp
            mv -f \(file).tmp \(file)
            """
        let r = Lab.run(["/bin/sh", "-c", script])
        guard r.status == 0 else { throw LabError("cannot make sudo user \(name): \(r.output)") }
    }

    static func remove(_ name: String) {
        _ = Lab.run(["/bin/sh", "-c", "rm -f \(sudoersFile(name)) \(sudoersFile(name)).tmp; ! id -u \(name) >/dev/null 2>&1 || userdel \(name)"])
    }
}
