import FleetCore
import FleetSteps
import FleetTestSupport
import Foundation
import XCTest

/// Template values can run no code: inventory strings that reach commands have a legal character
/// set, and a template inside the author's own quotes in a command is refused at load.
final class TemplateQuotingTests: XCTestCase {
    var registry: ActionRegistry { K3sActions.registry }

    func parse(_ command: String, key: String = "command", action: String = "shell") throws -> Playbook {
        try Playbook.parse(toml: """
            [[steps]]
            name = "one"
            action = "\(action)"
            \(key) = \(InventorySyntax.tomlQuoted(command))
            \(key == "command" ? "" : "command = \"true\"")
            """, path: "/p/book.toml", registry: registry)
    }

    func testATemplateInsideQuotesIsRefusedWithFileLineAndKey() {
        for command in ["echo \"{{ host.ra_interface }}\"", "echo '{{ host.name }}'", "echo \"a $(x) {{ host.user }} b\"",
                        "echo 'it''s {{ host.name }}'", "printf '%s' \"x\" \"{{ host.name }}\""] {
            XCTAssertThrowsError(try parse(command), command) { error in
                XCTAssertTrue("\(error)".hasPrefix("/p/book.toml:4: step \"one\" key \"command\": {{ "), "\(error)")
                XCTAssertTrue("\(error)".contains("inside quotes"), "\(error)")
            }
        }
        XCTAssertThrowsError(try parse("test -e '{{ host.name }}'", key: "check"))
        XCTAssertThrowsError(try parse("ping \"{{ host.address }}\"", action: "wait_for"))
    }

    func testTemplatesOutsideQuotesAreAccepted() throws {
        for command in ["echo {{ host.ra_interface }}", "echo \"quoted\" {{ host.name }} 'x'", "echo \\\"{{ host.name }}",
                        "echo \"it's\" {{ host.name }}"] {
            XCTAssertNoThrow(try parse(command), command)
        }
    }

    func testInterfaceNamesAreRestricted() {
        for bad in ["eth0;id", "$(id)", "a'b", "{x}", "eth 0", "-eth0", "eth0$", "ü0"] {
            XCTAssertNotNil(InventorySyntax.interfaceNameProblem(bad), bad)
        }
        for good in ["eth0", "enp0s31f6", "br-lan", "wlan0.100", "veth_x"] {
            XCTAssertNil(InventorySyntax.interfaceNameProblem(good), good)
        }
        XCTAssertNil(InventorySyntax.userNameProblem("debian"))
        XCTAssertNil(InventorySyntax.userNameProblem("svc_fleet-1.x"))
        XCTAssertNotNil(InventorySyntax.userNameProblem("root;id"))
    }
}
