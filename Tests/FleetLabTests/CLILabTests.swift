import FleetCore
import Foundation
import XCTest

/// The `fleet` executable itself, as a second process, against a real sshd host.
final class CLILabTests: LabTestCase {
    override class var labSpec: (hosts: Int, name: String, net: String) { (1, "cocli", "c0") }

    /// The executable `swift build` made beside the tests.
    func fleetBinary() throws -> String {
        let path = Lab.repo + "/.build/debug/fleet"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw LabError("\(path) is missing: run swift build --build-tests first")
        }
        return path
    }

    func sshdLogLines(_ lab: Lab) -> Int {
        (FileManager.default.contents(atPath: "\(lab.dir)/hosts/1/sshd.log") ?? Data()).filter { $0 == 0x0A }.count
    }

    /// While this process holds the inventory's lock, every verb that changes hosts or files exits 2
    /// with "<inventory>: in use by pid N", and no host is contacted, no file written.
    func testEveryChangingVerbRefusesALockedInventoryAndTouchesNothing() throws {
        let lab = try lab()
        let fleet = try fleetBinary()
        let inv = try lab.inventory(named: "locked.toml") { $0 }
        let statePath = RunState.path(forInventory: inv.path)
        let kubeconfig = lab.dir + "/locked.kubeconfig"
        let lock = try InventoryLock.acquire(inventory: inv.path)
        let state = "{\"written by\": \"the holder\"}\n"
        try state.write(toFile: statePath, atomically: false, encoding: .utf8)
        let inventoryText = try String(contentsOfFile: inv.path, encoding: .utf8)
        let logBefore = sshdLogLines(lab)

        let verbs: [[String]] = [
            ["up", inv.path, "--json"],
            ["up", inv.path, "--retry-failed"],
            ["add-worker", inv.path, "--name", "cocli-9", "--address", "fd42:f1ee:7:c0::1:9"],
            ["reset", inv.path, "--yes"],
            ["kubeconfig", inv.path, "-o", kubeconfig],
        ]
        for args in verbs {
            let r = Lab.run([fleet] + args)
            XCTAssertEqual(r.status, 2, "\(args.joined(separator: " ")): \(r.output)")
            XCTAssertEqual(r.output, "\(inv.path): in use by pid \(getpid()) (lock \(lock.path)); wait for it to end\n",
                           args.joined(separator: " "))
        }
        XCTAssertEqual(try String(contentsOfFile: inv.path, encoding: .utf8), inventoryText, "the inventory was rewritten")
        XCTAssertEqual(try String(contentsOfFile: statePath, encoding: .utf8), state, "the state file was rewritten")
        XCTAssertFalse(FileManager.default.fileExists(atPath: kubeconfig), "a kubeconfig was written")
        XCTAssertEqual(sshdLogLines(lab), logBefore, "the host was contacted")

        // Released, the same verb runs: it reaches the host (so the check above can see a contact).
        lock.release()
        try FileManager.default.removeItem(atPath: statePath)
        let reset = Lab.run([fleet, "reset", inv.path, "--yes"])
        XCTAssertEqual(reset.status, 0, reset.output)
        XCTAssertGreaterThan(sshdLogLines(lab), logBefore)
    }

    func writePlaybook(_ lab: Lab, _ name: String, _ text: String) throws -> String {
        let path = lab.dir + "/\(name).playbook.toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `fleet up --json | head -1`: the reader is gone after the first line. fleet must not die of
    /// SIGPIPE (status 141) mid-run: output stops, every task still runs and the state is saved.
    func testUpIntoAClosedPipeFinishesTheRunAndSavesTheState() throws {
        let lab = try lab()
        let fleet = try fleetBinary()
        let inv = try lab.inventory(named: "pipe.toml") { $0 }
        var book = ""
        for i in 1...6 { book += "[[steps]]\nname = \"s\(i)\"\naction = \"shell\"\ncommand = \"echo step \(i) >> /root/pipe-count\"\n\n" }
        let playbook = try writePlaybook(lab, "pipe", book)
        lab.exec(1, "rm -f /root/pipe-count")
        let statusFile = lab.dir + "/pipe.status"
        let r = Lab.run(["/bin/bash", "-c", "\"$0\" up \"$1\" --playbook \"$2\" --json | head -1; echo ${PIPESTATUS[0]} > \"$3\"",
                         fleet, inv.path, playbook, statusFile])
        XCTAssertTrue(r.output.hasPrefix("{\"event\":\"run_started\"") || r.output.contains("run_started"), r.output)
        let status = try String(contentsOfFile: statusFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(status, "0", "fleet's exit status (141: killed by SIGPIPE)")
        XCTAssertEqual(lab.exec(1, "cat /root/pipe-count").output.split(separator: "\n").count, 6, "every step ran")
        let state = try XCTUnwrap(try RunState.load(path: RunState.path(forInventory: inv.path)))
        XCTAssertEqual(state.lastRun?.outcome, "finished")
        XCTAssertEqual(state.hosts.values.first?.count, 6)
    }

    /// SIGHUP (the terminal closed) stops a run like Ctrl-C: running tasks end `interrupted`, the state
    /// is saved, exit 130. The process runs with core dumps off.
    func testSIGHUPStopsARunAsInterruptedAndCoreDumpsAreOff() throws {
        let lab = try lab()
        let fleet = try fleetBinary()
        let inv = try lab.inventory(named: "hup.toml") { $0 }
        let playbook = try writePlaybook(lab, "hup", """
            [[steps]]
            name = "long"
            action = "shell"
            command = "sleep 30"
            """)
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let args = [fleet, "up", inv.path, "--playbook", playbook, "--json"]
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        XCTAssertEqual(posix_spawn(&pid, fleet, &actions, nil, &argv, environ), 0)
        close(fds[1])
        let reader = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true)
        // Wait (by reading its output, no sleeping) until the long task has started on the host.
        var seen = ""
        while !seen.contains("\"task_started\"") {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        XCTAssertTrue(seen.contains("task_started"), seen)
        let limits = (try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)) ?? ""
        let core = limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") }.map(String.init) ?? ""
        XCTAssertEqual(core.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2).map(String.init),
                       ["0", "0"], core)
        kill(pid, SIGHUP)
        var rest = Data()
        while true {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            rest += chunk
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        XCTAssertEqual(status & 0x7f, 0, "fleet was killed by signal \(status & 0x7f)")
        XCTAssertEqual((status >> 8) & 0xff, 130)
        XCTAssertTrue(String(decoding: rest, as: UTF8.self).contains("\"interrupted\""))
        let state = try XCTUnwrap(try RunState.load(path: RunState.path(forInventory: inv.path)))
        XCTAssertEqual(state.lastRun?.outcome, "interrupted")
        XCTAssertEqual(state.hosts.values.first?["long"]?.status, .interrupted)
    }

    /// `--timeout nan` / `inf` and a playbook `timeout = inf` end in exit 2 naming the flag or the
    /// file, line and key, before any host is contacted (nan used to disable the timeout; inf trapped).
    func testNonFiniteTimeoutsAreBadInput() throws {
        let lab = try lab()
        let fleet = try fleetBinary()
        let inv = try lab.inventory(named: "numbers.toml") { $0 }
        for bad in ["nan", "inf", "1e19"] {
            let r = Lab.run([fleet, "exec", inv.path, "--timeout", bad, "--", "true"])
            XCTAssertEqual(r.status, 2, r.output)
            XCTAssertTrue(r.output.hasPrefix("--timeout: "), r.output)
        }
        let playbook = try writePlaybook(lab, "numbers", "[[steps]]\nname = \"a\"\naction = \"shell\"\ncommand = \"true\"\ntimeout = inf\n")
        let r = Lab.run([fleet, "up", inv.path, "--playbook", playbook])
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.output.contains("\n\(playbook):5: step \"a\" key \"timeout\": inf is not a finite number"), r.output)
    }

    /// An inventory string that could run code where it reaches a command is refused at load: exit 2
    /// naming the key, and nothing ran on the host.
    func testShellCharactersInUserOrInterfaceAreRefusedBeforeAnyHost() throws {
        let lab = try lab()
        let fleet = try fleetBinary()
        let marker = "/root/co-pwned"
        lab.exec(1, "rm -f \(marker)")
        let logBefore = sshdLogLines(lab)
        for (key, value) in [("ra_interface", "e$(touch \(marker))"), ("user", "root;touch \(marker)")] {
            // Written directly: loading it (as lab.inventory(named:) does) must fail.
            let path = lab.dir + "/hostile-\(key).toml"
            let text = try String(contentsOfFile: lab.inventoryPath, encoding: .utf8)
                .replacingOccurrences(of: "role = \"server\"\n", with: "role = \"server\"\n\(key) = \(InventorySyntax.tomlQuoted(value))\n")
            XCTAssertTrue(text.contains("\(key) = "))
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let r = Lab.run([fleet, "up", path])
            XCTAssertEqual(r.status, 2, r.output)
            XCTAssertTrue(r.output.contains("key \"\(key)\""), r.output)
        }
        XCTAssertEqual(sshdLogLines(lab), logBefore, "the host was contacted")
        XCTAssertNotEqual(lab.exec(1, "test -e \(marker)").status, 0, "the value ran on the host")
    }
}
