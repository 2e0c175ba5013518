import FleetCore
import FleetSteps
import FleetTestSupport
import Foundation
import XCTest

final class PlaybookParseTests: XCTestCase {
    static let path = "/srv/fleet/playbooks/site.toml"

    /// Parses text that must fail; returns the error.
    func playbookError(_ toml: String, file: StaticString = #filePath, line: UInt = #line) -> PlaybookError? {
        do {
            let book = try Playbook.parse(toml: toml, path: Self.path, registry: Fixtures.builtIn)
            XCTFail("expected an error, but the playbook loaded with \(book.steps.count) step(s)", file: file, line: line)
        } catch let e as PlaybookError {
            return e
        } catch {
            XCTFail("expected a PlaybookError, got \(type(of: error)): \(error)", file: file, line: line)
        }
        return nil
    }

    /// Asserts the error names this file, step and key, and its message holds every fragment.
    func assertError(_ toml: String, step: String?, key: String?, contains fragments: [String],
                     file: StaticString = #filePath, line: UInt = #line) {
        guard let e = playbookError(toml, file: file, line: line) else { return }
        // The file, or file:line where the loader knows the line.
        XCTAssertTrue(e.file == Self.path || e.file.hasPrefix(Self.path + ":"), "file: \(e.file)", file: file, line: line)
        XCTAssertEqual(e.step, step, "step in: \(e)", file: file, line: line)
        XCTAssertEqual(e.key, key, "key in: \(e)", file: file, line: line)
        for f in fragments {
            XCTAssertTrue(e.message.contains(f), "\"\(f)\" missing from: \(e.message)", file: file, line: line)
        }
        // The printed form carries all three, so a user sees where to look.
        XCTAssertTrue(e.description.hasPrefix(Self.path), e.description, file: file, line: line)
        if let step { XCTAssertTrue(e.description.contains("step \"\(step)\""), e.description, file: file, line: line) }
        if let key { XCTAssertTrue(e.description.contains("key \"\(key)\""), e.description, file: file, line: line) }
    }

    // MARK: A valid playbook

