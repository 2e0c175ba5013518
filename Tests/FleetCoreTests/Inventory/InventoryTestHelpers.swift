import Foundation
import XCTest

@testable import FleetCore
import FleetSteps

/// A valid inventory with one server; tests append to or replace its parts.
enum InventoryFixture {
    static let cluster = """
        [cluster]
        k3s_version = "v1.31.5+k3s1"

        """

    static func host(_ name: String, _ address: String, role: String = "server", extra: String = "") -> String {
        """
        [[hosts]]
        name = "\(name)"
        address = "\(address)"
        role = "\(role)"
        \(extra)

        """
    }

    static let oneServer = host("n1", "fd10::1")

    /// Where parsed fixtures pretend to live; relative paths resolve against its directory.
    static let path = "/srv/fleet/inventory/test.toml"
}

extension XCTestCase {
    /// Parses text that must be valid.
    func parseValid(_ toml: String, path: String = InventoryFixture.path, file: StaticString = #filePath, line: UInt = #line)
        -> Inventory?
    {
        do {
            return try Inventory.parse(toml: toml, path: path)
        } catch {
            XCTFail("expected a valid inventory, got:\n\(error)", file: file, line: line)
            return nil
        }
    }

    /// Parses text that must fail validation; returns every error.
    func validationErrors(_ toml: String, path: String = InventoryFixture.path, file: StaticString = #filePath, line: UInt = #line)
        -> [InventoryError]
    {
        do {
            let inventory = try Inventory.parse(toml: toml, path: path)
            XCTFail("expected validation errors, but the inventory loaded with \(inventory.hosts.count) hosts", file: file, line: line)
        } catch let errors as InventoryErrors {
            return errors.errors
        } catch {
            XCTFail("expected InventoryErrors, got \(type(of: error)): \(error)", file: file, line: line)
        }
        return []
    }

    /// Asserts that exactly one error was reported and that its description contains every fragment.
    @discardableResult
    func assertSingleError(
        _ toml: String, contains fragments: [String], path: String = InventoryFixture.path,
        file: StaticString = #filePath, line: UInt = #line
    ) -> InventoryError? {
        let errors = validationErrors(toml, path: path, file: file, line: line)
        guard errors.count == 1, let error = errors.first else {
            XCTFail("expected exactly one error, got \(errors.count):\n\(errors.map(\.description).joined(separator: "\n"))",
                file: file, line: line)
            return nil
        }
        for fragment in fragments {
            XCTAssertTrue(error.description.contains(fragment), "\"\(fragment)\" missing from: \(error)", file: file, line: line)
        }
        return error
    }

    /// Asserts that the inventory loads and has a warning whose description contains every fragment.
    func assertWarning(_ toml: String, contains fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        guard let inventory = parseValid(toml, file: file, line: line) else { return }
        let matching = inventory.warnings.filter { warning in fragments.allSatisfy { warning.description.contains($0) } }
        XCTAssertEqual(matching.count, 1, "no single warning with \(fragments) in: \(inventory.warnings)", file: file, line: line)
    }
}
