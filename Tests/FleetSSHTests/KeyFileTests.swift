@testable import FleetSSH
import Foundation
import XCTest

final class KeyFileTests: XCTestCase {
    func testKeyTypeFromPEMHeaders() {
        XCTAssertEqual(KeyFile.keyType(pem: "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\n"), "ssh-rsa")
        XCTAssertEqual(KeyFile.keyType(pem: "-----BEGIN EC PRIVATE KEY-----\nabc\n-----END EC PRIVATE KEY-----\n"), "ecdsa")
        XCTAssertNil(KeyFile.keyType(pem: "not a key"))
    }

    func testBlobTypeReadsTheAlgorithmName() {
        var blob = Data([0, 0, 0, 11])
        blob.append(Data("ssh-ed25519".utf8))
        blob.append(Data([0, 0, 0, 1, 7]))
        XCTAssertEqual(KeyFile.blobType(blob), "ssh-ed25519")
        XCTAssertNil(KeyFile.blobType(Data([0, 0, 0, 40, 1])), "a length past the end is no type")
    }
}