    func testPlaybookWithEveryActionLoadsFromFile() throws {
        let dir = try ScratchDirectory()
        defer { dir.remove() }
        let motd = try dir.write("playbooks/files/motd", "welcome\n")
        let path = try dir.write("playbooks/site.toml", #"""
            name = "every-action"
            description = "one step per built-in action"

            [[steps]]
            name = "prepare"
            action = "shell"
            description = "make the config directory"
            command = "mkdir -p /etc/rancher/k3s"
            check = "test -d /etc/rancher/k3s"
            changes = false
            timeout = 30

            [[steps]]
            name = "kernel"
            action = "sysctl"
            target = "all"
            file = "/etc/sysctl.d/90-fleet-ipv6.conf"
            [steps.values]
            "net.ipv6.conf.all.forwarding" = 1
            "net.ipv6.conf.all.disable_ipv6" = 0
            "net.core.rmem_max" = "4096 87380"

            [[steps]]
            name = "motd"
            action = "upload"
            target = ["s1", "a1"]
            src = "files/motd"
            dest = "/etc/motd"
            mode = "0640"

            [[steps]]
            name = "config"
            action = "upload"
            target = "servers"
            content = "node-ip: {{ host.node_ip }}\n"
            dest = "/etc/rancher/k3s/config.yaml"
            mode = 600

            [[steps]]
            name = "wait-token"
            action = "wait_for"
            target = "first-server"
            command = "test -e /var/lib/rancher/k3s/server/node-token"
            interval = 2.5

            [[steps]]
            name = "token"
            action = "fetch_secret"
            target = "first-server"
            path = "/var/lib/rancher/k3s/server/node-token"
            secret = "token"

            [[steps]]
            name = "token-file"
            action = "upload"
            target = "agents"
            needs = ["token"]
            secret = "token"
            dest = "/etc/rancher/k3s/token"
            mode = "0600"
            timeout = 12.5
            """#)

        let book = try Playbook.load(path: path, registry: Fixtures.builtIn)
        XCTAssertEqual(book.name, "every-action")
        XCTAssertEqual(book.description, "one step per built-in action")
        XCTAssertEqual(book.path, path)
        XCTAssertEqual(book.steps.map(\.name), ["prepare", "kernel", "motd", "config", "wait-token", "token", "token-file"])
        XCTAssertEqual(book.steps.map(\.actionName), ["shell", "sysctl", "upload", "upload", "wait_for", "fetch_secret", "upload"])
        XCTAssertEqual(book.steps.map(\.target), [.all, .all, .hosts(["s1", "a1"]), .servers, .firstServer, .firstServer, .agents])

        let prepare = try XCTUnwrap(book.step(named: "prepare"))
        XCTAssertEqual(prepare.description, "make the config directory")
        XCTAssertEqual(prepare.timeout, 30)
        let shell = try XCTUnwrap(prepare.action as? ShellAction)
        XCTAssertEqual(shell.command.source, "mkdir -p /etc/rancher/k3s")
        XCTAssertEqual(shell.check?.source, "test -d /etc/rancher/k3s")
        XCTAssertFalse(shell.changes)

        let sysctl = try XCTUnwrap(book.step(named: "kernel")?.action as? SysctlAction)
        XCTAssertEqual(sysctl.file, "/etc/sysctl.d/90-fleet-ipv6.conf")
        // Keys sorted; integers become their text.
        XCTAssertEqual(sysctl.values.map(\.key), ["net.core.rmem_max", "net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.all.forwarding"])
        XCTAssertEqual(sysctl.values.map(\.value), ["4096 87380", "0", "1"])

        let motdAction = try XCTUnwrap(book.step(named: "motd")?.action as? UploadAction)
        guard case .file(let src) = motdAction.source else { return XCTFail("motd source: \(motdAction.source)") }
        XCTAssertEqual((src as NSString).standardizingPath, (motd as NSString).standardizingPath, "src is relative to the playbook")
        XCTAssertEqual(motdAction.dest.source, "/etc/motd")
        XCTAssertEqual(motdAction.mode, 0o640)

        let config = try XCTUnwrap(book.step(named: "config")?.action as? UploadAction)
        guard case .content(let content) = config.source else { return XCTFail("config source: \(config.source)") }
        XCTAssertEqual(content.source, "node-ip: {{ host.node_ip }}\n")
        XCTAssertEqual(config.mode, 0o600, "an integer mode is read as octal, as chmod does")

        let wait = try XCTUnwrap(book.step(named: "wait-token")?.action as? WaitForAction)
        XCTAssertEqual(wait.interval, 2.5)
        XCTAssertEqual(wait.timeout, 60, "default")

        let fetch = try XCTUnwrap(book.step(named: "token")?.action as? FetchSecretAction)
        XCTAssertEqual(fetch.name, "token")
        XCTAssertEqual(fetch.path.source, "/var/lib/rancher/k3s/server/node-token")
        XCTAssertEqual(fetch.produces, ["token"])

        let tokenFile = try XCTUnwrap(book.step(named: "token-file"))
        XCTAssertEqual(tokenFile.needs, ["token"])
        XCTAssertEqual(tokenFile.timeout, 12.5)
        let upload = try XCTUnwrap(tokenFile.action as? UploadAction)
        guard case .secret(let name) = upload.source else { return XCTFail("token-file source: \(upload.source)") }
        XCTAssertEqual(name, "token")
        XCTAssertEqual(upload.mode, 0o600)
        XCTAssertEqual(upload.produces, [])
    }

    func testNameDefaultsToTheFileName() throws {
        let book = try Playbook.parse(toml: """
            [[steps]]
            name = "one"
            action = "shell"
            command = "true"
            """, path: "/x/playbooks/k3s-ipv6.toml", registry: .builtIn)
        XCTAssertEqual(book.name, "k3s-ipv6")
        XCTAssertEqual(book.steps.first?.target, .all)
        XCTAssertNil(book.steps.first?.timeout)
    }

    /// `timeout` on a wait_for step is documented as how long to keep trying.
    func testWaitForTimeoutIsTheActionsTimeout() throws {
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "wait"
            action = "wait_for"
            command = "test -e /ready"
            timeout = 120
            interval = 2
            """)
        let wait = try XCTUnwrap(book.steps.first?.action as? WaitForAction)
        XCTAssertEqual(wait.timeout, 120)
        XCTAssertEqual(wait.interval, 2)
    }

