import FleetCore
import Foundation

/// Files taken from `[k3s] airgap_dir` (hashed and read through `LocalFile`: the binary is ~70 MB).
public enum AirgapFiles {
    /// Image tarballs K3s imports at start (`k3s-airgap-images-<arch>.tar.zst`, `.tar.gz`, `.tar`).
    public static func images(in directory: String?) -> [String] {
        guard let directory, let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return names.filter { name in
            name.hasPrefix("k3s-airgap-images-") && [".tar.zst", ".tar.gz", ".tar"].contains { name.hasSuffix($0) }
        }.sorted()
    }
}

/// Installing K3s as a server or an agent, the same way: facts → plan → apply → wait.
public enum K3sInstall {
    public static let binaryPath = "/usr/local/bin/k3s"
    public static let installerPath = "/var/lib/rancher/fleet/install.sh"
    public static let imagesDirectory = "/var/lib/rancher/k3s/agent/images"
    public static let scriptURL = "https://get.k3s.io"

    public enum Role: String, Sendable {
        case server, agent

        /// The systemd unit the installer writes.
        public var service: String { self == .server ? "k3s" : "k3s-agent" }
    }

    /// What is on the host now.
    public struct Facts: Sendable, Equatable {
        /// `k3s --version`'s version word, e.g. `v1.31.5+k3s1`.
        public var version: String?
        /// Remote path → SHA-256, for the files that exist.
        public var hashes: [String: String]
        public var configMode: Int?
        public var unitPresent: Bool
        /// systemd's ActiveState and SubState, and NRestarts.
        public var activeState: String
        public var subState: String
        public var restarts: Int
        /// The agent's token file already holds this token.
        public var tokenCurrent: Bool

        public init(version: String? = nil, hashes: [String: String] = [:], configMode: Int? = nil,
                    unitPresent: Bool = false, activeState: String = "inactive", subState: String = "dead",
                    restarts: Int = 0, tokenCurrent: Bool = false) {
            self.version = version
            self.hashes = hashes
            self.configMode = configMode
            self.unitPresent = unitPresent
            self.activeState = activeState
            self.subState = subState
            self.restarts = restarts
            self.tokenCurrent = tokenCurrent
        }

        /// Running or trying to: a change needs a restart rather than a start.
        public var running: Bool { ["active", "activating", "reloading", "deactivating"].contains(activeState) }
    }

    /// What the host should have.
    public struct Wanted: Sendable, Equatable {
        public var role: Role
        public var source: K3sSource
        public var version: String
        /// Airgap: SHA-256 of the local `k3s` and `install.sh`.
        public var binarySHA: String?
        public var installerSHA: String?
        /// Airgap: remote path → SHA-256 of each images tarball.
        public var images: [String: String]
        public var configSHA: String
        /// Agents: a token file to write.
        public var token: Bool

        public init(role: Role, source: K3sSource, version: String, binarySHA: String? = nil,
                    installerSHA: String? = nil, images: [String: String] = [:], configSHA: String, token: Bool = false) {
            self.role = role
            self.source = source
            self.version = version
            self.binarySHA = binarySHA
            self.installerSHA = installerSHA
            self.images = images
            self.configSHA = configSHA
            self.token = token
        }
    }

    public enum Change: Sendable, Equatable, CustomStringConvertible {
        case uploadBinary, uploadInstaller, uploadImage(String), writeConfig, writeToken, runInstaller, restart, start

        public var description: String {
            switch self {
            case .uploadBinary: return "upload k3s"
            case .uploadInstaller: return "upload install.sh"
            case .uploadImage(let p): return "upload \((p as NSString).lastPathComponent)"
            case .writeConfig: return "write config.yaml"
            case .writeToken: return "write the token file"
            case .runInstaller: return "run the installer"
            case .restart: return "restart"
            case .start: return "start"
            }
        }
    }

