import Foundation

/// Bounds how many connections are between their TCP connect and the end of authentication at
/// once, so a thousand hosts started together do not all time out sharing two cores.
///
/// The bound adapts to how close set-ups come to their own deadline, which is what decides
/// whether a host is falsely reported unreachable: it starts at 8 per core, grows by one for each
/// connection set up in under a tenth of its connect timeout, and shrinks by a quarter (at most
/// once per window of completions) when one takes over a quarter of it, as set-ups do when the
/// control machine's CPU or link is saturated. Distant hosts with a long round trip but time to
/// spare do not shrink it. A host waits for its turn before its connect timer starts, so
/// `connect_timeout` measures the host, not the queue.
public final class ConnectPacer: @unchecked Sendable {
    public static let shared = ConnectPacer(cores: ProcessInfo.processInfo.activeProcessorCount)

    public let minLimit: Int
    public let maxLimit: Int
    private let cond = NSCondition()
    private var _limit: Int
    private var inFlight = 0
    /// Connections waiting for a slot: each release wakes only as many as can start, never all
    /// of them (a thousand hosts woken on every release cost seconds of CPU).
    private var waiting = 0
    /// Completions to wait after a decrease before the next one.
    private var holdOff = 0

    public init(cores: Int, initial: Int? = nil) {
        let c = max(1, cores)
        minLimit = 2 * c
        maxLimit = 128 * c
        _limit = min(maxLimit, max(minLimit, initial ?? 8 * c))
    }

    /// The current bound.
    public var limit: Int {
        cond.lock(); defer { cond.unlock() }
        return _limit
    }

    /// Waits for a free slot.
    public func acquire() {
        cond.lock(); defer { cond.unlock() }
        waiting += 1
        while inFlight >= _limit { cond.wait() }
        waiting -= 1
        inFlight += 1
    }

    /// Frees a slot. `used` is the share of its connect timeout that a connection which
    /// succeeded took from its turn to authenticated (nil for a failed one: a host that is down
    /// says nothing about load).
    public func release(used: Double?) {
        cond.lock(); defer { cond.unlock() }
        inFlight -= 1
        if let used { observe(used) }
        // A waiter woken for a slot another one took waits again; one that finds the limit grown
        // takes the extra slot, so at most `free` signals are ever needed.
        for _ in 0..<min(waiting, max(0, _limit - inFlight)) { cond.signal() }
    }

    /// Adapts the bound to one set-up. Call with the lock held.
    private func observe(_ used: Double) {
        if holdOff > 0 { holdOff -= 1 }
        if used < 0.1 {
            _limit = min(maxLimit, _limit + 1)
        } else if used > 0.25, holdOff == 0 {
            _limit = max(minLimit, _limit - max(1, _limit / 4))
            holdOff = _limit
        }
    }

    /// Runs `body` in a slot and feeds back the share of `timeout` it took when it succeeds.
    func paced<T>(timeout: Double, _ body: () throws -> T) rethrows -> T {
        acquire()
        let start = Date()
        do {
            let value = try body()
            release(used: Date().timeIntervalSince(start) / max(timeout, 0.001))
            return value
        } catch {
            release(used: nil)
            throw error
        }
    }
}
