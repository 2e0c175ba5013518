import FleetCore
import FleetRemote
import FleetSSH
import Foundation
import XCTest

/// Hostile remote paths against real hosts, as root (bash runs the script) and as a sudo user
/// (`sudo -n -- sh -c`: dash runs it): the exact bytes and mode arrive and nothing else runs.
final class RemotePathLabTests: LabTestCase {
    override class var labSpec: (hosts: Int, name: String, net: String) { (2, "expath", "a0") }
    static let sudoUser = "exsudo"

    override class func setUp() {
        super.setUp()
        try? LabSudoUser.add(sudoUser)
    }

    override class func tearDown() {
        LabSudoUser.remove(sudoUser)
        super.tearDown()
    }

    /// Each is a file name under a fresh directory; several once ran code or deleted files.
    static let hostileNames = [
        "a b/x", "x'y", "x\"y", "x;y", "x EXIT;id>pwned;#", "x' EXIT;touch pwned;#'", "$(touch pwned)",
        "`touch pwned`", "x\\y", "*", "$HOME", "-rf", "ünï cödé ✓", "a b/c d/e", "x';touch pwned;'",
    ]

    /// (user, become) pairs: root with no become, and a sudo user.
    func identities() throws -> [(String, Become)] {
        let r = Lab.run(["/usr/bin/id", "-u", Self.sudoUser])
        guard r.status == 0 else { throw LabError("the sudo user was not made: \(r.output)") }
        return [("root", .none), (Self.sudoUser, .sudo)]
    }

    func connect(_ lab: Lab, _ index: Int, user: String, become: Become) throws -> SSHConnection {
        let t = SSHTarget(host: lab.hosts[index - 1].address, port: 22, user: user,
                          credentials: SSHCredentials(identityFile: lab.info.identity, useAgent: false),
                          knownHosts: lab.info.known_hosts, connectTimeout: 5)
        return SSHConnection(session: try SSHSession.connect(t), hostName: lab.hosts[index - 1].name,
                             become: become, defaultTimeout: 30)
    }

    /// Files under `dir` on host `index`, relative, sorted.
    func tree(_ lab: Lab, _ index: Int, _ dir: String) -> [String] {
        lab.exec(index, "cd \(shellQuote(dir)) && find . -mindepth 1 | sed 's|^\\./||' | LC_ALL=C sort").output
            .split(separator: "\n").map(String.init)
    }

    func noPwned(_ lab: Lab, _ index: Int, _ what: String) {
        let r = lab.exec(index, "ls -d /root/pwned /tmp/pwned /pwned 2>/dev/null")
        XCTAssertEqual(r.output, "", "\(what): a command in a path ran")
    }

    func testHostileUploadAndReadPathsAsRootAndAsSudoUser() throws {
        let lab = try lab()
        var content = Data("line\n'q' \"d\" $(x) `y`\n".utf8)
        content.append(contentsOf: [0, 1, 255, 10])
        for (user, become) in try identities() {
            let c = try connect(lab, 1, user: user, become: become)
            defer { c.close() }
            let base = "/tmp/exup-\(user)"
            lab.exec(1, "rm -rf \(base) /root/pwned /tmp/pwned; mkdir -p \(base); echo keep > \(base)/a")
            // The user really is who the test says, and sudo really runs the command as root.
            XCTAssertEqual(try c.run("id -un", stdin: nil, timeout: 10).stdoutText, "root\n", user)
            var expected: Set<String> = ["a"]
            for name in Self.hostileNames {
                let path = base + "/" + name
                let what = "\(user) \(String(reflecting: name))"
                for mode in [0o640, 0o755] {
                    try c.upload(content, to: path, mode: mode, timeout: 10)
                    let facts = lab.exec(1, "stat -c '%a %U' -- \(shellQuote(path)) && sha256sum < \(shellQuote(path))").output
                    XCTAssertEqual(facts, "\(String(mode, radix: 8)) root\n\(sha256Hex(content))  -\n", what)
                }
                XCTAssertEqual(try c.read(path, timeout: 10), content, what)
                var rel = name
                while true {
                    expected.insert(rel)
                    guard let slash = rel.lastIndex(of: "/") else { break }
                    rel = String(rel[..<slash])
                }
            }
            XCTAssertEqual(Set(tree(lab, 1, base)), expected, "\(user): nothing else was created or removed")
            XCTAssertEqual(lab.exec(1, "cat \(base)/a").output, "keep\n")
            noPwned(lab, 1, user)
            lab.exec(1, "rm -rf \(base)")
        }
    }

