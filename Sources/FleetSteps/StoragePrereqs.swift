import FleetCore
import Foundation

/// What a host has of Longhorn's node prerequisites, gathered in one round trip.
public struct StorageFacts: Sendable, Equatable {
    /// `ID` of /etc/os-release, lowercased (empty when unknown).
    public var osID: String
    /// `ID_LIKE` of /etc/os-release, split into words.
    public var osLike: [String]
    /// `PRETTY_NAME` (for messages), or empty.
    public var prettyName: String
    /// The tools found (names from `StoragePrereqs.tools`).
    public var present: Set<String>
    public var iscsidActive: Bool
    /// Package managers found: `apt-get`, `dnf`, `yum`, `zypper`.
    public var packageManagers: [String]

    public init(osID: String, osLike: [String] = [], prettyName: String = "", present: Set<String>,
                iscsidActive: Bool, packageManagers: [String]) {
        self.osID = osID
        self.osLike = osLike
        self.prettyName = prettyName
        self.present = present
        self.iscsidActive = iscsidActive
        self.packageManagers = packageManagers
    }
}

/// Which distribution family's packages and package manager to use.
public enum DistroFamily: String, Sendable, Equatable {
    case debian, rhel, suse
}

/// What must be done on a host: the missing tools, the packages that provide them, the commands.
public struct StoragePlan: Sendable, Equatable {
    public var family: DistroFamily?
    /// Missing tools, in `StoragePrereqs.tools` order.
    public var missing: [String]
    /// Packages to install (empty when nothing is missing or the distribution is unknown).
    public var packages: [String]
    public var enableIscsid: Bool
    /// Commands to run, in order.
    public var commands: [String]
    /// Set when the missing tools cannot be installed by fleet (unknown distribution, no package manager).
    public var problem: String?

    public var isEmpty: Bool { missing.isEmpty && !enableIscsid }
}

/// Longhorn's node prerequisites: open-iscsi with iscsid running, an NFSv4 client, and the tools it calls.
public enum StoragePrereqs {
    /// The tools checked, in report order. `mount.nfs` stands for the NFSv4 client.
    public static let tools = ["iscsiadm", "mount.nfs", "findmnt", "blkid", "lsblk", "bash", "curl", "grep", "awk"]

    /// The package providing each tool, per family.
    static func package(_ tool: String, _ family: DistroFamily) -> String {
        switch (tool, family) {
        case ("iscsiadm", .debian), ("iscsiadm", .suse): return "open-iscsi"
        case ("iscsiadm", .rhel): return "iscsi-initiator-utils"
        case ("mount.nfs", .debian): return "nfs-common"
        case ("mount.nfs", .rhel): return "nfs-utils"
        case ("mount.nfs", .suse): return "nfs-client"
        case ("findmnt", _), ("blkid", _), ("lsblk", _): return "util-linux"
        case ("awk", _): return "gawk"
        default: return tool
        }
    }

    /// The Debian package names, for messages about a distribution fleet does not know.
    static func genericNames(_ tools: [String]) -> [String] {
        unique(tools.map { package($0, .debian) })
    }

    static func unique(_ items: [String]) -> [String] {
        var seen = Set<String>()
        return items.filter { seen.insert($0).inserted }
    }

    /// The family from os-release's ID, then ID_LIKE; nil when unknown.
    public static func family(id: String, like: [String]) -> DistroFamily? {
        func of(_ word: String) -> DistroFamily? {
            switch word {
            case "debian", "ubuntu", "raspbian", "linuxmint", "pop": return .debian
            case "rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn": return .rhel
            case "suse", "opensuse", "sles", "sled", "sle-micro": return .suse
            default: return word.hasPrefix("opensuse") ? .suse : nil
            }
        }
        if let f = of(id) { return f }
        for word in like { if let f = of(word) { return f } }
        return nil
    }

    /// The install command for a family and the package managers present; nil when none fits.
    static func installCommand(_ family: DistroFamily, _ managers: [String], _ packages: [String]) -> [String]? {
        let list = packages.joined(separator: " ")
        switch family {
        case .debian:
            guard managers.contains("apt-get") else { return nil }
            return ["DEBIAN_FRONTEND=noninteractive apt-get update -q",
                    "DEBIAN_FRONTEND=noninteractive apt-get install -y \(list)"]
        case .rhel:
            if managers.contains("dnf") { return ["dnf install -y \(list)"] }
            if managers.contains("yum") { return ["yum install -y \(list)"] }
            return nil
        case .suse:
            guard managers.contains("zypper") else { return nil }
            return ["zypper --non-interactive install \(list)"]
        }
    }

    static let managerNames: [DistroFamily: String] = [.debian: "apt-get", .rhel: "dnf or yum", .suse: "zypper"]