    func testMissingFileIsNamed() {
        XCTAssertThrowsError(try Playbook.load(path: "/nonexistent/none.toml", registry: .builtIn)) { error in
            let e = error as? PlaybookError
            XCTAssertEqual(e?.file, "/nonexistent/none.toml")
            XCTAssertEqual(e?.message, "cannot read the playbook file")
        }
    }

    // MARK: Errors

    func testUnknownActionSuggestsTheClosest() {
        assertError("""
            [[steps]]
            name = "mk"
            action = "shel"
            command = "true"
            """, step: "mk", key: "action", contains: ["unknown action \"shel\"", "(did you mean \"shell\"?)", "known: fetch_secret, shell, sysctl, upload, wait_for"])
        assertError("""
            [[steps]]
            name = "wait"
            action = "wait-for"
            command = "true"
            """, step: "wait", key: "action", contains: ["(did you mean \"wait_for\"?)"])
    }

    func testUnknownActionFarFromAnyHasNoSuggestion() {
        guard let e = playbookError("""
            [[steps]]
            name = "x"
            action = "kubernetes"
            """) else { return }
        XCTAssertFalse(e.message.contains("did you mean"), e.message)
    }

    func testUnknownParameterSuggestsTheClosest() {
        assertError("""
            [[steps]]
            name = "mk"
            action = "shell"
            command = "mkdir -p /x"
            chek = "test -d /x"
            """, step: "mk", key: "chek", contains: ["unknown parameter for action \"shell\"", "(did you mean \"check\"?)"])
        assertError("""
            [[steps]]
            name = "up"
            action = "upload"
            content = "x"
            dest = "/x"
            mdoe = "0644"
            """, step: "up", key: "mdoe", contains: ["unknown parameter for action \"upload\"", "(did you mean \"mode\"?)"])
        assertError("""
            [[steps]]
            name = "k"
            action = "sysctl"
            vaules = 1
            [steps.values]
            "net.ipv4.ip_forward" = 1
            """, step: "k", key: "vaules", contains: ["(did you mean \"values\"?)"])
    }

