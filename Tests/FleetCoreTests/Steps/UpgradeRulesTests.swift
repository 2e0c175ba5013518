import FleetSteps
import XCTest

final class UpgradeRulesTests: XCTestCase {
    private func v(_ s: String) -> K3sVersion { K3sVersion(s)! }

    private func problems(_ target: String, _ nodes: [(String, Bool, String?)]) -> [String] {
        UpgradeRules.problems(target: v(target), nodes: nodes.map { .init(name: $0.0, server: $0.1, version: $0.2.map(v)) })
    }

    func testTheNextMinorAndAPatchAreAllowed() {
        XCTAssertEqual(problems("v1.32.3+k3s1", [("s1", true, "v1.31.5+k3s1"), ("a1", false, "v1.31.5+k3s1")]), [])
        XCTAssertEqual(problems("v1.31.6+k3s1", [("s1", true, "v1.31.5+k3s1")]), [])
        XCTAssertEqual(problems("v1.31.5+k3s2", [("s1", true, "v1.31.5+k3s1")]), [])
        XCTAssertEqual(problems("v1.31.5+k3s1", [("s1", true, "v1.31.5+k3s1")]), [], "the same version is a no-op, not a problem")
    }

    func testADowngradeIsRefusedNamingTheNode() {
        let p = problems("v1.31.4+k3s1", [("s1", true, "v1.31.5+k3s1"), ("s2", true, "v1.31.4+k3s1")])
        XCTAssertEqual(p.count, 1)
        XCTAssertTrue(p[0].hasPrefix("s1: runs v1.31.5+k3s1, newer than v1.31.4+k3s1"), p[0])
        XCTAssertTrue(p[0].contains("never downgrades a server"), p[0])
    }

    func testASkippedMinorNamesTheReleaseToGoThroughFirst() {
        let p = problems("v1.32.0+k3s1", [("s1", true, "v1.30.9+k3s1")])
        XCTAssertEqual(p, ["s1: runs v1.30.9+k3s1 and v1.32.0+k3s1 would skip a minor release: upgrade to a v1.31 release first"])
        XCTAssertEqual(problems("v2.0.0+k3s1", [("a1", false, "v1.31.5+k3s1")]).count, 1, "a major change is a skip too")
    }

    func testServersMoreThanOneMinorApartAreRefused() {
        let p = problems("v1.31.5+k3s1", [("s1", true, "v1.31.0+k3s1"), ("s2", true, "v1.29.3+k3s1")])
        XCTAssertTrue(p.contains { $0.contains("the servers run v1.29 and v1.31, more than one minor apart") }, "\(p)")
    }

    func testANodeWithoutK3sIsRefused() {
        let p = problems("v1.31.5+k3s1", [("s1", true, "v1.31.5+k3s1"), ("a9", false, nil)])
        XCTAssertEqual(p, ["a9: K3s is not installed; run fleet up first (upgrade changes running nodes only)"])
    }

    func testBatchSizesAreAPercentageRoundedDownOrACountNeverZero() {
        XCTAssertEqual(BatchSize.default.size(agents: 2), 1)
        XCTAssertEqual(BatchSize.default.size(agents: 20), 2)
        XCTAssertEqual(BatchSize.default.size(agents: 29), 2)
        XCTAssertEqual(BatchSize.default.size(agents: 0), 1)
        XCTAssertEqual(BatchSize("50%")?.size(agents: 5), 2)
        XCTAssertEqual(BatchSize("100%")?.size(agents: 5), 5)
        XCTAssertEqual(BatchSize("3")?.size(agents: 20), 3)
        XCTAssertEqual(BatchSize("30")?.size(agents: 4), 4, "never more than there are")
        for bad in ["0", "-1", "0%", "101%", "x", "", "5 %x", "1.5"] { XCTAssertNil(BatchSize(bad), bad) }
        XCTAssertEqual(BatchSize("25%")?.description, "25%")
    }
}

final class UpgradePlanTests: XCTestCase {
    private let target = K3sVersion("v1.32.3+k3s1")!
    private let old = K3sVersion("v1.31.5+k3s1")!
    private let hosts: [UpgradePlan.Host] = [.init(name: "s1", server: true), .init(name: "s2", server: true),
                                             .init(name: "a1", server: false)]

