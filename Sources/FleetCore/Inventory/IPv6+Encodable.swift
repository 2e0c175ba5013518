import Foundation

/// Addresses and ranges encode as their canonical text (`fd00:10::1`, `fd00:42::/56`): the form
/// digests and JSON output carry.
extension IPv6Address: Encodable {
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension IPv6CIDR: Encodable {
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
