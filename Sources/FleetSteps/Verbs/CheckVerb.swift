import FleetCore
import Foundation

/// One thing `fleet check` found: an error (`up` would fail) or a warning.
public struct CheckFinding: Sendable, Equatable, Encodable {
    public enum Severity: String, Sendable, Encodable {
        case error, warning
    }

    public var host: String
    public var severity: Severity
    /// A short name for what was checked: `ssh`, `node_ip`, `default_route`, `disk`, …
    public var check: String
    public var message: String
    public var fix: String

    public init(host: String, severity: Severity, check: String, message: String, fix: String) {
        self.host = host
        self.severity = severity
        self.check = check
        self.message = message
        self.fix = fix
    }

    /// `HOST SEVERITY: finding — fix`
    public var line: String {
        "\(host) \(severity.rawValue.uppercased()): \(message)" + (fix.isEmpty ? "" : " — \(fix)")
    }

    public var jsonLine: String { FleetCore.jsonLine(self) }
}

/// What `fleet check` reads from a host beyond the preflight facts.
public struct CheckFacts: Sendable, Equatable {
    public var preflight: PreflightFacts
    /// Kilobytes free on the file system that holds (or will hold) `/var/lib/rancher`.
    public var freeKB: Int?
    /// The directory `df` was asked about (the nearest existing one).
    public var diskPath: String?
    /// `/run/systemd/system` exists.
    public var systemdRunning: Bool
    /// `systemctl` is on PATH.
    public var systemctl: Bool
    /// `rc-service` is on PATH (OpenRC, which K3s also supports).
    public var openrc: Bool
    /// The version `k3s --version` reports, when K3s is installed.
    public var k3sVersion: K3sVersion?
    /// Which uninstall scripts exist: `server` (`k3s-uninstall.sh`), `agent` (`k3s-agent-uninstall.sh`).
    public var installedRoles: [K3sInstall.Role]
    /// Longhorn's node prerequisites, when `check --storage` asked for them.
    public var storage: StorageFacts?

    public init(preflight: PreflightFacts, freeKB: Int? = nil, diskPath: String? = nil, systemdRunning: Bool = true,
                systemctl: Bool = true, openrc: Bool = false, k3sVersion: K3sVersion? = nil,
                installedRoles: [K3sInstall.Role] = [], storage: StorageFacts? = nil) {
        self.preflight = preflight
        self.freeKB = freeKB
        self.diskPath = diskPath
        self.systemdRunning = systemdRunning
        self.systemctl = systemctl
        self.openrc = openrc
        self.k3sVersion = k3sVersion
        self.installedRoles = installedRoles
        self.storage = storage
    }
}

/// `fleet check`: everything `up` would refuse, found without changing anything: a one-step
/// read-only playbook run by the runner on every host, whose action turns facts into findings.
public enum CheckVerb {
    public static let dataDirectory = "/var/lib/rancher"
    /// Below this, an error: K3s's images and containerd alone need more.
    public static let errorFreeKB = 500 * 1024
    /// Below this, a warning.
    public static let warnFreeKB = 2 * 1024 * 1024

    /// The preflight fact script plus disk, init system and installed K3s (and, with `storage`,
    /// Longhorn's prerequisites): one round trip.
    static func script(_ e: PreflightExpectation, storage: Bool = false) -> String {
        var s = Preflight.factScript(e)
        if storage { s.add(StoragePrereqs.factScript) }
        s.add("disk", "d=\(dataDirectory); while [ ! -e \"$d\" ]; do d=$(dirname \"$d\"); done; echo \"$d\"; df -Pk \"$d\" | tail -n 1")
        s.add("init", "test -d /run/systemd/system && echo systemd-running; command -v systemctl >/dev/null && echo systemctl; "
              + "command -v rc-service >/dev/null && echo openrc")
        s.add("k3s", "k=$(command -v k3s || echo \(K3sInstall.binaryPath)); [ -x \"$k\" ] && \"$k\" --version </dev/null | head -n 1")
        s.add("uninstall", "for r in k3s k3s-agent; do [ -e /usr/local/bin/$r-uninstall.sh ] && echo $r; done")
        return s.command
    }