    func testWrongTypesNameStepAndKey() {
        let cases: [(String, String, String)] = [
            ("action = \"shell\"\ncommand = 5", "command", "expected a string, found integer"),
            ("action = \"shell\"\ncommand = \"true\"\nchanges = \"no\"", "changes", "expected a boolean, found string"),
            ("action = \"shell\"\ncommand = \"true\"\ntimeout = \"10\"", "timeout", "expected a number of seconds"),
            ("action = \"shell\"\ncommand = \"true\"\ntimeout = 0", "timeout", "must be > 0"),
            ("action = \"shell\"\ncommand = \"true\"\ntarget = 3", "target", "expected a string or an array of host names, found integer"),
            ("action = \"shell\"\ncommand = \"true\"\ntarget = [\"a\", 3]", "target", "host names must be strings"),
            ("action = \"shell\"\ncommand = \"true\"\nneeds = \"token\"", "needs", "expected an array of value names"),
            ("action = 7", "action", "is required (a string)"),
            ("action = \"sysctl\"\nvalues = \"net.ipv4.ip_forward=1\"", "values", "expected a table, found string"),
            ("action = \"sysctl\"\n[steps.values]\n\"net.ipv4.ip_forward\" = [1]", "values.net.ipv4.ip_forward", "expected a string, number or boolean"),
            ("action = \"sysctl\"\nfile = \"/etc/sysctl.conf\"\n[steps.values]\n\"a.b\" = 1", "file", "must be a .conf file under /etc/sysctl.d/"),
            ("action = \"sysctl\"\n[steps.values]\n\"a b\" = 1", "values.a b", "is not a sysctl key"),
            ("action = \"upload\"\ncontent = \"x\"\ndest = \"/x\"\nmode = true", "mode", "expected a string, found boolean"),
            ("action = \"upload\"\ncontent = \"x\"\ndest = \"/x\"\nmode = \"rw-r--r--\"", "mode", "is not an octal mode"),
            ("action = \"upload\"\ncontent = \"x\"\ndest = \"/x\"\nmode = 888", "mode", "is not an octal mode"),
            ("action = \"upload\"\ncontent = 3\ndest = \"/x\"", "content", "expected a string, found integer"),
            ("action = \"upload\"\ncontent = \"x\"", "dest", "is required"),
            ("action = \"wait_for\"\ncommand = \"true\"\ninterval = \"2\"", "interval", "expected a number, found string"),
            ("action = \"wait_for\"\ncommand = \"true\"\ninterval = -1", "interval", "must be > 0"),
            ("action = \"fetch_secret\"\npath = \"/t\"\nsecret = 1", "secret", "expected a string, found integer"),
            ("action = \"fetch_secret\"\npath = \"/t\"\nsecret = \"a token\"", "secret", "must be a simple name"),
            ("action = \"fetch_secret\"\nsecret = \"token\"", "path", "is required"),
        ]
        for (body, key, fragment) in cases {
            assertError("[[steps]]\nname = \"s\"\n" + body + "\n", step: "s", key: key, contains: [fragment])
        }
    }

    func testUploadNeedsExactlyOneSource() {
        assertError("""
            [[steps]]
            name = "u"
            action = "upload"
            content = "x"
            secret = "token"
            dest = "/x"
            """, step: "u", key: nil, contains: ["give exactly one of src, content or secret"])
        assertError("""
            [[steps]]
            name = "u"
            action = "upload"
            dest = "/x"
            """, step: "u", key: nil, contains: ["give exactly one of src, content or secret"])
        assertError("""
            [[steps]]
            name = "u"
            action = "upload"
            src = "no-such-file-here"
            dest = "/x"
            """, step: "u", key: "src", contains: ["no readable file at /srv/fleet/playbooks/no-such-file-here"])
    }

    func testNeedsMustNameAValueAnEarlierStepProduces() {
        assertError("""
            [[steps]]
            name = "token"
            action = "fetch_secret"
            path = "/t"
            secret = "token"

            [[steps]]
            name = "join"
            action = "shell"
            command = "true"
            needs = ["tokn"]
            """, step: "join", key: "needs", contains: ["\"tokn\" is not produced by an earlier step", "(produced: token)"])
        // Produced only later: still an error, since the consumer would wait on its own host's future.
        assertError("""
            [[steps]]
            name = "join"
            action = "shell"
            command = "true"
            needs = ["token"]

            [[steps]]
            name = "token"
            action = "fetch_secret"
            path = "/t"
            secret = "token"
            """, step: "join", key: "needs", contains: ["\"token\" is not produced by an earlier step"])
    }

    func testTwoStepsCannotProduceTheSameValue() {
        assertError("""
            [[steps]]
            name = "a"
            action = "fetch_secret"
            path = "/t"
            secret = "token"

            [[steps]]
            name = "b"
            action = "fetch_secret"
            path = "/u"
            secret = "token"
            """, step: "b", key: nil, contains: ["\"token\" is already produced by step \"a\""])
    }

    func testDuplicateStepNames() {
        assertError("""
            [[steps]]
            name = "install"
            action = "shell"
            command = "true"

            [[steps]]
            name = "other"
            action = "shell"
            command = "true"

            [[steps]]
            name = "install"
            action = "shell"
            command = "false"
            """, step: "install", key: "name", contains: ["duplicate step name"])
    }

