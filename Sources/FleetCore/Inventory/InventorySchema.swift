import Foundation

/// What a module adds to the inventory: top-level sections, keys of each `[[hosts]]` entry, checks
/// across them, and template variables.
///
/// FleetCore reads only what any fleet has: `[[hosts]]` (name, address, role and the connection
/// keys), `[ssh]`, and the checks on those. A module declares the rest, and reads and validates it
/// with an ``InventoryReader``, which locates every problem (`file:line:col`, key, host) and suggests
/// the closest key. A new section is a new ``InventorySection`` in the module's schema: the engine
/// does not change.
public struct InventorySchema: Sendable {
    /// Top-level tables, in the order they are documented (unknown keys are suggested from them).
    public var sections: [InventorySection]
    /// Keys a `[[hosts]]` entry may have besides the engine's.
    public var hostKeys: [InventoryHostKeys]
    /// Checks that need several sections or hosts at once; they run after everything was read.
    public var checks: [InventoryCheck]
    /// Template variables playbooks may name besides the engine's (`host.name`, …).
    public var variables: [TemplateVariable]

    public init(sections: [InventorySection] = [], hostKeys: [InventoryHostKeys] = [], checks: [InventoryCheck] = [],
                variables: [TemplateVariable] = []) {
        self.sections = sections
        self.hostKeys = hostKeys
        self.checks = checks
        self.variables = variables
    }

    /// Hosts and `[ssh]` only.
    public static let engine = InventorySchema()

    /// This schema and `other` as one.
    public func merged(with other: InventorySchema) -> InventorySchema {
        InventorySchema(sections: sections + other.sections, hostKeys: hostKeys + other.hostKeys,
                        checks: checks + other.checks, variables: variables + other.variables)
    }
}

/// A top-level table a module owns, such as `[cluster]`.
public struct InventorySection: Sendable {
    public var name: String
    /// Every key the table may have, in the order they are documented.
    public var keys: [String]
    /// The table's keys are names the module chooses (`[addons.NAME]`): the reader checks them itself.
    public var openKeys: Bool
    /// Reads the table (an empty one when the file has none) and stores what it yields in
    /// `reader.sections`; records each problem on the reader. Unknown keys are reported before.
    public var read: @Sendable (inout InventoryReader, InventoryTable) -> Void

    public init(name: String, keys: [String], openKeys: Bool = false,
                read: @escaping @Sendable (inout InventoryReader, InventoryTable) -> Void) {
        self.name = name
        self.keys = keys
        self.openKeys = openKeys
        self.read = read
    }
}

/// Keys a module adds to each `[[hosts]]` entry.
public struct InventoryHostKeys: Sendable {
    public var keys: [String]
    /// Reads the keys of one entry (after the engine's) and stores what they yield in `entry.values`.
    public var read: @Sendable (inout InventoryReader, inout HostEntry) -> Void

    public init(keys: [String], read: @escaping @Sendable (inout InventoryReader, inout HostEntry) -> Void) {
        self.keys = keys
        self.read = read
    }
}

/// A check across sections and hosts: unique values, one setting against another.
public struct InventoryCheck: Sendable {
    public var run: @Sendable (inout InventoryReader, [HostEntry]) -> Void

    public init(_ run: @escaping @Sendable (inout InventoryReader, [HostEntry]) -> Void) {
        self.run = run
    }
}

/// A template variable a module provides: its name and how to compute it for a host.
public struct TemplateVariable: Sendable {
    public var name: String
    public var value: @Sendable (Host, Inventory) -> String

    public init(_ name: String, _ value: @escaping @Sendable (Host, Inventory) -> String) {
        self.name = name
        self.value = value
    }
}