    /// Pure: what to do to get from `facts` to `wanted`; empty when nothing.
    public static func plan(_ f: Facts, _ w: Wanted) -> [Change] {
        var changes: [Change] = []
        var restartNeeded = false
        if w.source == .airgap {
            if let sha = w.binarySHA, f.hashes[binaryPath] != sha {
                changes.append(.uploadBinary)
                restartNeeded = true
            }
            if let sha = w.installerSHA, f.hashes[installerPath] != sha { changes.append(.uploadInstaller) }
            for (path, sha) in w.images.sorted(by: { $0.key < $1.key }) where f.hashes[path] != sha {
                changes.append(.uploadImage(path))
                restartNeeded = true
            }
        }
        if f.hashes[K3sConfigFile.path] != w.configSHA || f.configMode != 0o600 {
            changes.append(.writeConfig)
            restartNeeded = true
        }
        if w.token, !f.tokenCurrent {
            changes.append(.writeToken)
            restartNeeded = true
        }
        let versionDiffers = w.source == .script && f.version != w.version
        if !f.unitPresent || changes.contains(.uploadBinary) || versionDiffers {
            changes.append(.runInstaller)
            restartNeeded = true
        }
        if f.running {
            if restartNeeded || f.subState == "auto-restart" { changes.append(.restart) }
        } else {
            changes.append(.start)
        }
        return changes
    }

    /// The version word of `k3s --version`'s first line (`k3s version v1.31.5+k3s1 (abc)`).
    public static func parseVersion(_ text: String) -> String? {
        let words = (text.split(separator: "\n").first ?? "").split(separator: " ")
        guard words.count >= 3, words[0] == "k3s", words[1] == "version" else { return nil }
        return String(words[2])
    }