    func testUnknownTemplateVariableSuggestsTheClosest() {
        assertError("""
            [[steps]]
            name = "hello"
            action = "shell"
            command = "echo {{ host.nmae }}"
            """, step: "hello", key: "command", contains: ["unknown template variable \"host.nmae\"", "(did you mean \"host.name\"?)", "known: host.name"])
        assertError("""
            [[steps]]
            name = "hello"
            action = "shell"
            command = "true"
            check = "test {{cluster.nam}}"
            """, step: "hello", key: "check", contains: ["unknown template variable \"cluster.nam\"", "(did you mean \"cluster.name\"?)"])
        assertError("""
            [[steps]]
            name = "cfg"
            action = "upload"
            content = "x"
            dest = "/etc/{{ host.rol }}.conf"
            """, step: "cfg", key: "dest", contains: ["unknown template variable \"host.rol\"", "(did you mean \"host.role\"?)"])
        assertError("""
            [[steps]]
            name = "cfg"
            action = "upload"
            content = "server: {{ server_url"
            dest = "/x"
            """, step: "cfg", key: "content", contains: ["unclosed \"{{\""])
    }

    func testTOMLSyntaxErrorGivesLineAndColumn() {
        let text = """
            name = "broken"

            [[steps]]
            name = "one"
            action = shell
            """
        guard let e = try? XCTUnwrap(playbookError(text)) else { return }
        // Line 5, and the column of the bare word the parser choked on.
        let column = "action = shell".distance(from: "action = shell".startIndex, to: "action = shell".firstIndex(of: "s")!) + 1
        XCTAssertEqual(e.file, "\(Self.path):5:\(column)", e.description)
        XCTAssertNil(e.step)
        XCTAssertFalse(e.message.isEmpty)
    }

    func testTOMLSyntaxErrorOnAnotherLine() {
        let text = "name = \"x\"\n[[steps]]\nname = \"a\"\nname = \"b\"\naction = \"shell\"\n"
        guard let e = playbookError(text) else { return }
        XCTAssertTrue(e.file.hasPrefix("\(Self.path):4:"), "a redefined key is reported on line 4: \(e.file)")
    }

    func testStructuralErrors() {
        assertError("name = \"x\"\n", step: nil, key: "steps", contains: ["at least one [[steps]] table"])
        assertError("steps = []\n", step: nil, key: "steps", contains: ["at least one [[steps]] table"])
        assertError("nmae = \"x\"\n[[steps]]\nname = \"a\"\naction = \"shell\"\ncommand = \"true\"\n", step: nil, key: "nmae",
                    contains: ["unknown top-level key"])
        assertError("[[steps]]\naction = \"shell\"\ncommand = \"true\"\n", step: nil, key: "steps[1].name", contains: ["every step needs a name"])
        assertError("[[steps]]\nname = \"a\"\naction = \"shell\"\ncommand = \"true\"\n[[steps]]\nname = \"\"\naction = \"shell\"\n",
                    step: nil, key: "steps[2].name", contains: ["every step needs a name"])
        assertError("[[steps]]\nname = \"a\"\ncommand = \"true\"\n", step: "a", key: "action", contains: ["is required"])
        assertError("steps = [1]\n", step: nil, key: "steps[1]", contains: ["each step must be a table"])
    }

    // MARK: Against an inventory

