import Foundation

/// A number of seconds a user gives (a step's or a command's timeout, an interval): finite, more
/// than 0 and at most 30 days. `inf`, `nan` and `1e19` are refused where they are read, so no later
/// arithmetic (deadlines, milliseconds as integers) can trap or silently disable a timeout.
public enum Seconds {
    public static let maximum: Double = 30 * 86_400

    /// nil when `value` is usable, else why not (for an error naming the file, line and key, or the flag).
    public static func problem(_ value: Double) -> String? {
        if value.isNaN { return "nan is not a number of seconds" }
        if !value.isFinite { return "\(value) is not a finite number of seconds" }
        if value <= 0 { return "must be > 0" }
        if value > maximum { return "\(value) is more than \(Int(maximum)) seconds (30 days)" }
        return nil
    }

    /// Integer milliseconds of a duration, never trapping (clamped; nan → 0).
    public static func milliseconds(_ seconds: Double) -> Int {
        guard seconds.isFinite else { return seconds.isNaN || seconds < 0 ? 0 : Int.max }
        let ms = (seconds * 1000).rounded()
        if ms >= Double(Int.max) { return Int.max }
        if ms <= Double(Int.min) { return Int.min }
        return Int(ms)
    }
}