    /// `sha256sum` output → path → hash.
    static func parseHashes(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { continue }
            var path = parts[1].trimmingCharacters(in: .whitespaces)
            if path.hasPrefix("*") { path.removeFirst() }
            out[path] = String(parts[0])
        }
        return out
    }

    /// `systemctl show -p …` output → key → value.
    static func parseShow(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if kv.count == 2 { out[String(kv[0])] = String(kv[1]) }
        }
        return out
    }

    /// Lines of `journalctl -u` without the "no entries" notice.
    static func logLines(_ text: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { $0 != "-- No entries --" }
    }

    static func showCommand(_ role: Role) -> String {
        "systemctl show -p ActiveState -p SubState -p NRestarts \(role.service)"
    }

    static func journalCommand(_ role: Role) -> String {
        "journalctl -u \(role.service) --no-pager -o cat"
    }

    /// One round trip for every fact. The token (agents) is compared over stdin, first, so that
    /// nothing else in the script can read it.
    static func factScript(_ w: Wanted, paths: [String]) -> FactScript {
        var s = FactScript()
        if w.token { s.add("token", "cmp -s - \(shellQuote(K3sConfigFile.tokenPath)) && echo same") }
        s.add("version", "\(binaryPath) --version </dev/null | head -n 1")
        s.add("sha", "sha256sum -- " + paths.map(shellQuote).joined(separator: " "))
        s.add("mode", "stat -c %a -- \(shellQuote(K3sConfigFile.path))")
        s.add("unit", "test -f /etc/systemd/system/\(w.role.service).service && echo yes")
        s.add("show", showCommand(w.role))
        return s
    }

    static func parseFacts(_ output: String) -> Facts {
        let s = FactScript.sections(output)
        let show = parseShow(s["show"] ?? "")
        return Facts(
            version: parseVersion(s["version"] ?? ""),
            hashes: parseHashes(s["sha"] ?? ""),
            configMode: Int((s["mode"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines), radix: 8),
            unitPresent: (s["unit"] ?? "").contains("yes"),
            activeState: show["ActiveState"] ?? "inactive",
            subState: show["SubState"] ?? "dead",
            restarts: Int(show["NRestarts"] ?? "") ?? 0,
            tokenCurrent: (s["token"] ?? "").contains("same"))
    }

    /// The installer's environment: never a token (K3s reads it from config.yaml's token-file).
    static func installerEnvironment(_ role: Role, version: String, airgap: Bool) -> String {
        var env = [
            "INSTALL_K3S_SKIP_START=true",
            "INSTALL_K3S_VERSION=\(shellQuote(version))",
        ]
        if airgap {
            env.insert("INSTALL_K3S_SKIP_DOWNLOAD=true", at: 0)
            env.append("INSTALL_K3S_EXEC=\(role.rawValue)")
        }
        return env.joined(separator: " ")
    }

    /// Starts the service without waiting for it (a wrong token must not hang the task), and prints
    /// how many lines its log had before, so that only what the new process logs is read. A
    /// restart stops first (blocking), so the old process cannot log after that count.
    public static func startCommand(_ role: Role, stopFirst: Bool) -> String {
        let svc = role.service
        return (stopFirst ? "systemctl stop \(svc) >/dev/null 2>&1; " : "")
            + "n=$(\(journalCommand(role)) 2>/dev/null | grep -vc '^-- No entries --$'); "
            + "systemctl reset-failed \(svc) >/dev/null 2>&1; "
            + "systemctl start --no-block \(svc) && echo \"$n\""
    }

    /// The command that runs the installer. With `script`, the official installer is downloaded
    /// to a file first, so that a failed download fails the task (a pipe into sh would hide it).
    public static func installerCommand(_ role: Role, source: K3sSource, version: String) -> String {
        switch source {
        case .airgap:
            return "\(installerEnvironment(role, version: version, airgap: true)) sh \(installerPath)"
        case .script:
            let dir = (installerPath as NSString).deletingLastPathComponent
            return "mkdir -p \(dir) && curl -sfL --retry 3 -o \(installerPath) \(scriptURL) && "
                + "\(installerEnvironment(role, version: version, airgap: false)) sh \(installerPath) \(role.rawValue)"
        }
    }

    /// Everything one host's K3s needs: config text, local files, the token.
    struct Job {
        var role: Role
        var inventory: Inventory
        var config: String
        var token: Secret?
        /// How long to wait for the service to be ready.
        var wait: Double

        var source: K3sSource { inventory.k3s.source }
        var version: String { inventory.cluster.k3sVersion }

        func localPath(_ name: String) -> String {
            ((inventory.k3s.airgapDir ?? "") as NSString).appendingPathComponent(name)
        }

        func wanted() throws -> Wanted {
            var w = Wanted(role: role, source: source, version: version,
                           configSHA: sha256Hex(Data(config.utf8)), token: token != nil)
            if source == .airgap {
                guard inventory.k3s.airgapDir != nil else {
                    throw TaskFailure("[k3s] source = \"airgap\" needs airgap_dir")
                }
                w.binarySHA = try LocalFile.sha256(of: localPath("k3s"))
                w.installerSHA = try LocalFile.sha256(of: localPath("install.sh"))
                for name in AirgapFiles.images(in: inventory.k3s.airgapDir) {
                    w.images[(imagesDirectory as NSString).appendingPathComponent(name)] = try LocalFile.sha256(of: localPath(name))
                }
            }
            return w
        }
    }

    /// Runs the whole install on one host. `ok` when nothing had to change.
    static func run(_ job: Job, _ ctx: TaskContext) throws -> ActionOutcome {
        let w = try job.wanted()
        let paths = [binaryPath, installerPath, K3sConfigFile.path] + w.images.keys.sorted()
        let tokenData = job.token.map { Data($0.reveal().utf8) }
        let r = try ctx.run(factScript(w, paths: paths).command, stdin: tokenData ?? Data())
        guard r.succeeded else { throw TaskFailure("gathering facts: \(r.statusText)", result: r) }
        let facts = parseFacts(r.stdoutText)

        if job.source == .airgap, facts.hashes[binaryPath] == w.binarySHA, let v = facts.version, v != w.version {
            throw TaskFailure(versionMismatch(v, w.version, job))
        }
        let changes = plan(facts, w)
        if changes.isEmpty {
            return .ok("k3s \(facts.version ?? job.version) \(job.role.rawValue) active, config unchanged")
        }

        var logStart = 0
        for change in changes {
            switch change {
            case .uploadBinary:
                let staged = binaryPath + ".fleet-new"
                try ctx.upload(try LocalFile.contents(of: job.localPath("k3s")), to: staged, mode: 0o755)
                let v = try ctx.runChecked("\(staged) --version </dev/null | head -n 1", "running the uploaded k3s")
                let got = parseVersion(v.stdoutText)
                guard got == w.version else {
                    _ = try? ctx.run("rm -f \(staged)")
                    throw TaskFailure(versionMismatch(got ?? "an unknown version", w.version, job), result: v)
                }
                try ctx.runChecked("mv -f \(staged) \(binaryPath)", "installing the k3s binary")
            case .uploadInstaller:
                try ctx.upload(try LocalFile.contents(of: job.localPath("install.sh")), to: installerPath, mode: 0o755)
            case .uploadImage(let path):
                let name = (path as NSString).lastPathComponent
                try ctx.upload(try LocalFile.contents(of: job.localPath(name)), to: path, mode: 0o644)
            case .writeConfig:
                try ctx.upload(Data(job.config.utf8), to: K3sConfigFile.path, mode: 0o600)
            case .writeToken:
                guard let tokenData else { break }
                try ctx.upload(tokenData, to: K3sConfigFile.tokenPath, mode: 0o600)
            case .runInstaller:
                try ctx.runChecked(installerCommand(job.role, source: job.source, version: job.version),
                                   "the K3s installer failed")
            case .restart, .start:
                let r = try ctx.runChecked(startCommand(job.role, stopFirst: change == .restart),
                                           "\(change == .restart ? "restarting" : "starting") \(job.role.service)")
                logStart = Int(r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            }
        }
        let waited = try waitReady(job, ctx, since: facts, logStart: logStart)
        return .changed(changes.map(\.description).joined(separator: ", ") + "; " + waited)
    }

    static func versionMismatch(_ got: String, _ want: String, _ job: Job) -> String {
        "the k3s in \(job.inventory.k3s.airgapDir ?? "airgap_dir") is \(got), but [cluster] k3s_version is \(want): "
            + "put the \(want) binary there or change k3s_version"
    }

    /// Polls until the service is ready: a server's token exists and its API says ok; an agent
    /// is active and its log says it registered. Fails fast on a refused token or a crash loop.
    static func waitReady(_ job: Job, _ ctx: TaskContext, since before: Facts, logStart: Int) throws -> String {
        let start = Date()
        var s = FactScript()
        s.add("show", showCommand(job.role))
        s.add("log", "\(journalCommand(job.role)) | tail -n +\(logStart + 1) | tail -n 400")
        if job.role == .server {
            s.add("token", "test -s /var/lib/rancher/k3s/server/node-token && echo yes")
            s.add("readyz", "\(binaryPath) kubectl get --raw /readyz </dev/null")
        }
        let command = s.command
        var lastSeen = "no answer yet"
        while true {
            let r = try ctx.run(command, timeout: 30)
            let sec = FactScript.sections(r.stdoutText)
            let show = parseShow(sec["show"] ?? "")
            let active = show["ActiveState"] ?? "unknown"
            let sub = show["SubState"] ?? ""
            let restarts = Int(show["NRestarts"] ?? "") ?? 0
            let lines = logLines(sec["log"] ?? "")
            let elapsed = Date().timeIntervalSince(start)

            switch job.role {
            case .agent:
                let state = K3sLog.agentState(lines)
                if case .refused(let why) = state { throw TaskFailure(why, result: r) }
                if active == "active", state == .registered {
                    return "agent registered with \(job.inventory.registrationURL) in \(String(format: "%.1f", elapsed)) s"
                }
                if case .waiting(let last?) = state { lastSeen = last }
            case .server:
                let token = (sec["token"] ?? "").contains("yes")
                let ready = (sec["readyz"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines) == "ok"
                if active == "active", token, ready {
                    return "token present and /readyz ok in \(String(format: "%.1f", elapsed)) s"
                }
                lastSeen = "service \(active)\(sub.isEmpty ? "" : " (\(sub))"), token \(token ? "present" : "missing"), /readyz "
                    + (ready ? "ok" : "not ok")
            }
            if active == "failed" || sub == "auto-restart" || restarts > before.restarts {
                let why = K3sLog.lastError(lines) ?? "no error in its log"
                throw TaskFailure("\(job.role.service) keeps failing (\(active)\(sub.isEmpty ? "" : "/\(sub)")): \(why)", result: r)
            }
            if elapsed + 1 > job.wait || ctx.cancelled {
                throw TaskFailure("\(job.role.service) not ready after \(Int(elapsed)) s: \(lastSeen)", result: r)
            }
            Thread.sleep(forTimeInterval: job.role == .agent ? 1 : 2)
        }
    }
}
