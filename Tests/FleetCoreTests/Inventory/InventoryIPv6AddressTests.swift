import XCTest

@testable import FleetCore

final class InventoryIPv6AddressTests: XCTestCase {
    func testCanonicalFormFollowsRFC5952() {
        let cases: [(String, String)] = [
            ("FD00:0:0::1", "fd00::1"),
            ("fd00:0000:0000:0000:0000:0000:0000:0001", "fd00::1"),
            ("2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"),  // first of two equal runs
            ("0:0:1:0:0:0:1:0", "0:0:1::1:0"),  // the longest run wins
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  // a single zero group stays
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("::a", "::a"),
            ("::102:304", "::102:304"),
            ("::FFFF:192.0.2.1", "::ffff:192.0.2.1"),
            ("fe80::AbCd:0012", "fe80::abcd:12"),
        ]
        for (input, expected) in cases {
            XCTAssertEqual(IPv6Address(input)?.description, expected, input)
        }
    }

    func testRejectsNonAddresses() {
        for text in ["", "fe80::1%eth0", "[fd00::1]", "fd00::zz", "1.2.3.4", " fd00::1", "fd00::1 ", "fd00::/64",
            "1:2:3:4:5:6:7:8:9", "fd00:::1", "fd00::1::2", "example.com", "12345::"]
        {
            XCTAssertNil(IPv6Address(text), text)
        }
    }

    func testEqualityAndHashingIgnoreSpelling() {
        let a = IPv6Address("fd00:0::1")
        let b = IPv6Address("FD00::0001")
        XCTAssertNotNil(a)
        XCTAssertEqual(a, b)
        XCTAssertEqual(Set([a, b]).count, 1)
        XCTAssertNotEqual(IPv6Address("fd00::1"), IPv6Address("fd00::2"))
        XCTAssertLessThan(IPv6Address("fd00::1")!, IPv6Address("fd00::1:0")!)
    }

    func testBytesRoundTrip() throws {
        let address = try XCTUnwrap(IPv6Address("2001:db8:1234:5678:9abc:def0:1122:3344"))
        XCTAssertEqual(address.bytes, [0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x11, 0x22, 0x33, 0x44])
        XCTAssertEqual(IPv6Address(bytes: address.bytes), address)
        XCTAssertEqual(address.groups, [0x2001, 0x0db8, 0x1234, 0x5678, 0x9abc, 0xdef0, 0x1122, 0x3344])
        XCTAssertNil(IPv6Address(bytes: [1, 2, 3]))
    }

    func testClassification() {
        func check(_ text: String, linkLocal: Bool = false, loopback: Bool = false, ula: Bool = false, documentation: Bool = false,
            line: UInt = #line)
        {
            guard let address = IPv6Address(text) else { return XCTFail("\(text) did not parse", line: line) }
            XCTAssertEqual(address.isLinkLocal, linkLocal, "\(text) link-local", line: line)
            XCTAssertEqual(address.isLoopback, loopback, "\(text) loopback", line: line)
            XCTAssertEqual(address.isULA, ula, "\(text) ULA", line: line)
            XCTAssertEqual(address.isDocumentation, documentation, "\(text) documentation", line: line)
        }
        check("fe80::1", linkLocal: true)
        check("febf:ffff::1", linkLocal: true)
        check("fec0::1")
        check("fe7f::1")
        check("::1", loopback: true)
        check("::2")
        check("fc00::", ula: true)
        check("fdff:ffff::1", ula: true)
        check("fe00::1")
        check("fbff::1")
        check("2001:db8::", documentation: true)
        check("2001:db8:ffff:ffff::1", documentation: true)
        check("2001:db9::1")
        check("2001:db7:ffff::1")
        XCTAssertTrue(IPv6Address("::")!.isUnspecified)
        XCTAssertTrue(IPv6Address("ff02::1")!.isMulticast)
        XCTAssertTrue(IPv6Address("::ffff:10.0.0.1")!.isIPv4Mapped)
    }

    func testAddingCarriesAndOverflows() {
        XCTAssertEqual(IPv6Address("fd00::ffff:ffff:ffff:ffff")?.adding(1), IPv6Address("fd00:0:0:1::"))
        XCTAssertNil(IPv6Address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")?.adding(1))
    }
}
