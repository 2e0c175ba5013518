@testable import FleetSteps
import Foundation
import XCTest

/// Agent log lines as K3s (and the lab's stand-in) print them.
final class K3sLogTests: XCTestCase {
    let starting = #"time="2026-11-25T15:24:52Z" level=info msg="Starting k3s agent v1.31.5+k3s1 (56ec5dd4)""#
    let unauthorized = #"time="2026-11-25T15:25:21Z" level=info msg="Waiting to retrieve agent configuration; server is not ready: failed to retrieve configuration from server: https://[fd42:f1ee:7:74::1:1]:6443/v1-k3s/config: 401 Unauthorized""#
    let otherCluster = #"time="2026-11-25T15:25:30Z" level=error msg="Failed to validate connection to cluster at https://[fd42:f1ee:7:74::1:1]:6443: token CA hash does not match the Cluster CA certificate hash: aaaa != 656e""#
    let unbracketed = #"time="2026-11-25T15:25:30Z" level=error msg="Failed to validate connection to cluster at https://fd42:f1ee:7:ff::10:6443: failed to get CA certs: dial tcp: address fd42:f1ee:7:ff::10:6443: too many colons in address""#
    let refused = #"time="2026-11-25T15:25:30Z" level=error msg="Failed to validate connection to cluster at https://[fd42:f1ee:7:ff::10]:6443: failed to get CA certs: Get \"https://[fd42:f1ee:7:ff::10]:6443/cacerts\": dial tcp [fd42:f1ee:7:ff::10]:6443: connect: connection refused""#
    let registered = #"I1125 15:24:52.898042    1574 kubelet_node_status.go:76] "Successfully registered node" node="k3ssmoke-2""#
    let up = #"time="2026-11-25T15:24:52Z" level=info msg="k3s agent is up and running""#

    func testMessages() {
        XCTAssertEqual(K3sLog.message(starting), "Starting k3s agent v1.31.5+k3s1 (56ec5dd4)")
        XCTAssertEqual(K3sLog.message(registered), "Successfully registered node")
        XCTAssertTrue(K3sLog.message(refused).contains(#"Get "https://[fd42:f1ee:7:ff::10]:6443/cacerts""#), K3sLog.message(refused))
        XCTAssertEqual(K3sLog.message("systemd[1]: Started k3s-agent.service."), "systemd[1]: Started k3s-agent.service.")
        XCTAssertEqual(K3sLog.level(otherCluster), "error")
        XCTAssertNil(K3sLog.level(registered))
    }

    func testRegistered() {
        XCTAssertEqual(K3sLog.agentState([starting, registered, up]), .registered)
    }

    func testWrongSecretIsRefusedWith401() {
        guard case .refused(let why) = K3sLog.agentState([starting, unauthorized]) else { return XCTFail() }
        XCTAssertTrue(why.hasPrefix("the server refused the join token (401 Unauthorized): Waiting to retrieve agent configuration"), why)
    }

    func testTokenOfAnotherCluster() {
        guard case .refused(let why) = K3sLog.agentState([starting, otherCluster]) else { return XCTFail() }
        XCTAssertTrue(why.hasPrefix("the join token is from another cluster"), why)
    }

    func testUnbracketedURL() {
        guard case .refused(let why) = K3sLog.agentState([unbracketed]) else { return XCTFail() }
        XCTAssertTrue(why.contains("must be bracketed"), why)
    }

    func testNodePasswordRejected() {
        let line = #"time="2026-11-25T15:25:30Z" level=info msg="Waiting to retrieve agent configuration; server is not ready: /var/lib/rancher/k3s/agent/serving-kubelet.crt: Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password' may not match server node-passwd entry, try enabling a unique node name with the --with-node-id flag""#
        guard case .refused(let why) = K3sLog.agentState([line]) else { return XCTFail() }
        XCTAssertTrue(why.contains("kubectl delete node"), why)
    }

    func testServerDownIsWaitedFor() {
        XCTAssertEqual(K3sLog.agentState([starting, refused]), .waiting(K3sLog.message(refused)))
        XCTAssertEqual(K3sLog.agentState([]), .waiting(nil))
    }

    func testLastErrorPrefersFatal() {
        let lines = [
            #"time="t" level=error msg="something transient""#,
            #"time="t" level=fatal msg="Error: cluster-cidr: [10.42.0.0/16] and node-ip: [fd42::10], must share the same IP version (IPv4, IPv6 or dual-stack)""#,
            "systemd[1]: k3s.service: Main process exited, code=exited, status=1/FAILURE",
        ]
        XCTAssertEqual(K3sLog.lastError(lines), "Error: cluster-cidr: [10.42.0.0/16] and node-ip: [fd42::10], must share the same IP version (IPv4, IPv6 or dual-stack)")
        XCTAssertEqual(K3sLog.lastError([#"level=error msg="apiserver exited: specified --service-cluster-ip-range is too large""#]),
                       "apiserver exited: specified --service-cluster-ip-range is too large")
        XCTAssertNil(K3sLog.lastError([starting]))
    }
}
