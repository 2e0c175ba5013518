import Foundation

/// Bounds how many connections are between their TCP connect and the end of authentication at
/// once, so a thousand hosts started together do not all time out sharing two cores.
///
/// The bound adapts to what it sees, like a delay-based congestion window: it starts at 8 per
/// core, grows by one for each connection set up about as fast as the fastest seen so far, and
/// shrinks by a quarter (at most once per window of completions) when set-ups take several times
/// that long, which is what a saturated CPU or link looks like. A host waits for its turn before
/// its connect timer starts, so `connect_timeout` measures the host, not the queue.
public final class ConnectPacer: @unchecked Sendable {
    public static let shared = ConnectPacer(cores: ProcessInfo.processInfo.activeProcessorCount)

    public let minLimit: Int
    public let maxLimit: Int
    private let cond = NSCondition()
    private var _limit: Int
    private var inFlight = 0
    /// The fastest set-up seen (seconds).
    private var fastest: Double?
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
        while inFlight >= _limit { cond.wait() }
        inFlight += 1
    }

    /// Frees a slot; `setUp` is how long a connection that succeeded took from its turn to
    /// authenticated (nil for a failed one, which says nothing about load).
    public func release(setUp: Double?) {
        cond.lock(); defer { cond.unlock() }
        inFlight -= 1
        if let setUp { observe(setUp) }
        cond.broadcast()
    }

    /// Adapts the bound to one set-up time. Call with the lock held.
    private func observe(_ seconds: Double) {
        let best = min(fastest ?? seconds, seconds)
        fastest = best
        if holdOff > 0 { holdOff -= 1 }
        if seconds <= 2 * best + 0.02 {
            _limit = min(maxLimit, _limit + 1)
        } else if seconds > 4 * best + 0.1, holdOff == 0 {
            _limit = max(minLimit, _limit - max(1, _limit / 4))
            holdOff = _limit
        }
    }

    /// Runs `body` in a slot and feeds its duration back when it succeeds.
    func paced<T>(_ body: () throws -> T) rethrows -> T {
        acquire()
        let start = Date()
        do {
            let value = try body()
            release(setUp: Date().timeIntervalSince(start))
            return value
        } catch {
            release(setUp: nil)
            throw error
        }
    }
}
