import Foundation

/// A value guarded by a lock, for results gathered from host threads.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    @discardableResult
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock(); defer { lock.unlock() }
        return try body(&value)
    }
}

/// Calls `body` for every item, each on a thread of its own (libssh2 calls block and must never
/// run on Swift's cooperative pool), at most `limit` at once. Returns when all are done.
public func parallelEach<T: Sendable>(_ items: [T], limit: Int, _ body: @escaping @Sendable (T) -> Void) {
    let slots = DispatchSemaphore(value: max(1, limit))
    let group = DispatchGroup()
    for item in items {
        group.enter()
        let t = Thread {
            slots.wait()
            body(item)
            slots.signal()
            group.leave()
        }
        t.stackSize = 1 << 20
        t.start()
    }
    group.wait()
}

/// `parallelEach` that keeps each item's result: returns them in the items' order, and calls
/// `onEach` (serialised, under a lock) as each item finishes.
public func parallelMap<T: Sendable, R: Sendable>(_ items: [T], limit: Int, _ body: @escaping @Sendable (T) -> R,
                                                  onEach: @escaping @Sendable (T, R) -> Void = { _, _ in }) -> [R] {
    let results = Locked<[Int: R]>([:])
    parallelEach(Array(items.enumerated()), limit: limit) { pair in
        let r = body(pair.element)
        results.withLock {
            $0[pair.offset] = r
            onEach(pair.element, r)
        }
    }
    let all = results.withLock { $0 }
    return items.indices.map { all[$0]! }
}
