import FleetCore
import Foundation

extension K3sInstall {
    /// What is on the host now.
    public struct Facts: Sendable, Equatable {
        /// The version `k3s --version` reports; nil when K3s is not installed.
        public var version: K3sVersion?
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

        public init(version: K3sVersion? = nil, hashes: [String: String] = [:], configMode: Int? = nil,
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
            version: K3sVersion(versionOutput: s["version"] ?? ""),
            hashes: parseHashes(s["sha"] ?? ""),
            configMode: Int((s["mode"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines), radix: 8),
            unitPresent: (s["unit"] ?? "").contains("yes"),
            activeState: show["ActiveState"] ?? "inactive",
            subState: show["SubState"] ?? "dead",
            restarts: Int(show["NRestarts"] ?? "") ?? 0,
            tokenCurrent: (s["token"] ?? "").contains("same"))
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

    static func showCommand(_ role: Role) -> String {
        "systemctl show -p ActiveState -p SubState -p NRestarts \(role.service)"
    }
}
