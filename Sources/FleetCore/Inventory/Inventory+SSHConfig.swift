import Foundation

extension SSHSettings {
    /// The connection keys whose origin is recorded (`origins`); `address` is a host's too.
    static let trackedKeys = ["user", "port", "identity", "known_hosts", "host_key_policy", "connect_timeout", "jump"]

    /// One line saying where each connection setting came from, for `fleet check`:
    /// `address fd00::1 ([[hosts]]), user root ([ssh]), port 22 (default), …`.
    public func originsLine(address: String) -> String {
        func from(_ key: String) -> String { origins[key] ?? "default" }
        var parts = [
            "address \(address) (\(from("address")))",
            "user \(user) (\(from("user")))",
            "port \(port) (\(from("port")))",
            "identity \(identity ?? "ssh-agent or ~/.ssh/id_ed25519, id_ecdsa") (\(from("identity")))",
            "known_hosts \(knownHosts) (\(from("known_hosts")))",
            "host_key_policy \(hostKeyPolicy.rawValue) (\(from("host_key_policy")))",
            "connect_timeout \(connectTimeout == connectTimeout.rounded() ? String(Int(connectTimeout)) : String(connectTimeout)) s (\(from("connect_timeout")))",
        ]
        let hops = jumpHops.map(\.description).joined(separator: ", ")
        parts.append("jump \(hops.isEmpty ? "none" : hops) (\(from("jump")))")
        return parts.joined(separator: ", ")
    }
}

extension InventoryReader {
    // MARK: - [ssh] config: the OpenSSH client config

    /// `config = "FILE"` or `"none"`; unset: `defaultSSHConfig` when that file exists.
    mutating func readSSHConfigChoice(_ context: InventoryTable) -> Bool {
        var file: String?
        var named = false
        if let raw = context.table["config"]?.string, raw == "none" {
            file = nil
        } else {
            switch path(context, "config") {
            case .missing:
                if let fallback = defaultSSHConfig, FileManager.default.fileExists(atPath: fallback) { file = fallback }
            case .invalid: return false
            case .present(let given):
                file = given
                named = true
            }
        }
        guard let file else { return true }
        if named && !FileManager.default.fileExists(atPath: file) {
            fail(context, "config", "\(InventorySyntax.tomlQuoted(file)): no such file (write config = \"none\" to read no ssh config)")
            return false
        }
        do {
            sshConfig = try SSHConfig.load(path: file)
            return true
        } catch {
            fail(context, "config", "ssh config \(error)")
            return false
        }
    }

    /// Fills what the inventory leaves unset from the ssh config's settings for each host's address
    /// (the name ssh would be given), and each jump hop's from the settings for the hop's host.
    /// Runs as the entry is read, before the modules' host keys (which see the resolved address).
    mutating func applySSHConfig(to entry: inout HostEntry) {
        guard let config = sshConfig else { return }
        do {
            guard var settings = entry.ssh, let alias = entry.address else { return }
            let context = entry.table
            let found = config.settings(for: alias)
            var address = alias
            if let v = found["hostname"] {
                let name = Self.expandPercent(v.text, host: alias)
                let bare = name.hasPrefix("[") && name.hasSuffix("]") ? String(name.dropFirst().dropLast()) : name
                switch InventorySyntax.classifyAddress(bare) {
                case .success(let kind):
                    address = bare
                    entry.addressKind = kind
                    settings.origins["address"] = "ssh config \(v.origin), HostName for \(alias)"
                case .failure(let problem):
                    fail(context, "address", "ssh config \(v.origin): HostName \"\(name)\" \(problem.reason)")
                }
            }
            fill(&settings, from: found, config: config, context: context, alias: alias)
            // Each hop: what it leaves unset, from the config's settings for its own host name.
            for h in settings.jump.indices {
                let hop = settings.jump[h]
                let hopFound = config.settings(for: hop.host)
                if let v = hopFound["hostname"] {
                    let name = Self.expandPercent(v.text, host: hop.host)
                    settings.jump[h].host = name.hasPrefix("[") && name.hasSuffix("]") ? String(name.dropFirst().dropLast()) : name
                }
                if hop.user == nil, let v = hopFound["user"], InventorySyntax.userNameProblem(v.text) == nil { settings.jump[h].user = v.text }
                if hop.port == nil, let v = hopFound["port"], let p = Int(v.text), (1...65535).contains(p) { settings.jump[h].port = p }
                if hop.identity == nil, let v = hopFound["identityfile"],
                   FileManager.default.fileExists(atPath: Self.configPath(v, host: hop.host)) {
                    settings.jump[h].identity = Self.configPath(v, host: hop.host)
                }
                if hop.knownHosts == nil, let v = hopFound["userknownhostsfile"] { settings.jump[h].knownHosts = Self.configPath(v, host: hop.host) }
                if hop.hostKeyPolicy == nil, let v = hopFound["stricthostkeychecking"], let p = Self.policy(v.text) {
                    settings.jump[h].hostKeyPolicy = p
                }
            }
            entry.address = address
            entry.ssh = settings
        }
    }

