import FleetCore
@testable import FleetSteps
import FleetTestSupport
import Foundation
import XCTest

final class StoragePrereqsTests: XCTestCase {
    static let allTools = Set(StoragePrereqs.tools)

    func facts(_ id: String, like: [String] = [], missing: [String] = [], iscsid: Bool = true,
               managers: [String]) -> StorageFacts {
        StorageFacts(osID: id, osLike: like, present: Self.allTools.subtracting(missing), iscsidActive: iscsid,
                     packageManagers: managers)
    }

    func testDebianInstallsWithAptGet() {
        let p = StoragePrereqs.plan(facts("debian", missing: ["iscsiadm", "mount.nfs", "lsblk", "curl"], iscsid: false,
                                          managers: ["apt-get"]))
        XCTAssertEqual(p.family, .debian)
        XCTAssertEqual(p.missing, ["iscsiadm", "mount.nfs", "lsblk", "curl"])
        XCTAssertEqual(p.packages, ["open-iscsi", "nfs-common", "util-linux", "curl"])
        XCTAssertNil(p.problem)
        XCTAssertEqual(p.commands, [
            "DEBIAN_FRONTEND=noninteractive apt-get update -q",
            "DEBIAN_FRONTEND=noninteractive apt-get install -y open-iscsi nfs-common util-linux curl",
            "systemctl enable --now iscsid",
        ])
    }

    func testUbuntuIsKnownThroughIDLike() {
        let p = StoragePrereqs.plan(facts("pop", like: ["ubuntu", "debian"], missing: ["mount.nfs"], managers: ["apt-get"]))
        XCTAssertEqual(p.family, .debian)
        XCTAssertEqual(p.packages, ["nfs-common"])
        XCTAssertEqual(p.commands.last, "DEBIAN_FRONTEND=noninteractive apt-get install -y nfs-common")
        XCTAssertFalse(p.enableIscsid)

        let ubuntu = StoragePrereqs.plan(facts("ubuntu", like: ["debian"], missing: ["awk"], managers: ["apt-get"]))
        XCTAssertEqual(ubuntu.packages, ["gawk"])
    }

    func testRockyUsesDnfAndRedHatNames() {
        let f = StoragePrereqs.parseFacts("""
            @@fleet-fact:storage-os
            NAME="Rocky Linux"
            ID="rocky"
            ID_LIKE="rhel centos fedora"
            PRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"
            @@fleet-fact:storage-tools
            findmnt
            blkid
            lsblk
            bash
            curl
            grep
            awk
            @@fleet-fact:storage-iscsid
            inactive
            @@fleet-fact:storage-pm
            dnf
            yum
            """)
        XCTAssertEqual(f.osID, "rocky")
        XCTAssertEqual(f.osLike, ["rhel", "centos", "fedora"])
        XCTAssertFalse(f.iscsidActive)
        let p = StoragePrereqs.plan(f)
        XCTAssertEqual(p.family, .rhel)
        XCTAssertEqual(p.packages, ["iscsi-initiator-utils", "nfs-utils"])
        XCTAssertEqual(p.commands, ["dnf install -y iscsi-initiator-utils nfs-utils", "systemctl enable --now iscsid"])

        let old = StoragePrereqs.plan(facts("centos", like: ["rhel", "fedora"], missing: ["mount.nfs"], managers: ["yum"]))
        XCTAssertEqual(old.commands, ["yum install -y nfs-utils"])
        XCTAssertEqual(StoragePrereqs.family(id: "almalinux", like: ["rhel", "centos", "fedora"]), .rhel)
        XCTAssertEqual(StoragePrereqs.family(id: "fedora", like: []), .rhel)
    }

    func testOpenSUSEUsesZypper() {
        let p = StoragePrereqs.plan(facts("opensuse-leap", like: ["suse", "opensuse"], missing: ["iscsiadm", "mount.nfs"],
                                          iscsid: false, managers: ["zypper"]))
        XCTAssertEqual(p.family, .suse)
        XCTAssertEqual(p.commands, ["zypper --non-interactive install open-iscsi nfs-client", "systemctl enable --now iscsid"])
        XCTAssertEqual(StoragePrereqs.family(id: "opensuse-tumbleweed", like: []), .suse)
        XCTAssertEqual(StoragePrereqs.family(id: "sles", like: []), .suse)
    }

