import Foundation

/// Why a CIDR text was refused. The message names the value and the rule.
public struct IPv6CIDRParseError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Reason: Sendable, Equatable {
        case missingPrefix
        case isIPv4
        case badAddress
        case badPrefixLength
        case hostBitsSet(network: String)
    }

    public let value: String
    public let reason: Reason

    public var description: String {
        switch reason {
        case .missingPrefix:
            return "\"\(value)\" is not a CIDR: write an IPv6 network and a prefix length, like fd00:42::/56"
        case .isIPv4:
            return "\"\(value)\" is IPv4; an IPv6-only cluster needs an IPv6 range such as fd00:42::/56"
        case .badAddress:
            return "\"\(value)\" is not an IPv6 CIDR: the part before '/' is not an IPv6 address"
        case .badPrefixLength:
            return "\"\(value)\" is not an IPv6 CIDR: the prefix length must be a number from 0 to 128"
        case .hostBitsSet(let network):
            return "\"\(value)\" has host bits set: the network address must end in zero bits (did you mean \(network)?)"
        }
    }
}

/// An IPv6 network: an address whose host bits are all zero, and a prefix length from 0 to 128.
public struct IPv6CIDR: Hashable, Sendable, CustomStringConvertible {
    /// The network address (host bits are zero).
    public let address: IPv6Address
    /// The number of leading network bits, 0...128.
    public let prefixLength: Int

    /// Returns nil when `prefixLength` is outside 0...128 or `address` has host bits set.
    public init?(address: IPv6Address, prefixLength: Int) {
        guard (0...128).contains(prefixLength) else { return nil }
        let mask = IPv6CIDR.mask(prefixLength)
        guard address.high & ~mask.high == 0, address.low & ~mask.low == 0 else { return nil }
        self.address = address
        self.prefixLength = prefixLength
    }

    /// The network of `prefixLength` bits that holds `address` (host bits cleared; the length is clamped to 0...128).
    public init(masking address: IPv6Address, prefixLength: Int) {
        let length = max(0, min(128, prefixLength))
        let mask = IPv6CIDR.mask(length)
        self.address = IPv6Address(high: address.high & mask.high, low: address.low & mask.low)
        self.prefixLength = length
    }

    /// Parses `network/length`, e.g. `fd00:42::/56`. Throws ``IPv6CIDRParseError`` naming the value.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        let addressText = parts.first.map(String.init) ?? ""
        if addressText.contains("."), !addressText.contains(":") {
            throw IPv6CIDRParseError(value: text, reason: .isIPv4)
        }
        guard parts.count == 2 else { throw IPv6CIDRParseError(value: text, reason: .missingPrefix) }
        guard let address = IPv6Address(addressText) else {
            throw IPv6CIDRParseError(value: text, reason: .badAddress)
        }
        let lengthText = String(parts[1])
        guard !lengthText.isEmpty, lengthText.count <= 3, lengthText.allSatisfy({ $0.isASCII && $0.isNumber }),
            let length = Int(lengthText), (0...128).contains(length)
        else {
            throw IPv6CIDRParseError(value: text, reason: .badPrefixLength)
        }
        let mask = IPv6CIDR.mask(length)
        let network = IPv6Address(high: address.high & mask.high, low: address.low & mask.low)
        guard network == address else {
            throw IPv6CIDRParseError(value: text, reason: .hostBitsSet(network: "\(network)/\(length)"))
        }
        self.address = address
        self.prefixLength = length
    }

    public var description: String { "\(address)/\(prefixLength)" }

    /// True when `other` lies inside this network.
    public func contains(_ other: IPv6Address) -> Bool {
        let mask = IPv6CIDR.mask(prefixLength)
        return other.high & mask.high == address.high && other.low & mask.low == address.low
    }

    /// True when the two networks share at least one address (one contains the other's network address).
    public func overlaps(_ other: IPv6CIDR) -> Bool {
        prefixLength <= other.prefixLength ? contains(other.address) : other.contains(address)
    }

    /// True when every address of `other` is inside this network.
    public func contains(_ other: IPv6CIDR) -> Bool {
        prefixLength <= other.prefixLength && contains(other.address)
    }

    /// The `index`-th subnet of size `/prefixLength`, counting from 0, or nil when `prefixLength` is shorter than
    /// this network's or longer than 128, or `index` is negative or past the last subnet.
    /// `fd00:42::/56`.subnet(index: 1, prefixLength: 64) is `fd00:42:0:1::/64`.
    public func subnet(index: Int, prefixLength newLength: Int) -> IPv6CIDR? {
        guard index >= 0, newLength >= prefixLength, newLength <= 128 else { return nil }
        let extraBits = newLength - prefixLength
        if extraBits < 63, index >= (1 << extraBits) { return nil }
        let offset = IPv6CIDR.shiftLeft(UInt64(index), by: 128 - newLength)
        let network = IPv6Address(high: address.high | offset.high, low: address.low | offset.low)
        return IPv6CIDR(address: network, prefixLength: newLength)
    }

    /// How many subnets of size `/prefixLength` fit in this network; nil when `prefixLength` is out of range.
    /// Saturates at `UInt64.max`.
    public func subnetCount(prefixLength newLength: Int) -> UInt64? {
        guard newLength >= prefixLength, newLength <= 128 else { return nil }
        let extraBits = newLength - prefixLength
        return extraBits >= 64 ? UInt64.max : UInt64(1) << UInt64(extraBits)
    }

    /// The address `offset` past the network address, or nil when that leaves the network.
    /// The default cluster DNS is `serviceCIDR.address(at: 10)`.
    public func address(at offset: UInt64) -> IPv6Address? {
        guard let candidate = address.adding(offset), contains(candidate) else { return nil }
        return candidate
    }

    static func mask(_ length: Int) -> (high: UInt64, low: UInt64) {
        let clamped = max(0, min(128, length))
        if clamped <= 64 {
            let high: UInt64 = clamped == 0 ? 0 : UInt64.max << UInt64(64 - clamped)
            return (high, 0)
        }
        return (UInt64.max, UInt64.max << UInt64(128 - clamped))
    }

    static func shiftLeft(_ value: UInt64, by shift: Int) -> (high: UInt64, low: UInt64) {
        if shift >= 128 { return (0, 0) }
        if shift >= 64 { return (value << UInt64(shift - 64), 0) }
        if shift == 0 { return (0, value) }
        return (value >> UInt64(64 - shift), value << UInt64(shift))
    }
}
