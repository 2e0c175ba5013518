import FleetCore
import Foundation
import XCTest

/// Many hosts at once through the fleet executable, with the inventory's defaults.
final class ScaleLabTests: LabTestCase {
    static let count = 300
    override class var labSpec: (hosts: Int, name: String, net: String) { (count, "cnscale", "b1") }
    /// ed25519 host keys only: the cheapest lab to bring up.
    override class var labHostKeys: String? { "ed25519" }

    /// 300 hosts, forks above the host count, the default connect and command timeouts, and a
    /// soft open-files limit below what 300 open sessions need: every host answers, none is
    /// reported unreachable (connections are paced and the file limit is raised at start).
    func testThreeHundredHostsAtOnceWithDefaultTimeouts() throws {
        let lab = try lab()
        let fleet = Lab.repo + "/.build/debug/fleet"
        guard FileManager.default.isExecutableFile(atPath: fleet) else {
            return XCTFail("build the fleet executable first (swift build): \(fleet) is missing")
        }
        let inv = try lab.inventory(named: "scale.toml") { text in
            text.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.hasPrefix("connect_timeout") && !$0.hasPrefix("command_timeout") }
                .map { $0.hasPrefix("forks") ? "forks = \(Self.count + 100)" : String($0) }
                .joined(separator: "\n")
        }
        XCTAssertEqual(inv.hosts.count, Self.count)
        XCTAssertEqual(inv.ssh.forks, Self.count + 100)
        XCTAssertEqual(inv.ssh.connectTimeout, 10, "the default")
        // Each host's command waits (at most a minute) until every host has started one, so all
        // 300 sessions are open at once: more sockets than the soft limit of 256 the run starts with.
        let barrier = lab.dir + "/barrier"
        try? FileManager.default.removeItem(atPath: barrier)
        try FileManager.default.createDirectory(atPath: barrier, withIntermediateDirectories: true)
        let command = "touch \(barrier)/$(hostname); i=0; while set -- \(barrier)/*; [ $# -lt \(Self.count) ] && [ $i -lt 60 ]; "
            + "do sleep 1; i=$((i+1)); done; echo $#"
        let r = Lab.run(["/usr/bin/prlimit", "--nofile=256:", fleet, "exec", inv.path, "--json", "--", command])
        let lines = r.output.split(separator: "\n").filter { $0.hasPrefix("{") }
        let records = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let statuses = records.map { $0["status"] as? String ?? "?" }
        let bad = records.filter { $0["status"] as? String != "ok" }.prefix(5).map { "\($0)" }
        XCTAssertEqual(statuses.filter { $0 == "unreachable" }.count, 0, bad.joined(separator: "\n"))
        XCTAssertEqual(statuses.filter { $0 == "ok" }.count, Self.count, bad.joined(separator: "\n"))
        XCTAssertEqual(r.status, 0, String(r.output.suffix(2000)))
        let seen = records.compactMap { ($0["stdout"] as? String)?.trimmingCharacters(in: .whitespacesAndNewlines) }
        XCTAssertEqual(Set(seen), ["\(Self.count)"], "every host saw all \(Self.count) sessions open")
    }
}