    func testAnUnknownDistributionIsNamedWithWhatIsNeeded() {
        var f = facts("alpine", missing: ["iscsiadm", "mount.nfs", "findmnt"], managers: [])
        f.prettyName = "Alpine Linux v3.20"
        let p = StoragePrereqs.plan(f)
        XCTAssertNil(p.family)
        XCTAssertEqual(p.packages, [])
        let problem = try? XCTUnwrap(p.problem)
        XCTAssertTrue(problem?.contains("\"Alpine Linux v3.20\"") ?? false, problem ?? "")
        XCTAssertTrue(problem?.contains("iscsiadm, mount.nfs, findmnt") ?? false, problem ?? "")
        XCTAssertTrue(problem?.contains("open-iscsi nfs-common util-linux") ?? false, problem ?? "")
        XCTAssertFalse(p.commands.contains { $0.contains("install") })

        // Nothing to install: an unknown distribution is fine.
        XCTAssertTrue(StoragePrereqs.plan(facts("alpine", managers: [])).isEmpty)
    }

    func testAKnownDistributionWithoutItsPackageManagerFails() {
        let p = StoragePrereqs.plan(facts("debian", missing: ["curl"], managers: []))
        XCTAssertTrue(p.problem?.contains("no apt-get") ?? false, p.problem ?? "nil")
    }

    func testAllPresentMeansNoCommands() {
        let p = StoragePrereqs.plan(facts("debian", managers: ["apt-get"]))
        XCTAssertTrue(p.isEmpty)
        XCTAssertEqual(p.commands, [])
        XCTAssertNil(p.problem)
    }

    func testAnInactiveIscsidOnlyNeedsEnabling() {
        let p = StoragePrereqs.plan(facts("ubuntu", like: ["debian"], iscsid: false, managers: ["apt-get"]))
        XCTAssertEqual(p.packages, [])
        XCTAssertEqual(p.commands, ["systemctl enable --now iscsid"])
    }

    func testParsesMissingSectionsAsNothingPresent() {
        let f = StoragePrereqs.parseFacts("@@fleet-fact:storage-os\nID=debian\n@@fleet-fact:storage-tools\n@@fleet-fact:storage-iscsid\n"
                                          + "@@fleet-fact:storage-pm\napt-get\n")
        XCTAssertEqual(f.present, [])
        XCTAssertEqual(f.packageManagers, ["apt-get"])
        XCTAssertEqual(StoragePrereqs.plan(f).packages,
                       ["open-iscsi", "nfs-common", "util-linux", "bash", "curl", "grep", "gawk"])
    }

    /// The fact script only reads; run it with this machine's sh to catch shell mistakes.
    func testTheFactScriptRunsUnderSh() throws {
        let r = LocalCommand.run(["/bin/sh", "-c", StoragePrereqs.factScript.command])
        XCTAssertEqual(r.status, 0)
        let text = r.stdoutText
        for name in ["storage-os", "storage-tools", "storage-iscsid", "storage-pm"] { XCTAssertTrue(text.contains("@@fleet-fact:\(name)\n"), text) }
        let f = StoragePrereqs.parseFacts(text)
        XCTAssertTrue(f.present.contains("sh") || f.present.contains("grep"), text)
        XCTAssertFalse(f.present.contains("mount.nfs4"), "reported as mount.nfs")
    }

    // MARK: Running on a fake host

    static let debianOS = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n"

    func factOutput(tools: [String], iscsid: String) -> String {
        "@@fleet-fact:storage-os\n\(Self.debianOS)@@fleet-fact:storage-tools\n" + tools.map { $0 + "\n" }.joined()
            + "@@fleet-fact:storage-iscsid\n\(iscsid)\n@@fleet-fact:storage-pm\napt-get\n"
    }

