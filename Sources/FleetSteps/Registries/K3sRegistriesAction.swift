import FleetCore
import Foundation

/// `k3s_registries`: `/etc/rancher/k3s/registries.yaml` (0600) on every node from `[registries]`, with each
/// registry's TLS files; K3s is restarted only when one of them changed and it runs. Passwords are read from
/// their files on the control machine at run time, registered for redaction, and travel only inside the 0600
/// upload: never in the inputs (the digest), a command line or a log. Without `[registries]`, a file fleet wrote
/// earlier is removed (with a restart).
///
///     action = "k3s_registries"
///     target = "all"          # before the K3s install, so the first start already uses it
public struct K3sRegistriesAction: Action {
    public init(_ p: StepParams) throws {}
    public init() {}

    public struct Inputs: Encodable, Sendable {
        /// The settings, with the password files named but not read.
        public var registries: RegistriesConfig
        public var tlsFiles: [RegistriesFile.TLSFile]
        /// SHA-256 of each TLS file that is not secret (the key's content stays out of the digest).
        public var tlsSHA: [String: String]
        public var role: K3sInstall.Role
    }

    public func inputs(host: FleetCore.Host, inventory: Inventory) throws -> Inputs {
        let config = inventory.registries
        let files = RegistriesFile.tlsFiles(config)
        var shas: [String: String] = [:]
        for f in files where !f.secret { shas[f.remote] = try LocalFile.sha256(of: f.local) }
        return Inputs(registries: config, tlsFiles: files, tlsSHA: shas, role: host.role == .server ? .server : .agent)
    }

    public func describe(_ vars: TemplateVariables) -> [String] {
        ["write \(RegistriesFile.path) (0600) from [registries] with its TLS files; restart K3s only when they changed"]
    }

    public enum Change: Sendable, Equatable {
        case write(String)
        case remove(String)
        case restart
    }

    /// Pure: the files whose remote SHA-256 differs from the wanted one (nil = remove it if fleet wrote it), then a
    /// restart when anything changed and K3s runs.
    public static func plan(remote: [String: String], wanted: [String: String?], fleetOwned: Bool, running: Bool) -> [Change] {
        var changes: [Change] = []
        for path in wanted.keys.sorted() {
            switch wanted[path]! {
            case .some(let sha) where remote[path] != sha: changes.append(.write(path))
            case .none where remote[path] != nil && (path != RegistriesFile.path || fleetOwned): changes.append(.remove(path))
            default: break
            }
        }
        if !changes.isEmpty && running { changes.append(.restart) }
        return changes
    }

    /// One round trip: the files' hashes, whether fleet wrote registries.yaml, whether K3s runs.
    static func factScript(paths: [String], service: String) -> FactScript {
        var s = FactScript()
        s.add("sha", "sha256sum -- " + paths.map(shellQuote).joined(separator: " ") + " 2>/dev/null; true")
        s.add("owner", "head -n 1 \(shellQuote(RegistriesFile.path)) 2>/dev/null")
        s.add("active", "systemctl is-active \(service) 2>/dev/null")
        return s
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        let inputs = try inputs(host: ctx.host, inventory: ctx.inventory)
        var contents: [String: Data] = [:]
        if !inputs.registries.isEmpty {
            var passwords: [String: String] = [:]
            for (host, c) in inputs.registries.configs {
                guard let file = c.passwordFile else { continue }
                let password = try RegistriesFile.password(fromFile: file)
                ctx.redactor.register(Secret(name: "registry password for \(host)", value: password))
                passwords[host] = password
            }
            contents[RegistriesFile.path] = Data(try RegistriesFile.render(inputs.registries, passwords: passwords).utf8)
            for f in inputs.tlsFiles { contents[f.remote] = try LocalFile.contents(of: f.local) }
        }
        var wanted: [String: String?] = [RegistriesFile.path: nil]
        for (path, data) in contents { wanted[path] = sha256Hex(data) }

        let service = inputs.role.service
        let r = try ctx.run(Self.factScript(paths: wanted.keys.sorted(), service: service).command)
        let sec = FactScript.sections(r.stdoutText)
        let remote = K3sInstall.parseHashes(sec["sha"] ?? "")
        let owned = (sec["owner"] ?? "").hasPrefix("# Written by fleet")
        let running = (sec["active"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines) == "active"
        let changes = Self.plan(remote: remote, wanted: wanted, fleetOwned: owned, running: running)
        if changes.isEmpty {
            return .ok(contents.isEmpty ? "no [registries]; nothing to write" : "\(RegistriesFile.path) unchanged")
        }
        var done: [String] = []
        for change in changes {
            switch change {
            case .write(let path):
                try ctx.upload(contents[path]!, to: path, mode: 0o600)
                done.append("write \(path)")
            case .remove(let path):
                try ctx.runChecked("rm -f -- \(shellQuote(path))", "removing \(path)")
                done.append("remove \(path)")
            case .restart:
                try ctx.runChecked("systemctl restart \(service) </dev/null", "restarting \(service)", timeout: 300)
                done.append("restart \(service)")
            }
        }
        return .changed(done.joined(separator: ", "))
    }
}