    func testPathsThatCannotBeRemotePathsAreRefusedBeforeAnythingRuns() throws {
        let lab = try lab()
        let c = try connect(lab, 1, user: "root", become: .none)
        defer { c.close() }
        for bad in ["relative/x", "/tmp/x\ny", "/tmp/x\0y", "/tmp/dir/"] {
            XCTAssertThrowsError(try c.upload(Data("x".utf8), to: bad, mode: 0o644, timeout: 10), String(reflecting: bad))
            XCTAssertThrowsError(try c.session.readFile(bad, timeout: 10), String(reflecting: bad))
        }
        for bad in ["relative/x", "/tmp/x\ny", "/tmp/x\0y"] {
            XCTAssertThrowsError(try c.read(bad, timeout: 10), String(reflecting: bad))
        }
        XCTAssertEqual(lab.exec(1, "ls /tmp | grep -c '^x' || true").output, "0\n")
    }

    static func tomlString(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// The playbook actions that take a remote path (upload, fetch_secret, sysctl), through the
    /// runner, with root and with a sudo user.
    func testPlaybookActionsWithHostilePathsAsRootAndAsSudoUser() throws {
        let lab = try lab()
        let dest = "/tmp/exrun/it's \"x\";$(touch pwned)`touch pwned` EXIT;id>pwned;#/ünï f"
        let sysctlFile = "/etc/sysctl.d/90 ex'\";$(touch pwned)`id` EXIT;#.conf"
        let book = """
            name = "paths"
            [[steps]]
            name = "put"
            action = "upload"
            content = "value-1"
            dest = \(Self.tomlString(dest))
            mode = "0640"
            [[steps]]
            name = "get"
            action = "fetch_secret"
            target = "first-server"
            path = \(Self.tomlString(dest))
            secret = "s"
            [[steps]]
            name = "copy"
            action = "upload"
            needs = ["s"]
            secret = "s"
            dest = \(Self.tomlString(dest + ".copy"))
            mode = "0600"
            [[steps]]
            name = "sys"
            action = "sysctl"
            file = \(Self.tomlString(sysctlFile))
            [steps.values]
            "net.ipv6.conf.lo.hop_limit" = 64
            """
        let bookPath = lab.dir + "/paths.playbook.toml"
        try book.write(toFile: bookPath, atomically: true, encoding: .utf8)
        let playbook = try Playbook.load(path: bookPath, registry: .builtIn)
        for (user, become) in try identities() {
            for i in 1...2 { lab.exec(i, "rm -rf /tmp/exrun /root/pwned /tmp/pwned; rm -f /etc/sysctl.d/90*") }
            let inv = try lab.inventory(named: "paths-\(user).toml") {
                $0.replacingOccurrences(of: "user = \"root\"", with: "user = \"\(user)\"\nbecome = \"\(become.rawValue)\"")
            }
            let summary = try PlaybookRun.run(inventory: inv, playbook: playbook, options: .init(), connector: SSHConnector(),
                                              reporter: JSONLinesReporter(out: .memory()))
            XCTAssertTrue(summary.succeeded, "\(user): " + Style.summary(summary, color: false))
            for i in 1...2 {
                XCTAssertEqual(lab.exec(i, "stat -c %a -- \(shellQuote(dest)) && cat -- \(shellQuote(dest))").output, "640\nvalue-1")
                XCTAssertEqual(lab.exec(i, "stat -c %a -- \(shellQuote(dest + ".copy")) && cat -- \(shellQuote(dest + ".copy"))").output, "600\nvalue-1")
                XCTAssertEqual(lab.exec(i, "cat -- \(shellQuote(sysctlFile))").output.contains("net.ipv6.conf.lo.hop_limit = 64"), true)
                XCTAssertEqual(tree(lab, i, "/tmp/exrun").count, 3, "\(user): one directory, two files")
                XCTAssertEqual(lab.exec(i, "ls /etc/sysctl.d | grep -c '^90' || true").output, "1\n")
                noPwned(lab, i, user)
            }
        }
    }
}
