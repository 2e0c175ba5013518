import FleetCore
import Foundation

/// Installing K3s as a server or an agent, the same way: facts (`K3sInstall+Facts`) → a pure plan
/// (`K3sInstall+Plan`) → apply (`K3sInstall+Apply`) → wait until ready (`K3sInstall+Readiness`).
public enum K3sInstall {
    public static let binaryPath = "/usr/local/bin/k3s"
    public static let installerPath = "/var/lib/rancher/fleet/install.sh"
    public static let imagesDirectory = "/var/lib/rancher/k3s/agent/images"
    public static let scriptURL = "https://get.k3s.io"

    public enum Role: String, Sendable, Encodable {
        case server, agent

        /// The systemd unit the installer writes.
        public var service: String { self == .server ? "k3s" : "k3s-agent" }
    }

    /// Everything one host's K3s install reads, as a value: the step's digest (``Action/inputs(host:inventory:)``)
    /// and what ``run(_:_:)`` works from. Holds no secret: the token travels apart, in ``Job``.
    public struct Inputs: Encodable, Sendable {
        public var wanted: Wanted
        /// config.yaml as written (the token is in a file it names, never in it).
        public var config: String
        /// Air-gap: the directory `k3s`, `install.sh` and the images come from.
        public var airgapDir: String?
        /// Where agents register (for the agent's message).
        public var registrationURL: String
        /// The name of the value holding the join token, when the node joins.
        public var secret: String?
        /// Seconds to wait for the service to be ready.
        public var wait: Double
    }

    /// The inputs of one host's install: the version and source from the inventory, the config text,
    /// and for air-gap the SHA-256 of each local file (cached by path, size and time).
    static func inputs(role: Role, config: String, inventory: Inventory, secret: String?, wait: Double) throws -> Inputs {
        guard let version = K3sVersion(inventory.cluster.k3sVersion) else {
            throw TaskFailure("[cluster] k3s_version \"\(inventory.cluster.k3sVersion)\" is not a K3s version")
        }
        let source = inventory.k3s.source
        var w = Wanted(role: role, source: source, version: version, configSHA: sha256Hex(Data(config.utf8)),
                       token: secret != nil)
        let dir = inventory.k3s.airgapDir
        if source == .airgap {
            guard let dir else { throw TaskFailure("[k3s] source = \"airgap\" needs airgap_dir") }
            func local(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
            w.binarySHA = try LocalFile.sha256(of: local("k3s"))
            w.installerSHA = try LocalFile.sha256(of: local("install.sh"))
            for name in AirgapFiles.images(in: dir) {
                w.images[(imagesDirectory as NSString).appendingPathComponent(name)] = try LocalFile.sha256(of: local(name))
            }
        }
        return Inputs(wanted: w, config: config, airgapDir: source == .airgap ? dir : nil,
                      registrationURL: inventory.registrationURL, secret: secret, wait: wait)
    }

    /// One host's install as it runs: its inputs and, for a joining node, the token.
    struct Job {
        var inputs: Inputs
        var token: Secret?

        var role: Role { inputs.wanted.role }
        var source: K3sSource { inputs.wanted.source }

        func localPath(_ name: String) -> String {
            ((inputs.airgapDir ?? "") as NSString).appendingPathComponent(name)
        }
    }
}
