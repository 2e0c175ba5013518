import FleetCore
import FleetTestSupport
import Foundation
import XCTest

/// Remote paths that cannot be paths (relative, NUL, line break) are refused at load when the
/// playbook spells them out, and on the host when a template renders one.
final class RemotePathCheckTests: XCTestCase {
    func testStaticBadPathsFailAtLoadNamingTheKey() throws {
        let cases = [("upload", "dest", "content = \"x\""), ("fetch_secret", "path", "secret = \"s\""),
                     ("sysctl", "file", "[steps.values]\n\"net.ipv6.conf.lo.hop_limit\" = 64")]
        for (action, key, extra) in cases {
            for bad in ["relative/x.conf", "/etc/sysctl.d/x\\ny.conf", "/etc/sysctl.d/x\\ry.conf"] {
                let toml = "[[steps]]\nname = \"s\"\naction = \"\(action)\"\n\(key) = \"\(bad)\"\n\(extra)\n"
                XCTAssertThrowsError(try Fixtures.playbook(toml), "\(action) \(bad)") { error in
                    XCTAssertTrue("\(error)".contains(key), "\(error)")
                }
            }
        }
        // A quote, a space or $(…) is a legal path: quoting handles it, nothing refuses it.
        XCTAssertNoThrow(try Fixtures.playbook("[[steps]]\nname = \"s\"\naction = \"upload\"\ncontent = \"x\"\ndest = \"/tmp/it's $(x) `y`\"\n"))
    }

    func testARenderedPathIsCheckedBeforeAnythingRuns() throws {
        let fleet = FakeFleet()
        let inventory = Fixtures.inventory([("s1", .server)])
        // inventory_dir is relative in no real inventory, but a template can still start with text.
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "put"
            action = "upload"
            content = "x"
            dest = "{{ host.name }}/file"
            """)
        let summary = FakeRun.run(book, inventory: inventory, fleet: fleet)
        XCTAssertEqual(summary.status("s1", "put"), .failed)
        XCTAssertTrue(summary.results.first?.message.contains("not an absolute path") ?? false, "\(summary.results)")
        XCTAssertEqual(fleet.host("s1").uploads.count, 0)
    }
}
