import FleetCore
import Foundation

/// `[registries]`: K3s's registries.yaml, with local files for the password and TLS material.
public struct RegistriesConfig: Sendable, Hashable, Encodable {
    public struct Mirror: Sendable, Hashable, Encodable {
        public var endpoints: [String]
        /// Regular expression → replacement, applied to image names (not tags) pulled through the mirror.
        public var rewrite: [String: String]
    }

    public struct HostConfig: Sendable, Hashable, Encodable {
        public var username: String?
        /// A file on the control machine holding the password (its first line); read at run time only.
        public var passwordFile: String?
        /// Local files, copied to each node under ``RegistriesFile/tlsDirectory``.
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var insecureSkipVerify: Bool?
    }

    /// Registry name (`docker.io`, `"*"`) → its mirror.
    public var mirrors: [String: Mirror]
    /// Endpoint `host[:port]` → its credentials and TLS settings.
    public var configs: [String: HostConfig]

    public var isEmpty: Bool { mirrors.isEmpty && configs.isEmpty }

    public init(mirrors: [String: Mirror] = [:], configs: [String: HostConfig] = [:]) {
        self.mirrors = mirrors
        self.configs = configs
    }
}

extension Inventory {
    /// `[registries]` (empty when absent).
    public var registries: RegistriesConfig {
        get { sections[RegistriesConfig.self] ?? RegistriesConfig() }
        set { sections[RegistriesConfig.self] = newValue }
    }
}

/// Reads `[registries.mirrors."NAME"]` and `[registries.configs."HOST:PORT"]` (with `.auth` and `.tls`).
enum RegistriesSection {
    static let keys = ["mirrors", "configs"]
    static let section = InventorySection(name: "registries", keys: keys) { reader, table in read(&reader, table) }

    static func read(_ r: inout InventoryReader, _ t: InventoryTable) {
        let before = r.errorCount
        var config = RegistriesConfig()
        if case .present(let mirrors) = r.table(t, "mirrors") {
            for name in r.keys(of: mirrors) {
                guard case .present(let m) = r.table(mirrors, name) else { continue }
                r.checkKnownKeys(m, allowed: ["endpoint", "rewrite"])
                let endpoints = r.strings(m, "endpoint").value ?? []
                for e in endpoints where !(e.hasPrefix("https://") || e.hasPrefix("http://")) {
                    r.fail(m, "endpoint", "\(InventorySyntax.tomlQuoted(e)) is not a URL: write https://host[:port] (plain HTTP needs http://)")
                }
                for e in endpoints where StorageAddons.hostOf(e).hasPrefix("[") {
                    r.warn(m, "endpoint", "\(InventorySyntax.tomlQuoted(e)) is an IPv6 literal: containerd before 2.0 "
                           + "(K3s before v1.32.2) cannot use it; a DNS name with an AAAA record works everywhere")
                }
                var rewrite: [String: String] = [:]
                if case .present(let rw) = r.table(m, "rewrite") {
                    for pattern in r.keys(of: rw) {
                        if case .present(let repl) = r.string(rw, pattern) { rewrite[pattern] = repl }
                    }
                }
                config.mirrors[name] = RegistriesConfig.Mirror(endpoints: endpoints, rewrite: rewrite)
            }
        }
        if case .present(let configs) = r.table(t, "configs") {
            for host in r.keys(of: configs) {
                guard case .present(let c) = r.table(configs, host) else { continue }
                r.checkKnownKeys(c, allowed: ["auth", "tls"])
                var hc = RegistriesConfig.HostConfig()
                if case .present(let auth) = r.table(c, "auth") {
                    r.checkKnownKeys(auth, allowed: ["username", "password_file"])
                    hc.username = r.string(auth, "username").value
                    hc.passwordFile = r.path(auth, "password_file").value
                    if let file = hc.passwordFile, !FileManager.default.isReadableFile(atPath: file) {
                        r.fail(auth, "password_file", "\"\(file)\" is not a readable file on this machine")
                    }
                    if hc.username == nil { r.fail(auth, "username", "is required with password_file") }
                    if hc.passwordFile == nil, hc.username != nil {
                        r.fail(auth, "password_file", "is required: a file on this machine holding the password (never the password itself)")
                    }
                }
                if case .present(let tls) = r.table(c, "tls") {
                    r.checkKnownKeys(tls, allowed: ["ca_file", "cert_file", "key_file", "insecure_skip_verify"])
                    hc.caFile = localFile(&r, tls, "ca_file")
                    hc.certFile = localFile(&r, tls, "cert_file")
                    hc.keyFile = localFile(&r, tls, "key_file")
                    hc.insecureSkipVerify = r.boolean(tls, "insecure_skip_verify").value
                    if (hc.certFile == nil) != (hc.keyFile == nil) {
                        r.fail(tls, hc.certFile == nil ? "cert_file" : "key_file", "cert_file and key_file go together")
                    }
                }
                config.configs[host] = hc
            }
        }
        if r.errorCount == before { r.sections[RegistriesConfig.self] = config }
    }

    static func localFile(_ r: inout InventoryReader, _ t: InventoryTable, _ key: String) -> String? {
        guard case .present(let path) = r.path(t, key) else { return nil }
        if !FileManager.default.isReadableFile(atPath: path) {
            r.fail(t, key, "\"\(path)\" is not a readable file on this machine")
        }
        return path
    }
}
