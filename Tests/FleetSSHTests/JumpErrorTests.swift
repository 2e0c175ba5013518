import XCTest

@testable import FleetSSH

/// How a failure on the way through jump hosts is worded: the hop, the destination, the cause.
final class JumpErrorTests: XCTestCase {
    private func hop(_ host: String, port: Int = 22) -> SSHTarget {
        SSHTarget(host: host, port: port, user: "ops", credentials: SSHCredentials(), knownHosts: "/kh")
    }

    func testHopsAreNamedWithUserAddressPortAndPosition() {
        XCTAssertEqual(JumpError.name(hop("2001:db8::b"), index: 0, of: 1), "jump host ops@[2001:db8::b]:22")
        XCTAssertEqual(JumpError.name(hop("bastion.example", port: 2222), index: 1, of: 2),
                       "jump host ops@bastion.example:2222 (hop 2 of 2)")
    }

    func testChannelOpenFailuresSayWhatToFix() {
        let prohibited = JumpPump.openFailure("Channel open failure (administratively prohibited)", hop: "jump host b",
                                              destination: "[fd00::5]:22")
        XCTAssertFalse(prohibited.isUnreachable, "forwarding refused is the bastion's configuration, not a down host")
        XCTAssertEqual(prohibited.description, "jump host b could not open a connection to [fd00::5]:22: Channel open failure "
                       + "(administratively prohibited): the jump host does not allow TCP forwarding (sshd_config "
                       + "AllowTcpForwarding, DisableForwarding or PermitOpen)")
        let failed = JumpPump.openFailure("Channel open failure (connect failed)", hop: "jump host b", destination: "[fd00::5]:22")
        XCTAssertTrue(failed.isUnreachable)
        XCTAssertTrue(failed.description.contains("the jump host cannot reach it"), failed.description)
        let other = JumpPump.openFailure("Channel open failure (resource shortage)", hop: "jump host b", destination: "x:22")
        XCTAssertEqual(other.reason, "Channel open failure (resource shortage)")
    }

    func testChainsDifferingInAnySettingGetTheirOwnSession() {
        let a = hop("b.example")
        var b = a
        b.knownHosts = "/other"
        var c = a
        c.hostKeyCheck = .acceptNew
        XCTAssertEqual(JumpPool.key([a]), JumpPool.key([hop("b.example")]))
        XCTAssertNotEqual(JumpPool.key([a]), JumpPool.key([b]))
        XCTAssertNotEqual(JumpPool.key([a]), JumpPool.key([c]))
        XCTAssertNotEqual(JumpPool.key([a]), JumpPool.key([a, a]))
    }
}