    private func node(_ name: String, _ version: K3sVersion, ready: Bool = true, cordoned: Bool = false) -> (String, NodeState) {
        (name, NodeState(name: name, ready: ready, kubeletVersion: version.description, unschedulable: cordoned))
    }

    func testEveryNodeBehindIsPendingAndASnapshotComesFirst() {
        let facts = UpgradeFacts(versions: ["s1": old, "s2": old, "a1": old],
                                 nodes: Dictionary(uniqueKeysWithValues: [node("s1", old), node("s2", old), node("a1", old)]))
        let plan = UpgradePlan.make(hosts: hosts, facts: facts, target: target)
        XCTAssertEqual(plan.problems, [])
        XCTAssertEqual(plan.pending, ["s1", "s2", "a1"])
        XCTAssertTrue(plan.snapshot)
    }

    func testAClusterAtTheTargetHasNothingPendingAndNoSnapshot() {
        let facts = UpgradeFacts(versions: ["s1": target, "s2": target, "a1": target],
                                 nodes: Dictionary(uniqueKeysWithValues: [node("s1", target), node("s2", target), node("a1", target)]))
        let plan = UpgradePlan.make(hosts: hosts, facts: facts, target: target)
        XCTAssertEqual(plan.pending, [])
        XCTAssertFalse(plan.snapshot)
    }

    func testABinarySwappedButNotRestartedOrACordonedNodeIsStillPending() {
        let facts = UpgradeFacts(versions: ["s1": target, "s2": target, "a1": target],
                                 nodes: Dictionary(uniqueKeysWithValues: [node("s1", target), node("s2", old),
                                                                          node("a1", target, cordoned: true)]))
        XCTAssertEqual(UpgradePlan.make(hosts: hosts, facts: facts, target: target).pending, ["s2", "a1"])
    }

    func testAnUnreachableHostOrASilentAPIRefusesTheUpgrade() {
        let facts = UpgradeFacts(versions: ["s1": old, "a1": old], nodes: nil, unreachable: ["s2": "connection refused"])
        let p = UpgradePlan.make(hosts: hosts, facts: facts, target: target).problems
        XCTAssertEqual(p.count, 2, "\(p)")
        XCTAssertTrue(p[0].hasPrefix("s2: cannot be read (connection refused)"), p[0])
        XCTAssertTrue(p[1].hasPrefix("s1: its API did not list the nodes"), p[1])
    }
}

final class NodeUpgradePlanTests: XCTestCase {
    private let target = K3sVersion("v1.32.3+k3s1")!
    private let old = K3sVersion("v1.31.5+k3s1")!

    private func wanted(_ role: K3sInstall.Role, airgap: Bool = true, drain: Bool = true) -> NodeUpgrade.Wanted {
        NodeUpgrade.Wanted(role: role, version: target, airgapDir: airgap ? "/srv/k3s-1.32" : nil, binarySHA: "b",
                           installerSHA: "i", drain: drain, kubectlHost: "s1")
    }

    private func facts(_ binary: K3sVersion?, node: K3sVersion?, ready: Bool = true, cordoned: Bool = false,
                       installer: String? = "i") -> NodeUpgrade.Facts {
        var hashes: [String: String] = [:]
        if let installer { hashes[K3sInstall.installerPath] = installer }
        return NodeUpgrade.Facts(binaryVersion: binary, hashes: hashes, node: node.map {
            NodeState(name: "n", ready: ready, kubeletVersion: $0.description, unschedulable: cordoned)
        })
    }

    func testAServerIsReplacedRestartedAndAwaitedNeverDrained() {
        XCTAssertEqual(NodeUpgrade.plan(facts(old, node: old), wanted(.server)),
                       [.uploadBinary, .runInstaller, .restart, .waitReady])
    }

    func testAnAgentIsCordonedAndDrainedBeforeItsRestartAndUncordonedLast() {
        XCTAssertEqual(NodeUpgrade.plan(facts(old, node: old, installer: nil), wanted(.agent)),
                       [.cordon, .drain, .uploadBinary, .uploadInstaller, .runInstaller, .restart, .waitReady, .uncordon])
        XCTAssertEqual(NodeUpgrade.plan(facts(old, node: old), wanted(.agent, drain: false)),
                       [.cordon, .uploadBinary, .runInstaller, .restart, .waitReady, .uncordon])
    }