    /// Facts → what to do. Pure.
    public static func plan(_ facts: StorageFacts) -> StoragePlan {
        let missing = tools.filter { !facts.present.contains($0) }
        let family = Self.family(id: facts.osID, like: facts.osLike)
        var plan = StoragePlan(family: family, missing: missing, packages: [], enableIscsid: !facts.iscsidActive,
                               commands: [], problem: nil)
        if !missing.isEmpty {
            let name = facts.prettyName.isEmpty ? (facts.osID.isEmpty ? "unknown" : facts.osID) : facts.prettyName
            guard let family else {
                let like = facts.osLike.isEmpty ? "" : " (ID_LIKE \(facts.osLike.joined(separator: " ")))"
                plan.problem = "distribution \"\(name)\"\(like) is not one fleet installs packages on "
                    + "(Debian/Ubuntu, RHEL/Fedora/Rocky/Alma, SUSE); install by hand what provides "
                    + missing.joined(separator: ", ") + " (on Debian: " + genericNames(missing).joined(separator: " ")
                    + ") and run iscsid"
                return plan
            }
            plan.packages = unique(missing.map { package($0, family) })
            guard let install = installCommand(family, facts.packageManagers, plan.packages) else {
                plan.problem = "no \(managerNames[family]!) on \(name); install "
                    + plan.packages.joined(separator: " ") + " by hand"
                return plan
            }
            plan.commands += install
        }
        if plan.enableIscsid || missing.contains("iscsiadm") {
            plan.enableIscsid = true
            plan.commands.append("systemctl enable --now iscsid")
        }
        return plan
    }

    /// One round trip: os-release, tools, iscsid, package managers.
    static var factScript: FactScript {
        var s = FactScript()
        s.add("storage-os", "cat /etc/os-release")
        let probe = tools.filter { $0 != "mount.nfs" }.joined(separator: " ")
        s.add("storage-tools", "for t in \(probe); do if command -v $t >/dev/null 2>&1 || [ -x /sbin/$t ] || [ -x /usr/sbin/$t ]; "
            + "then echo $t; fi; done; for t in mount.nfs4 mount.nfs; do if command -v $t >/dev/null 2>&1 || "
            + "[ -x /sbin/$t ] || [ -x /usr/sbin/$t ]; then echo mount.nfs; break; fi; done")
        s.add("storage-iscsid", "systemctl is-active iscsid")
        s.add("storage-pm", "for p in apt-get dnf yum zypper; do if command -v $p >/dev/null 2>&1; then echo $p; fi; done")
        return s
    }

    /// `KEY=value` lines of os-release, quotes removed.
    static func osRelease(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let f = value.first, f == "\"" || f == "'", value.last == f {
                value = String(value.dropFirst().dropLast())
            }
            result[key] = value
        }
        return result
    }

    /// Parses the fact script's output.
    public static func parseFacts(_ output: String) -> StorageFacts {
        let s = FactScript.sections(output)
        let os = osRelease(s["storage-os"] ?? "")
        let words = { (name: String) in (s["storage-" + name] ?? "").split(whereSeparator: \.isWhitespace).map(String.init) }
        return StorageFacts(osID: (os["ID"] ?? "").lowercased(),
                            osLike: (os["ID_LIKE"] ?? "").lowercased().split(separator: " ").map(String.init),
                            prettyName: os["PRETTY_NAME"] ?? "",
                            present: Set(words("tools")),
                            iscsidActive: words("iscsid").first == "active",
                            packageManagers: words("pm"))
    }

    /// What is missing, in one phrase.
    static func describe(_ plan: StoragePlan) -> String {
        var parts: [String] = []
        if !plan.missing.isEmpty {
            let tools = plan.missing.map { $0 == "mount.nfs" ? "mount.nfs4 (NFSv4 client)" : $0 }
            parts.append("missing " + tools.joined(separator: ", ")
                         + (plan.packages.isEmpty ? "" : " (packages " + plan.packages.joined(separator: " ") + ")"))
        }
        if plan.enableIscsid { parts.append("iscsid not active") }
        return parts.joined(separator: "; ")
    }
}

/// `longhorn_prereqs`: checks Longhorn's node prerequisites and installs what is missing.
public struct LonghornPrereqsAction: Action {
    public var install: Bool

    public init(_ p: StepParams) throws {
        install = try p.bool("install") ?? true
    }

    public init(install: Bool = true) {
        self.install = install
    }

    public struct Inputs: Encodable {
        public var install: Bool
    }

    public func inputs(host: FleetCore.Host, inventory: Inventory) -> Inputs { Inputs(install: install) }

    public func describe(_ vars: TemplateVariables) -> [String] {
        ["check Longhorn node prerequisites: " + StoragePrereqs.tools.joined(separator: ", ") + ", iscsid active; "
            + (install ? "install missing packages and enable iscsid" : "report only (install = false)")]
    }

    func gather(_ ctx: TaskContext) throws -> (StorageFacts, CommandResult) {
        let r = try ctx.run(StoragePrereqs.factScript.command)
        guard r.succeeded else { throw TaskFailure("gathering storage facts: \(r.statusText)", result: r) }
        return (StoragePrereqs.parseFacts(r.stdoutText), r)
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        let (facts, r) = try gather(ctx)
        let plan = StoragePrereqs.plan(facts)
        if plan.isEmpty { return .ok("Longhorn prerequisites present; iscsid active") }
        let what = StoragePrereqs.describe(plan)
        if let problem = plan.problem { throw TaskFailure(what + ": " + problem, result: r) }
        guard install else {
            throw TaskFailure(what + "; fix: " + plan.commands.joined(separator: " && ") + " (or set install = true)",
                              result: r)
        }
        for command in plan.commands {
            try ctx.runChecked(command, command)
        }
        let (after, r2) = try gather(ctx)
        let left = StoragePrereqs.plan(after)
        if !left.isEmpty {
            throw TaskFailure("after " + plan.commands.joined(separator: " && ") + ": still "
                              + StoragePrereqs.describe(left), result: r2)
        }
        return .changed(what + " → " + (plan.packages.isEmpty ? "" : "installed " + plan.packages.joined(separator: " ") + "; ")
                        + "iscsid active")
    }
}