    func testCheckRefusesATargetHostMissingFromTheInventory() throws {
        let inventory = Fixtures.inventory([("s1", .server), ("a1", .agent)])
        let good = try Fixtures.playbook("""
            [[steps]]
            name = "one"
            action = "shell"
            command = "true"
            target = ["s1", "a1"]

            [[steps]]
            name = "two"
            action = "shell"
            command = "true"
            target = "a1"

            [[steps]]
            name = "three"
            action = "shell"
            command = "true"
            target = "agents"
            """)
        XCTAssertNoThrow(try good.check(against: inventory))

        let bad = try Fixtures.playbook("""
            [[steps]]
            name = "one"
            action = "shell"
            command = "true"
            target = "s1"

            [[steps]]
            name = "join"
            action = "shell"
            command = "true"
            target = ["a1", "a2"]
            """)
        XCTAssertThrowsError(try bad.check(against: inventory)) { error in
            guard let e = error as? PlaybookError else { return XCTFail("\(error)") }
            XCTAssertEqual(e.file, bad.path)
            XCTAssertEqual(e.step, "join")
            XCTAssertEqual(e.key, "target")
            XCTAssertTrue(e.message.contains("\"a2\""), e.message)
            XCTAssertTrue(e.message.contains(inventory.path), e.message)
        }

        let misspelledGroup = try Fixtures.playbook("""
            [[steps]]
            name = "x"
            action = "shell"
            command = "true"
            target = "agent"
            """)
        XCTAssertThrowsError(try misspelledGroup.check(against: inventory)) { error in
            XCTAssertEqual((error as? PlaybookError)?.step, "x")
            XCTAssertTrue("\(error)".contains("\"agent\""), "\(error)")
        }
    }

    func testTargetsResolveAgainstTheInventory() {
        let inventory = Fixtures.inventory([("a1", .agent), ("s1", .server), ("s2", .server), ("a2", .agent)])
        XCTAssertEqual(Target.all.hosts(in: inventory).map(\.name), ["a1", "s1", "s2", "a2"])
        XCTAssertEqual(Target.servers.hosts(in: inventory).map(\.name), ["s1", "s2"])
        XCTAssertEqual(Target.agents.hosts(in: inventory).map(\.name), ["a1", "a2"])
        XCTAssertEqual(Target.firstServer.hosts(in: inventory).map(\.name), ["s1"])
        XCTAssertEqual(Target.hosts(["a2", "s1"]).hosts(in: inventory).map(\.name), ["s1", "a2"], "inventory order")
        XCTAssertEqual(try Target(parsing: "first-server"), .firstServer)
        XCTAssertEqual(try Target(parsing: "node-7"), .hosts(["node-7"]))
    }
}

/// Numbers of seconds: inf, nan and 1e19 are refused at load with the file, line and key.
final class PlaybookSecondsTests: XCTestCase {
    func testNonFiniteOrHugeTimeoutsAreRefusedWithFileLineAndKey() throws {
        for bad in ["inf", "+inf", "nan", "-nan", "1e19", "0", "-5"] {
            let text = """
                [[steps]]
                name = "one"
                action = "shell"
                command = "true"

                [[steps]]
                name = "two"
                action = "shell"
                command = "true"
                timeout = \(bad)
                """
            XCTAssertThrowsError(try Playbook.parse(toml: text, path: "/p/book.toml", registry: .builtIn), bad) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix("/p/book.toml:10: step \"two\" key \"timeout\""), "\(bad): \(text)")
            }
        }
        let ok = try Playbook.parse(toml: "[[steps]]\nname = \"a\"\naction = \"shell\"\ncommand = \"true\"\ntimeout = 2.5\n",
                                    path: "/p/book.toml", registry: .builtIn)
        XCTAssertEqual(ok.steps[0].timeout, 2.5)
    }

    func testWaitForIntervalMustBeFinite() {
        let text = "[[steps]]\nname = \"w\"\naction = \"wait_for\"\ncommand = \"true\"\ninterval = nan\n"
        XCTAssertThrowsError(try Playbook.parse(toml: text, path: "/p/book.toml", registry: .builtIn)) { error in
            XCTAssertTrue("\(error)".contains("key \"interval\""), "\(error)")
        }
    }

    func testMillisecondsNeverTrap() {
        XCTAssertEqual(Seconds.milliseconds(1.5), 1500)
        XCTAssertEqual(Seconds.milliseconds(.nan), 0)
        XCTAssertEqual(Seconds.milliseconds(.infinity), Int.max)
        XCTAssertEqual(Seconds.milliseconds(1e300), Int.max)
        XCTAssertEqual(Seconds.milliseconds(-1e300), Int.min)
    }
}