    private mutating func fill(_ s: inout SSHSettings, from found: [String: SSHConfig.Value], config: SSHConfig,
                               context: InventoryTable, alias: String) {
        func take(_ key: String, _ keyword: String) -> SSHConfig.Value? {
            guard s.origins[key] == nil, let v = found[keyword] else { return nil }
            return v
        }
        func mark(_ key: String, _ v: SSHConfig.Value, _ keyword: String) { s.origins[key] = "ssh config \(v.origin), \(keyword)" }
        if let v = take("user", "user") {
            let user = Self.expandPercent(v.text, host: alias)
            if let problem = InventorySyntax.userNameProblem(user) {
                fail(context, "user", "ssh config \(v.origin): User \(InventorySyntax.tomlQuoted(user)) \(problem)")
            } else { s.user = user; mark("user", v, "User") }
        }
        if let v = take("port", "port") {
            if let p = Int(v.text), (1...65535).contains(p) { s.port = p; mark("port", v, "Port") } else {
                fail(context, "port", "ssh config \(v.origin): Port \"\(v.text)\" is not a number from 1 to 65535")
            }
        }
        // As ssh does, an IdentityFile that does not exist is skipped (fleet then tries the agent and the default keys).
        if let v = take("identity", "identityfile"), FileManager.default.fileExists(atPath: Self.configPath(v, host: alias)) {
            s.identity = Self.configPath(v, host: alias); mark("identity", v, "IdentityFile")
        }
        if let v = take("known_hosts", "userknownhostsfile") {
            s.knownHosts = Self.configPath(v, host: alias); mark("known_hosts", v, "UserKnownHostsFile")
        }
        if let v = take("host_key_policy", "stricthostkeychecking") {
            if let p = Self.policy(v.text) { s.hostKeyPolicy = p; mark("host_key_policy", v, "StrictHostKeyChecking") } else {
                fail(context, "host_key_policy", "ssh config \(v.origin): StrictHostKeyChecking \"\(v.text)\" is not yes, ask, accept-new, no or off")
            }
        }
        if let v = take("connect_timeout", "connecttimeout") {
            if let t = Int(v.text), (1...300).contains(t) { s.connectTimeout = Double(t); mark("connect_timeout", v, "ConnectTimeout") } else {
                fail(context, "connect_timeout", "ssh config \(v.origin): ConnectTimeout \"\(v.text)\" is not a number of seconds from 1 to 300")
            }
        }
        if let v = take("jump", "proxyjump") {
            switch JumpSpec.parseList(v.text) {
            case .success(let hops): s.jump = hops; mark("jump", v, "ProxyJump")
            case .failure(let problem): fail(context, "jump", "ssh config \(v.origin): ProxyJump \"\(v.text)\" \(problem.reason)")
            }
        }
    }

    /// yes/ask: strict (fleet never asks); accept-new, no, off: accept-new (a changed key is refused either way).
    static func policy(_ text: String) -> HostKeyPolicy? {
        switch text.lowercased() {
        case "yes", "ask": return .strict
        case "accept-new", "no", "off": return .acceptNew
        default: return nil
        }
    }

    /// `%h` (the name given) and `%%`.
    static func expandPercent(_ text: String, host: String) -> String {
        text.replacingOccurrences(of: "%%", with: "\u{0}").replacingOccurrences(of: "%h", with: host)
            .replacingOccurrences(of: "\u{0}", with: "%")
    }

    /// A path from the config: its first word, `%h` and `~` expanded, relative to the config file's directory.
    static func configPath(_ v: SSHConfig.Value, host: String) -> String {
        let first = v.text.split(separator: " ").first.map(String.init) ?? v.text
        let expanded = InventoryPaths.expandHome(expandPercent(first, host: host)) ?? first
        if expanded.hasPrefix("/") { return expanded }
        return ((v.file as NSString).deletingLastPathComponent as NSString).appendingPathComponent(expanded)
    }
}