    /// Parses the script's output.
    static func parse(_ output: String, _ e: PreflightExpectation, storage: Bool = false) -> CheckFacts {
        let s = FactScript.sections(output)
        let disk = (s["disk"] ?? "").split(separator: "\n").map(String.init)
        let inits = Set((s["init"] ?? "").split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        let roles = (s["uninstall"] ?? "").split(separator: "\n").compactMap { line -> K3sInstall.Role? in
            switch line.trimmingCharacters(in: .whitespaces) {
            case "k3s": return .server
            case "k3s-agent": return .agent
            default: return nil
            }
        }
        return CheckFacts(preflight: Preflight.parseFacts(output, e),
                          freeKB: disk.count >= 2 ? dfAvailableKB(disk[1]) : nil,
                          diskPath: disk.first,
                          systemdRunning: inits.contains("systemd-running"),
                          systemctl: inits.contains("systemctl"),
                          openrc: inits.contains("openrc"),
                          k3sVersion: K3sVersion(versionOutput: s["k3s"] ?? ""),
                          installedRoles: roles,
                          storage: storage ? StoragePrereqs.parseFacts(output) : nil)
    }

    /// The "Available" column of a `df -Pk` data line
    /// (`/dev/sda1 30830592 9157648 20083804 32% /`).
    public static func dfAvailableKB(_ line: String) -> Int? {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.count >= 6 else { return nil }
        return Int(words[3])  // the mount point may hold spaces; the device does not
    }

    /// Inventory warnings as findings (errors stop `check` before any host is reached).
    public static func inventoryFindings(_ inventory: Inventory) -> [CheckFinding] {
        inventory.warnings.map {
            CheckFinding(host: $0.host ?? "inventory", severity: .warning, check: "inventory",
                         message: ($0.key.map { "key \"\($0)\": " } ?? "") + $0.message,
                         fix: "see the inventory reference in the README")
        }
    }

    public static func inventoryErrorFindings(_ errors: InventoryErrors) -> [CheckFinding] {
        errors.errors.map {
            CheckFinding(host: $0.host ?? "inventory", severity: .error, check: "inventory",
                         message: $0.description, fix: "correct the inventory")
        }
    }

    /// Pure: findings for one host's gathered facts.
    public static func evaluate(host: String, role: HostRole, facts f: CheckFacts, expectation e: PreflightExpectation,
                                k3sVersion want: K3sVersion) -> [CheckFinding] {
        var out: [CheckFinding] = []
        let report = Preflight.evaluate(f.preflight, e)
        for (severity, found) in [(CheckFinding.Severity.error, report.failureFindings), (.warning, report.warningFindings)] {
            out += found.map {
                CheckFinding(host: host, severity: severity, check: $0.check, message: oneLine($0.problem), fix: oneLine($0.fix))
            }
        }

        // Free disk for K3s.
        let where_ = f.diskPath.map { $0 == dataDirectory ? $0 : "\($0) (where \(dataDirectory) will be)" } ?? dataDirectory
        if let free = f.freeKB {
            let fix = "free space on the file system of \(dataDirectory) or give it its own volume"
            if free < errorFreeKB {
                out.append(CheckFinding(host: host, severity: .error, check: "disk",
                                        message: "only \(mib(free)) free on \(where_); K3s needs at least 500 MiB",
                                        fix: fix))
            } else if free < warnFreeKB {
                out.append(CheckFinding(host: host, severity: .warning, check: "disk",
                                        message: "only \(mib(free)) free on \(where_); 2 GiB or more is recommended",
                                        fix: fix))
            }
        } else {
            out.append(CheckFinding(host: host, severity: .warning, check: "disk",
                                    message: "could not read the free space of \(where_) (df -Pk)",
                                    fix: "check that df (coreutils) is installed"))
        }

        // Init system.
        if !(f.systemdRunning || f.systemctl) {
            let what = f.openrc ? "OpenRC found, but fleet's steps drive K3s through systemd"
                                : "no init system K3s supports (no /run/systemd/system, no systemctl)"
            out.append(CheckFinding(host: host, severity: .error, check: "init", message: what,
                                    fix: "run the node on a distribution booted with systemd"))
        }

        // What is installed.
        if let have = f.k3sVersion, have != want {
            out.append(CheckFinding(host: host, severity: .error, check: "k3s_version",
                                    message: "K3s \(have) is installed, the inventory wants \(want): up refuses to change "
                                        + "the version of a node that already runs K3s",
                                    fix: "set k3s_version = \"\(have)\" to keep it; changing versions is fleet upgrade's job"))
        }
        let wantRole: K3sInstall.Role = role == .server ? .server : .agent
        for other in f.installedRoles where other != wantRole {
            out.append(CheckFinding(host: host, severity: .warning, check: "k3s_role",
                                    message: "K3s is installed here as \(other.rawValue), the inventory says \(role.rawValue)",
                                    fix: "run fleet reset --limit \(host) first, or correct the role"))
        }
        if let storage = f.storage { out += storageFindings(host: host, storage) }
        return out
    }

    /// Longhorn's prerequisites: a warning when the storage playbook would install what is missing,
    /// an error when it could not (unknown distribution, no package manager).
    static func storageFindings(host: String, _ facts: StorageFacts) -> [CheckFinding] {
        let plan = StoragePrereqs.plan(facts)
        if plan.isEmpty { return [] }
        let what = "Longhorn prerequisites: " + StoragePrereqs.describe(plan)
        if let problem = plan.problem {
            return [CheckFinding(host: host, severity: .error, check: "storage", message: what, fix: problem)]
        }
        return [CheckFinding(host: host, severity: .warning, check: "storage", message: what,
                             fix: "the storage playbook (fleet up … --playbook playbooks/storage.toml) runs: "
                                + plan.commands.joined(separator: " && "))]
    }

    static func oneLine(_ text: String) -> String { text.replacingOccurrences(of: "\n", with: " ") }

    static func mib(_ kb: Int) -> String {
        kb >= 1024 * 1024 ? String(format: "%.1f GiB", Double(kb) / 1048576) : "\(kb / 1024) MiB"
    }

    public static let stepName = "check"

    /// The one step of `check`'s playbook: gathers the facts in one round trip and hands the host's
    /// findings to `record`. `ok` when nothing is an error (warnings included in the message),
    /// failed naming how many errors otherwise.
    struct HostCheckAction: Action {
        let storage: Bool
        let record: @Sendable (String, [CheckFinding]) -> Void

        func inputs(host: FleetCore.Host, inventory: Inventory) -> Bool { storage }

        func describe(_ vars: TemplateVariables) -> [String] {
            ["gather preflight, disk, init system and installed K3s facts" + (storage ? ", and Longhorn's prerequisites" : "")
                + " (read-only)"]
        }

        func run(_ ctx: TaskContext) throws -> ActionOutcome {
            let found = CheckVerb.findings(ctx.host, inventory: ctx.inventory, connection: ctx.connection,
                                           timeout: ctx.commandTimeout, storage: storage)
            record(ctx.host.name, found)
            let errors = found.filter { $0.severity == .error }.count
            if errors > 0 { throw TaskFailure("\(errors) error(s), \(found.count - errors) warning(s)") }
            return .ok(found.isEmpty ? "ready for up" : "\(found.count) warning(s)")
        }
    }

    /// `check`'s playbook: one read-only step on `hosts`.
    static func playbook(hosts: [FleetCore.Host], storage: Bool,
                         record: @escaping @Sendable (String, [CheckFinding]) -> Void) -> Playbook {
        Playbook(name: "check", path: "check", steps: [
            Step(name: stepName, target: .hosts(hosts.map(\.name)), actionName: "check",
                 action: HostCheckAction(storage: storage, record: record)),
        ])
    }

    /// Checks every host at once (at most `forks`) through the runner; `onHost` is called
    /// (serialised) with each host's findings as it finishes. Returns every finding, in inventory
    /// order. With `storage`, Longhorn's node prerequisites are checked too. A host the runner
    /// could not connect to has one `ssh` error.
    public static func run(inventory: Inventory, hosts: [FleetCore.Host], connector: Connector, forks: Int,
                           storage: Bool = false,
                           onHost: @escaping @Sendable (FleetCore.Host, [CheckFinding]) -> Void = { _, _ in },
                           onRunner: (Runner) -> Void = { _ in }) -> [CheckFinding] {
        let found = Locked<[String: [CheckFinding]]>([:])
        let book = playbook(hosts: hosts, storage: storage) { host, f in found.withLock { $0[host] = f } }
        let byName = Dictionary(uniqueKeysWithValues: hosts.map { ($0.name, $0) })
        let reporter = EachResultReporter { r in
            guard let host = byName[r.host] else { return }
            let mine = found.withLock { all in
                if all[r.host] == nil, r.status != .interrupted {
                    // The action never ran: the runner could not connect or log in.
                    all[r.host] = [CheckFinding(host: r.host, severity: .error, check: "ssh",
                                                message: "cannot connect over SSH: \(r.message)", fix: sshFix(host))]
                }
                return all[r.host] ?? []
            }
            onHost(host, mine)
        }
        _ = PlaybookRun.runReadOnly(inventory: inventory, playbook: book, forks: forks, command: "check",
                                    connector: connector, reporter: reporter, onRunner: onRunner)
        let all = found.withLock { $0 }
        return hosts.flatMap { all[$0.name] ?? [] }
    }

    static func sshFix(_ host: FleetCore.Host) -> String {
        "check the address, port, user and key, and that the host key is in \(host.ssh.knownHosts)"
    }

    /// One host's findings over its connection: `sudo -n`, then the fact script, then `evaluate`.
    static func findings(_ host: FleetCore.Host, inventory: Inventory, connection: Connection, timeout: Double,
                         storage: Bool = false) -> [CheckFinding] {
        let e = PreflightExpectation(host: host, inventory: inventory)
        do {
            if host.ssh.become == .sudo {
                let r = try connection.run("true", stdin: nil, timeout: host.ssh.commandTimeout)
                if !r.succeeded {
                    return [CheckFinding(host: host.name, severity: .error, check: "sudo",
                                         message: "sudo -n true failed (\(r.statusText)): \(r.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))",
                                         fix: "give \(host.ssh.user) passwordless sudo (NOPASSWD)")]
                }
            }
            let r = try connection.run(script(e, storage: storage), stdin: nil, timeout: timeout)
            guard r.succeeded else {
                return [CheckFinding(host: host.name, severity: .error, check: "facts",
                                     message: "gathering facts failed (\(r.statusText))",
                                     fix: "check that the host has a POSIX sh and coreutils")]
            }
            guard let want = K3sVersion(inventory.cluster.k3sVersion) else {
                return [CheckFinding(host: "inventory", severity: .error, check: "k3s_version",
                                     message: "\"\(inventory.cluster.k3sVersion)\" is not a K3s version", fix: "correct the inventory")]
            }
            return evaluate(host: host.name, role: host.role, facts: parse(r.stdoutText, e, storage: storage), expectation: e,
                            k3sVersion: want)
        } catch {
            let text = String(describing: error)
            if text.contains("sudo") {
                return [CheckFinding(host: host.name, severity: .error, check: "sudo", message: text,
                                     fix: "give \(host.ssh.user) passwordless sudo (NOPASSWD)")]
            }
            return [CheckFinding(host: host.name, severity: .error, check: "ssh", message: text, fix: sshFix(host))]
        }
    }
}
