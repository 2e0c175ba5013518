import FleetCore
@testable import FleetSteps
import Foundation
import XCTest

/// The scripts `upgrade`, `snapshot` and `restore` send parse as POSIX sh (see RemoteScriptSyntaxTests).
final class UpgradeScriptSyntaxTests: XCTestCase {
    func testEveryUpgradeSnapshotAndRestoreScriptParses() throws {
        let w = NodeUpgrade.Wanted(role: .agent, version: K3sVersion("v1.32.3+k3s1")!, airgapDir: "/srv/a b",
                                   binarySHA: "x", installerSHA: "y",
                                   images: ["/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst": "z"],
                                   kubectlHost: "s1")
        let scripts: [String: String] = [
            "node facts": NodeUpgrade.factScript(w).command,
            "drain": NodeCommands.drain("it's", grace: 30, timeout: 60),
            "cordon": NodeCommands.cordon("a $b"),
            "etcd save": DatastoreSnapshot.etcdSaveCommand("fleet-pre-v1.32.3-k3s1"),
            "sqlite copy": DatastoreSnapshot.sqliteCopyCommand(to: "/var/lib/rancher/k3s/server/db/snapshots/x-s1-1.db"),
            "cluster reset": RestoreVerb.resetCommand("/var/lib/rancher/k3s/server/db/snapshots/it's"),
            "wait readyz": RestoreVerb.waitReadyz(300),
        ]
        for (name, script) in scripts.sorted(by: { $0.key < $1.key }) {
            if let error = try RemoteScriptSyntaxTests.syntaxError(script) {
                XCTFail("\(name) does not parse: \(error)\n\(script)")
            }
        }
        XCTAssertNotNil(try RemoteScriptSyntaxTests.syntaxError("if true; then"), "the checker must be able to fail")
    }
}
