import Foundation

/// An IPv6 address: 128 bits, compared and hashed by value, never by spelling.
///
/// `description` is the RFC 5952 canonical text: lowercase hex, no leading zeros, the longest run of two or more
/// zero groups shortened to `::` (the first such run on a tie), and IPv4-mapped addresses as `::ffff:a.b.c.d`.
public struct IPv6Address: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The first 64 bits, most significant first.
    public let high: UInt64
    /// The last 64 bits.
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Parses an IPv6 literal with `inet_pton(AF_INET6)`. Zone indexes (`fe80::1%eth0`), brackets, prefixes and
    /// surrounding whitespace are rejected.
    public init?(_ text: String) {
        guard !text.isEmpty, text.count <= 64, !text.contains("%"), !text.contains("\0") else { return nil }
        var storage = in6_addr()
        let result = text.withCString { inet_pton(AF_INET6, $0, &storage) }
        guard result == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &storage) { Array($0) }
        guard let parsed = IPv6Address(bytes: bytes) else { return nil }
        self = parsed
    }

    /// Builds an address from exactly 16 bytes in network order.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for index in 0..<8 {
            high = (high << 8) | UInt64(bytes[index])
            low = (low << 8) | UInt64(bytes[index + 8])
        }
        self.init(high: high, low: low)
    }

    /// The 16 bytes in network order.
    public var bytes: [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) { result.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { result.append(UInt8(truncatingIfNeeded: low >> UInt64(shift))) }
        return result
    }

    /// The eight 16-bit groups, most significant first.
    public var groups: [UInt16] {
        var result: [UInt16] = []
        result.reserveCapacity(8)
        for shift in stride(from: 48, through: 0, by: -16) { result.append(UInt16(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 48, through: 0, by: -16) { result.append(UInt16(truncatingIfNeeded: low >> UInt64(shift))) }
        return result
    }

    /// `::` — the unspecified address.
    public var isUnspecified: Bool { high == 0 && low == 0 }
    /// `::1`.
    public var isLoopback: Bool { high == 0 && low == 1 }
    /// `fe80::/10`.
    public var isLinkLocal: Bool { high >> 54 == 0x3FA }
    /// Unique local addresses, `fc00::/7`.
    public var isULA: Bool { high >> 57 == 0x7E }
    /// The documentation range `2001:db8::/32` (RFC 3849).
    public var isDocumentation: Bool { high >> 32 == 0x2001_0DB8 }
    /// `ff00::/8`.
    public var isMulticast: Bool { high >> 56 == 0xFF }
    /// IPv4-mapped addresses, `::ffff:0:0/96`.
    public var isIPv4Mapped: Bool { high == 0 && low >> 32 == 0xFFFF }

    public var description: String {
        let groups = self.groups
        if isIPv4Mapped {
            let v4 = UInt32(truncatingIfNeeded: low)
            return "::ffff:\(v4 >> 24).\((v4 >> 16) & 0xFF).\((v4 >> 8) & 0xFF).\(v4 & 0xFF)"
        }
        // Find the longest run of zero groups (length >= 2); the first one wins a tie.
        var bestStart = -1
        var bestLength = 0
        var runStart = -1
        for index in 0...8 {
            if index < 8, groups[index] == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                let length = index - runStart
                if length > bestLength {
                    bestStart = runStart
                    bestLength = length
                }
                runStart = -1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        let hex = groups.map { String($0, radix: 16) }
        guard bestStart >= 0 else { return hex.joined(separator: ":") }
        let head = hex[..<bestStart].joined(separator: ":")
        let tail = hex[(bestStart + bestLength)...].joined(separator: ":")
        return head + "::" + tail
    }

    public static func < (lhs: IPv6Address, rhs: IPv6Address) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// This address plus `offset`, or nil when the sum passes `ffff:…:ffff`.
    public func adding(_ offset: UInt64) -> IPv6Address? {
        let (newLow, carry) = low.addingReportingOverflow(offset)
        if carry {
            let (newHigh, overflow) = high.addingReportingOverflow(1)
            if overflow { return nil }
            return IPv6Address(high: newHigh, low: newLow)
        }
        return IPv6Address(high: high, low: newLow)
    }
}

extension InventorySyntax {
    /// Checks an IPv4 dotted-quad literal with `inet_pton(AF_INET)`.
    public static func isIPv4Literal(_ text: String) -> Bool {
        guard !text.isEmpty, text.count <= 15, !text.contains("\0") else { return false }
        var storage = in_addr()
        return text.withCString { inet_pton(AF_INET, $0, &storage) } == 1
    }
}
