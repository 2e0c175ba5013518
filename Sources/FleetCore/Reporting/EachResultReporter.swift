import Foundation

/// Hands each finished task to a closure, one at a time, as it ends: for verbs that print their
/// own lines (`exec`, `check`, `reset`) rather than the live view.
public final class EachResultReporter: Reporter, @unchecked Sendable {
    private let lock = NSLock()
    private let body: (TaskResult) -> Void

    public init(_ body: @escaping (TaskResult) -> Void) { self.body = body }

    public func runStarted(_ info: RunInfo) {}
    public func taskStarted(host: String, step: String) {}
    public func runFinished(_ summary: RunSummary) {}

    public func taskFinished(_ r: TaskResult) {
        lock.lock(); defer { lock.unlock() }
        body(r)
    }
}