    func testTheScriptSourceRunsTheInstallerWithoutUploads() {
        XCTAssertEqual(NodeUpgrade.plan(facts(old, node: old), wanted(.server, airgap: false)),
                       [.runInstaller, .restart, .waitReady])
    }

    func testANodeAtTheTargetChangesNothing() {
        XCTAssertEqual(NodeUpgrade.plan(facts(target, node: target), wanted(.agent)), [])
        XCTAssertEqual(NodeUpgrade.plan(facts(target, node: target), wanted(.server)), [])
    }

    func testASwappedBinaryNotYetRunningIsOnlyRestarted() {
        XCTAssertEqual(NodeUpgrade.plan(facts(target, node: old), wanted(.server)), [.restart, .waitReady])
        XCTAssertEqual(NodeUpgrade.plan(facts(target, node: target, ready: false), wanted(.agent)),
                       [.cordon, .drain, .restart, .waitReady, .uncordon])
    }

    func testAnAgentLeftCordonedIsUncordonedOnlyWhenResuming() {
        let f = facts(target, node: target, cordoned: true)
        XCTAssertEqual(NodeUpgrade.plan(f, wanted(.agent)), [])
        XCTAssertEqual(NodeUpgrade.plan(f, wanted(.agent), uncordonLeftover: true), [.uncordon])
    }

    func testNodeStateReadsReadinessVersionAndCordonFromKubectlJSON() throws {
        let json = """
            {"items": [
              {"metadata": {"name": "a1"}, "spec": {"unschedulable": true},
               "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.32.3+k3s1"}}},
              {"metadata": {"name": "a2"}, "spec": {},
               "status": {"conditions": [{"type": "Ready", "status": "Unknown"}], "nodeInfo": {"kubeletVersion": "v1.31.5+k3s1"}}}
            ]}
            """
        let nodes = try XCTUnwrap(NodeState.parse(json))
        XCTAssertEqual(nodes["a1"], NodeState(name: "a1", ready: true, kubeletVersion: "v1.32.3+k3s1", unschedulable: true))
        XCTAssertTrue(nodes["a1"]!.upgraded(to: target))
        XCTAssertFalse(nodes["a2"]!.upgraded(to: old), "not Ready")
        XCTAssertNil(NodeState.parse("error: the server doesn't have a resource type"))
        XCTAssertEqual(NodeState.parse(#"{"metadata": {"name": "s1"}, "status": {}}"#)?["s1"]?.ready, false)
    }

    func testDrainEvictsWithK0sctlsDefaultsAndQuotesTheName() {
        XCTAssertEqual(NodeCommands.drain("a 1", grace: 120, timeout: 300),
                       "/usr/local/bin/k3s kubectl drain 'a 1' --ignore-daemonsets --delete-emptydir-data --force "
                           + "--grace-period=120 --timeout=300s </dev/null")
    }
}

final class DatastoreSnapshotTests: XCTestCase {
    func testThePreUpgradeNameHasNoPlus() {
        XCTAssertEqual(DatastoreSnapshot.preUpgradeName(K3sVersion("v1.32.3+k3s1")!), "fleet-pre-v1.32.3-k3s1")
        XCTAssertTrue(DatastoreSnapshot.validName("fleet-pre-v1.32.3-k3s1"))
        for bad in ["", "-x", "a/b", "a b", "a;b", "ä"] { XCTAssertFalse(DatastoreSnapshot.validName(bad), bad) }
    }

    func testReadsWhereK3sSavedTheSnapshot() {
        let out = """
            time="2026-12-08T01:00:00Z" level=info msg="Saving etcd snapshot to /var/lib/rancher/k3s/server/db/snapshots/fleet-s1-1765155600"
            time="2026-12-08T01:00:00Z" level=info msg="Saving snapshot metadata to /var/lib/rancher/k3s/server/db/.metadata/fleet-s1-1765155600"
            """
        XCTAssertEqual(DatastoreSnapshot.savedPath(out), "/var/lib/rancher/k3s/server/db/snapshots/fleet-s1-1765155600")
        XCTAssertNil(DatastoreSnapshot.savedPath("level=fatal msg=\"etcd database not found in /var/lib/rancher/k3s/server\""))
    }
}
