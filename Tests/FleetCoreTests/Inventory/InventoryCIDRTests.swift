import XCTest

@testable import FleetCore

final class InventoryCIDRTests: XCTestCase {
    private func cidr(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> IPv6CIDR {
        do {
            return try IPv6CIDR(parsing: text)
        } catch {
            XCTFail("\(text): \(error)", file: file, line: line)
            return IPv6CIDR(masking: IPv6Address(high: 0, low: 0), prefixLength: 128)
        }
    }

    private func parseError(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> IPv6CIDRParseError? {
        do {
            let parsed = try IPv6CIDR(parsing: text)
            XCTFail("\(text) parsed as \(parsed)", file: file, line: line)
        } catch let error as IPv6CIDRParseError {
            return error
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
        }
        return nil
    }

    func testParsesAndPrintsCanonically() {
        let range = cidr("FD00:0042:0000::/56")
        XCTAssertEqual(range.description, "fd00:42::/56")
        XCTAssertEqual(range.prefixLength, 56)
        XCTAssertEqual(range.address, IPv6Address("fd00:42::"))
        XCTAssertEqual(cidr("::/0").description, "::/0")
        XCTAssertEqual(cidr("fd00::1/128").description, "fd00::1/128")
    }

    func testRefusesHostBitsAndNamesTheValue() {
        let error = parseError("fd00:42::1/56")
        XCTAssertEqual(error?.reason, .hostBitsSet(network: "fd00:42::/56"))
        XCTAssertTrue(error?.description.contains("\"fd00:42::1/56\"") ?? false)
        XCTAssertTrue(error?.description.contains("fd00:42::/56") ?? false)
        XCTAssertEqual(parseError("fd00:42:0:1::/63")?.reason, .hostBitsSet(network: "fd00:42::/63"))
    }

    func testRefusesMalformedRanges() {
        XCTAssertEqual(parseError("10.42.0.0/16")?.reason, .isIPv4)
        XCTAssertTrue(parseError("10.42.0.0/16")?.description.contains("is IPv4") ?? false)
        XCTAssertEqual(parseError("fd00::")?.reason, .missingPrefix)
        XCTAssertEqual(parseError("fd00::/64/64")?.reason, .missingPrefix)
        XCTAssertEqual(parseError("fd00::zz/64")?.reason, .badAddress)
        for text in ["fd00::/129", "fd00::/", "fd00::/x", "fd00::/-1", "fd00::/+8", "fd00::/ 64", "fd00::/0064"] {
            XCTAssertEqual(parseError(text)?.reason, .badPrefixLength, text)
        }
    }

    func testContainsAtSlash64Boundaries() {
        let range = cidr("fd00:42::/64")
        XCTAssertTrue(range.contains(IPv6Address("fd00:42::")!))
        XCTAssertTrue(range.contains(IPv6Address("fd00:42::ffff:ffff:ffff:ffff")!))
        XCTAssertFalse(range.contains(IPv6Address("fd00:42:0:1::")!))
        XCTAssertFalse(range.contains(IPv6Address("fd00:41:ffff:ffff:ffff:ffff:ffff:ffff")!))

        let wider = cidr("fd00:42::/63")
        XCTAssertTrue(wider.contains(IPv6Address("fd00:42:0:1:ffff:ffff:ffff:ffff")!))
        XCTAssertFalse(wider.contains(IPv6Address("fd00:42:0:2::")!))

        let narrower = cidr("fd00:42::/65")
        XCTAssertTrue(narrower.contains(IPv6Address("fd00:42::7fff:ffff:ffff:ffff")!))
        XCTAssertFalse(narrower.contains(IPv6Address("fd00:42::8000:0:0:0")!))
    }

    func testZeroAndFullPrefixes() {
        let everything = cidr("::/0")
        XCTAssertTrue(everything.contains(IPv6Address("::")!))
        XCTAssertTrue(everything.contains(IPv6Address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")!))
        XCTAssertTrue(everything.overlaps(cidr("fd00::1/128")))
        XCTAssertTrue(cidr("fd00::1/128").overlaps(everything))

        let single = cidr("fd00::1/128")
        XCTAssertTrue(single.contains(IPv6Address("fd00::1")!))
        XCTAssertFalse(single.contains(IPv6Address("fd00::2")!))
        XCTAssertFalse(single.contains(IPv6Address("fd00::")!))
    }

    func testOverlapsIsSymmetric() {
        let pods = cidr("fd00:42::/56")
        let inside = cidr("fd00:42:0:ff::/64")
        let outside = cidr("fd00:42:0:100::/64")
        XCTAssertTrue(pods.overlaps(inside))
        XCTAssertTrue(inside.overlaps(pods))
        XCTAssertFalse(pods.overlaps(outside))
        XCTAssertFalse(outside.overlaps(pods))
        XCTAssertFalse(cidr("fd00:42::/56").overlaps(cidr("fd00:43::/112")))
        XCTAssertTrue(cidr("fd00:42::/56").overlaps(cidr("fd00:42::/56")))
        XCTAssertTrue(pods.contains(inside))
        XCTAssertFalse(inside.contains(pods))
    }

    func testSubnets() {
        let pods = cidr("fd00:42::/56")
        XCTAssertEqual(pods.subnet(index: 0, prefixLength: 64)?.description, "fd00:42::/64")
        XCTAssertEqual(pods.subnet(index: 1, prefixLength: 64)?.description, "fd00:42:0:1::/64")
        XCTAssertEqual(pods.subnet(index: 255, prefixLength: 64)?.description, "fd00:42:0:ff::/64")
        XCTAssertNil(pods.subnet(index: 256, prefixLength: 64))
        XCTAssertNil(pods.subnet(index: -1, prefixLength: 64))
        XCTAssertNil(pods.subnet(index: 0, prefixLength: 55))
        XCTAssertNil(pods.subnet(index: 0, prefixLength: 129))
        XCTAssertEqual(pods.subnet(index: 0, prefixLength: 56), pods)
        XCTAssertNil(pods.subnet(index: 1, prefixLength: 56))
        XCTAssertEqual(pods.subnetCount(prefixLength: 64), 256)

        // Crossing the 64-bit halves.
        XCTAssertEqual(cidr("fd00:42::/64").subnet(index: 3, prefixLength: 66)?.description, "fd00:42:0:0:c000::/66")
        XCTAssertEqual(cidr("fd00:42::/63").subnet(index: 1, prefixLength: 64)?.description, "fd00:42:0:1::/64")
        XCTAssertEqual(cidr("fd00::/112").subnet(index: 0xffff, prefixLength: 128)?.description, "fd00::ffff/128")

        let everything = cidr("::/0")
        XCTAssertEqual(everything.subnet(index: 1, prefixLength: 1)?.description, "8000::/1")
        XCTAssertNil(everything.subnet(index: 2, prefixLength: 1))
        XCTAssertEqual(everything.subnet(index: Int.max, prefixLength: 128)?.description, "::7fff:ffff:ffff:ffff/128")
        XCTAssertEqual(everything.subnetCount(prefixLength: 64), UInt64.max)
    }

    func testAddressAtOffset() {
        let services = cidr("fd00:43::/112")
        XCTAssertEqual(services.address(at: 10)?.description, "fd00:43::a")
        XCTAssertEqual(services.address(at: 0xffff)?.description, "fd00:43::ffff")
        XCTAssertNil(services.address(at: 0x10000))
    }

    func testMaskingInitializer() {
        XCTAssertEqual(IPv6CIDR(masking: IPv6Address("fd00:42::1234")!, prefixLength: 64).description, "fd00:42::/64")
        XCTAssertNil(IPv6CIDR(address: IPv6Address("fd00:42::1234")!, prefixLength: 64))
        XCTAssertNotNil(IPv6CIDR(address: IPv6Address("fd00:42::")!, prefixLength: 64))
        XCTAssertNil(IPv6CIDR(address: IPv6Address("fd00:42::")!, prefixLength: 129))
    }
}
