import FleetSteps
import XCTest

final class K3sVersionTests: XCTestCase {
    func testParsesExactReleasesOnly() throws {
        let v = try XCTUnwrap(K3sVersion("v1.31.5+k3s1"))
        XCTAssertEqual([v.major, v.minor, v.patch, v.revision], [1, 31, 5, 1])
        XCTAssertEqual(v.description, "v1.31.5+k3s1")
        XCTAssertEqual(v.minorRelease, "v1.31")
        for bad in ["", "latest", "1.31.5+k3s1", "v1.31+k3s1", "v1.31.5", "v1.31.5+rke1", "v1.31.5+k3s", "v1.31.x+k3s1",
                    "v1.31.5+k3s1+k3s2", "v1.31.5.0+k3s1", "v1.-31.5+k3s1", "v1.31.5+k3s1234567890"] {
            XCTAssertNil(K3sVersion(bad), bad)
        }
    }

    func testReadsTheVersionWordOfK3sVersionOutput() {
        XCTAssertEqual(K3sVersion(versionOutput: "k3s version v1.31.5+k3s1 (56ec5dd4)\ngo version go1.22.12\n"),
                       K3sVersion("v1.31.5+k3s1"))
        XCTAssertNil(K3sVersion(versionOutput: ""))
        XCTAssertNil(K3sVersion(versionOutput: "sh: 1: /usr/local/bin/k3s: not found"))
    }

    func testOrdersByNumbersNotText() throws {
        let ordered = ["v1.9.9+k3s9", "v1.22.9+k3s1", "v1.30.10+k3s1", "v1.31.2+k3s1", "v1.31.2+k3s2", "v1.31.10+k3s1", "v2.0.0+k3s1"]
            .map { K3sVersion($0)! }
        XCTAssertEqual(ordered.shuffled().sorted(), ordered)
        XCTAssertLessThan(K3sVersion("v1.30.10+k3s1")!, K3sVersion("v1.31.0+k3s1")!)
        XCTAssertEqual(K3sVersion("v1.31.2+k3s1")!.minorRelease, K3sVersion("v1.31.10+k3s3")!.minorRelease)
    }
}
