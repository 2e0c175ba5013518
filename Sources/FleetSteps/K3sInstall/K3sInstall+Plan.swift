import FleetCore
import Foundation

extension K3sInstall {
    /// What the host should have.
    public struct Wanted: Sendable, Equatable, Encodable {
        public var role: Role
        public var source: K3sSource
        public var version: K3sVersion
        /// Airgap: SHA-256 of the local `k3s` and `install.sh`.
        public var binarySHA: String?
        public var installerSHA: String?
        /// Airgap: remote path → SHA-256 of each images tarball.
        public var images: [String: String]
        public var configSHA: String
        /// Agents: a token file to write.
        public var token: Bool

        public init(role: Role, source: K3sSource, version: K3sVersion, binarySHA: String? = nil,
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

    /// Pure: why `up` must not touch this host, or nil. A host that already runs another K3s version
    /// is left alone: reinstalling it would restart every such node at once, undrained. Changing
    /// versions is an upgrade's job (one node at a time, agents drained first).
    public static func refusal(_ f: Facts, _ w: Wanted) -> String? {
        guard let have = f.version, have != w.version else { return nil }
        return "K3s \(have) runs here and the inventory wants \(w.version): up does not change the version of a node "
            + "that already runs K3s (it would restart every node at once, with no drain); change versions with "
            + "fleet upgrade, or set k3s_version = \"\(have)\" to keep this one"
    }

    /// Pure: what to do to get from `facts` to `wanted`; empty when nothing. Assumes ``refusal(_:_:)``
    /// found nothing: the installed version, if any, is the wanted one.
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
        let notInstalled = w.source == .script && f.version == nil
        if !f.unitPresent || changes.contains(.uploadBinary) || notInstalled {
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
}
