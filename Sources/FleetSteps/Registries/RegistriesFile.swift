import FleetCore
import Foundation
import Yams

/// `/etc/rancher/k3s/registries.yaml`, built with Yams from `[registries]`.
public enum RegistriesFile {
    public static let path = "/etc/rancher/k3s/registries.yaml"
    /// Where a registry's CA, certificate and key are copied: `<dir>/<host:port>/ca.crt`, `client.crt`, `client.key`.
    public static let tlsDirectory = "/etc/rancher/k3s/registries.d"
    static let header = "# Written by fleet from [registries]. Changes here are overwritten on the next run.\n"

    /// A TLS file to copy: local source, remote path, and whether it is secret (the key).
    public struct TLSFile: Sendable, Equatable, Encodable {
        public var local: String
        public var remote: String
        public var secret: Bool
    }

    /// The TLS files of every configured registry.
    public static func tlsFiles(_ config: RegistriesConfig) -> [TLSFile] {
        var out: [TLSFile] = []
        for host in config.configs.keys.sorted() {
            let c = config.configs[host]!
            let dir = "\(tlsDirectory)/\(directoryName(host))"
            if let f = c.caFile { out.append(TLSFile(local: f, remote: "\(dir)/ca.crt", secret: false)) }
            if let f = c.certFile { out.append(TLSFile(local: f, remote: "\(dir)/client.crt", secret: false)) }
            if let f = c.keyFile { out.append(TLSFile(local: f, remote: "\(dir)/client.key", secret: true)) }
        }
        return out
    }

    /// A host:port as a directory name (`:` and `*` are kept out of paths).
    static func directoryName(_ host: String) -> String {
        String(host.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" })
    }

    /// The file's text. `passwords` maps a configured host to its password (read from its password_file at run
    /// time); a host missing from it gets the placeholder `password` is nil for (the digest's version).
    public static func render(_ config: RegistriesConfig, passwords: [String: String]) throws -> String {
        func str(_ s: String) -> Node { Node(s, Tag(.str), .doubleQuoted) }
        func key(_ s: String) -> Node { Node(s, Tag(.str), .doubleQuoted) }
        func plainKey(_ s: String) -> Node { Node(s, Tag(.str), .plain) }
        func map(_ pairs: [(Node, Node)]) -> Node { Node(pairs, Tag(.map), .block) }

        var root: [(Node, Node)] = []
        if !config.mirrors.isEmpty {
            root.append((plainKey("mirrors"), map(config.mirrors.keys.sorted().map { name in
                let m = config.mirrors[name]!
                var entry: [(Node, Node)] = []
                if !m.endpoints.isEmpty { entry.append((plainKey("endpoint"), Node(m.endpoints.map(str), Tag(.seq), .block))) }
                if !m.rewrite.isEmpty {
                    entry.append((plainKey("rewrite"), map(m.rewrite.keys.sorted().map { (key($0), str(m.rewrite[$0]!)) })))
                }
                return (key(name), entry.isEmpty ? Node([(Node, Node)](), Tag(.map), Node.Mapping.Style.flow) : map(entry))
            })))
        }
        let tls = tlsFiles(config)
        if !config.configs.isEmpty {
            root.append((plainKey("configs"), map(config.configs.keys.sorted().map { host in
                let c = config.configs[host]!
                var entry: [(Node, Node)] = []
                if let user = c.username {
                    var auth: [(Node, Node)] = [(plainKey("username"), str(user))]
                    if let password = passwords[host] { auth.append((plainKey("password"), str(password))) }
                    entry.append((plainKey("auth"), map(auth)))
                }
                let dir = "\(tlsDirectory)/\(directoryName(host))/"
                var t: [(Node, Node)] = []
                for f in tls where f.remote.hasPrefix(dir) {
                    let k = f.remote.hasSuffix("ca.crt") ? "ca_file" : (f.secret ? "key_file" : "cert_file")
                    t.append((plainKey(k), str(f.remote)))
                }
                if let skip = c.insecureSkipVerify {
                    t.append((plainKey("insecure_skip_verify"), Node(skip ? "true" : "false", Tag(.bool), .plain)))
                }
                if !t.isEmpty { entry.append((plainKey("tls"), map(t))) }
                return (key(host), entry.isEmpty ? Node([(Node, Node)](), Tag(.map), Node.Mapping.Style.flow) : map(entry))
            })))
        }
        return header + (try Yams.serialize(node: map(root), width: -1))
    }

    /// The first line of a password file, without its line ending.
    public static func password(fromFile path: String) throws -> String {
        let data = try LocalFile.contents(of: path)
        guard let text = String(data: data, encoding: .utf8) else {
            throw TaskFailure("\(path) is not UTF-8 text")
        }
        let line = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let password = line.hasSuffix("\r") ? String(line.dropLast()) : line
        guard !password.isEmpty else { throw TaskFailure("\(path) holds no password (its first line is empty)") }
        return password
    }
}