    func run(_ fleet: FakeFleet, install: Bool) throws -> [TaskResult] {
        let book = try Fixtures.playbook("""
            [[steps]]
            name = "longhorn-prereqs"
            action = "longhorn_prereqs"
            target = "all"
            install = \(install)
            """, registry: K3sActions.registry)
        let inventory = Fixtures.inventory([("s1", .server)])
        let runner = Runner(inventory: inventory, tasks: Planner.tasks(inventory: inventory, playbook: book), connector: fleet,
                            options: RunOptions(forks: 1), reporter: RecordingReporter(), state: nil, redactor: Redactor())
        return runner.run().results
    }

    func testReportOnlyFailsListingWhatIsMissingAndTheFix() throws {
        let fleet = FakeFleet()
        fleet["s1"].on(contains: "@@fleet-fact:storage-tools",
                       stdout: factOutput(tools: ["findmnt", "blkid", "lsblk", "bash", "curl", "grep", "awk"], iscsid: "inactive"))
        let results = try run(fleet, install: false)
        XCTAssertEqual(results.map(\.status), [.failed])
        let m = results[0].message
        XCTAssertTrue(m.contains("missing iscsiadm, mount.nfs4 (NFSv4 client)"), m)
        XCTAssertTrue(m.contains("open-iscsi nfs-common"), m)
        XCTAssertTrue(m.contains("iscsid not active"), m)
        XCTAssertTrue(m.contains("apt-get install -y open-iscsi nfs-common && systemctl enable --now iscsid"), m)
        XCTAssertFalse(fleet.allCommands.contains { $0.contains("apt-get install") }, "report only: nothing installed")
    }

    func testAllPresentIsOk() throws {
        let fleet = FakeFleet()
        fleet["s1"].on(contains: "@@fleet-fact:storage-tools", stdout: factOutput(tools: StoragePrereqs.tools, iscsid: "active"))
        let results = try run(fleet, install: true)
        XCTAssertEqual(results.map(\.status), [.ok], results.map(\.message).joined())
        XCTAssertEqual(fleet.allCommands.count, 1, "one round trip, nothing installed")
    }

    func testInstallsThenChecksAgain() throws {
        let fleet = FakeFleet()
        let state = InstallState()
        let after = factOutput(tools: StoragePrereqs.tools, iscsid: "active")
        let before = factOutput(tools: ["findmnt", "blkid", "lsblk", "bash", "curl", "grep", "awk"], iscsid: "inactive")
        fleet["s1"].on(.contains("@@fleet-fact:storage-tools")) { _ in .success(state.installed ? after : before) }
        fleet["s1"].on(.contains("apt-get install")) { _ in state.installed = true; return .success() }
        fleet["s1"].on(.contains("apt-get update")) { _ in .success() }
        fleet["s1"].on(.contains("systemctl enable --now iscsid")) { _ in .success() }
        let results = try run(fleet, install: true)
        XCTAssertEqual(results.map(\.status), [.changed], results.map(\.message).joined())
        let commands = fleet.allCommands.filter { !$0.contains("@@fleet-fact") }
        XCTAssertEqual(commands, [
            "DEBIAN_FRONTEND=noninteractive apt-get update -q",
            "DEBIAN_FRONTEND=noninteractive apt-get install -y open-iscsi nfs-common",
            "systemctl enable --now iscsid",
        ])
    }

    func testThePlaybookLoads() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("playbooks/storage.toml").path
        let book = try Playbook.load(path: path, registry: K3sActions.registry)
        XCTAssertEqual(book.steps.map(\.name), ["longhorn-prereqs", "storage-addons", "storage-verify"])
        XCTAssertEqual(book.steps.map(\.actionName), ["longhorn_prereqs", "k3s_addons", "k3s_verify"])
        XCTAssertEqual(book.step(named: "storage-addons")?.after, ["longhorn-prereqs"], "charts after the prerequisites")
        for step in book.steps { XCTAssertFalse(step.description.isEmpty, step.name) }
    }
}

final class InstallState: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var installed: Bool {
        get { lock.lock(); defer { lock.unlock() }; return value }
        set { lock.lock(); value = newValue; lock.unlock() }
    }
}
