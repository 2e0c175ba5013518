import Foundation

/// Values a module read from an inventory, one per type: what a module's section or host keys
/// became (a module keeps its sections' settings here, and each host's extra keys in ``Host/values``).
///
/// The engine stores them and never looks inside; the module that declared a section reads it back
/// by its type, usually through a computed property in an extension.
public struct SectionValues: Sendable, Hashable {
    private struct Box: @unchecked Sendable, Hashable {
        // Only Sendable values go in (see the subscript), so the box may cross threads.
        let value: AnyHashable
    }

    private var storage: [ObjectIdentifier: Box] = [:]

    public init() {}

    /// The value of type `T`, when one was stored.
    public subscript<T: Hashable & Sendable>(_ type: T.Type) -> T? {
        get { storage[ObjectIdentifier(type)]?.value.base as? T }
        set { storage[ObjectIdentifier(type)] = newValue.map { Box(value: AnyHashable($0)) } }
    }

    /// The value of type `T`; stops the program when there is none: a module asked for a section its own
    /// schema guarantees (an inventory loaded or built without that module's schema is a programming error).
    public func required<T: Hashable & Sendable>(_ type: T.Type) -> T {
        guard let value = self[type] else {
            preconditionFailure("no \(T.self) in this inventory: was it loaded with the schema that declares it?")
        }
        return value
    }
}
