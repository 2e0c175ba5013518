import FleetCore
import Foundation
import Yams

/// `fleet kubeconfig`: the first server's `/etc/rancher/k3s/k3s.yaml`, made usable from here.
///
/// K3s writes `https://[::1]:6443` (or `127.0.0.1`) and names its cluster, context and user
/// `default`. The copy points every cluster at `https://[<server node_ip>]:<port>` and renames
/// `default` to the cluster's name, so that several clusters' files can be merged.
public enum KubeconfigVerb {
    public static let remotePath = "/etc/rancher/k3s/k3s.yaml"

    public struct RewriteError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Pure: rewrites kubeconfig YAML text to point at `host` (a bracketed IPv6 literal or a DNS
    /// name). Everything else in the file is kept.
    public static func rewrite(_ text: String, clusterName: String, host: String) throws -> String {
        let parsed: Node?
        do {
            parsed = try Yams.compose(yaml: text)
        } catch {
            throw RewriteError(description: "\(remotePath) is not valid YAML: \(error)")
        }
        guard let root = parsed, case .mapping(var top) = root else {
            throw RewriteError(description: "\(remotePath) is not a kubeconfig (no top-level mapping)")
        }
        guard let clusters = top["clusters"], case .sequence = clusters else {
            throw RewriteError(description: "\(remotePath) has no clusters list")
        }
        func rename(_ node: Node?) -> Node? {
            guard let node, node.string == "default" else { return node }
            return Node(clusterName, Tag(.str), .doubleQuoted)
        }
        top["clusters"] = mapItems(clusters) { item in
            var item = item
            if let renamed = rename(item["name"]) { item["name"] = renamed }
            if var cluster = item["cluster"]?.mapping {
                if let url = cluster["server"]?.string {
                    cluster["server"] = Node("https://\(host):\(port(of: url))", Tag(.str), .plain)
                }
                item["cluster"] = .mapping(cluster)
            }
            return item
        }
        if let contexts = top["contexts"] {
            top["contexts"] = mapItems(contexts) { item in
                var item = item
                if let renamed = rename(item["name"]) { item["name"] = renamed }
                if var context = item["context"]?.mapping {
                    if let c = rename(context["cluster"]) { context["cluster"] = c }
                    if let u = rename(context["user"]) { context["user"] = u }
                    item["context"] = .mapping(context)
                }
                return item
            }
        }
        if let users = top["users"] {
            top["users"] = mapItems(users) { item in
                var item = item
                if let renamed = rename(item["name"]) { item["name"] = renamed }
                return item
            }
        }
        if let current = rename(top["current-context"]) { top["current-context"] = current }
        return try Yams.serialize(node: .mapping(top), width: -1)
    }

    /// Applies `transform` to each mapping in a sequence.
    static func mapItems(_ node: Node, _ transform: (Node.Mapping) -> Node.Mapping) -> Node {
        guard case .sequence(var seq) = node else { return node }
        for i in seq.indices {
            if case .mapping(let m) = seq[i] { seq[i] = .mapping(transform(m)) }
        }
        return .sequence(seq)
    }

    /// The port of `https://[::1]:6443` / `https://127.0.0.1:6443`; 6443 when absent.
    static func port(of url: String) -> Int {
        guard let hostStart = url.range(of: "://")?.upperBound else { return 6443 }
        var rest = url[hostStart...]
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            let after = rest[rest.index(after: close)...]
            return after.hasPrefix(":") ? Int(after.dropFirst()) ?? 6443 : 6443
        }
        if let colon = rest.lastIndex(of: ":") { return Int(rest[rest.index(after: colon)...]) ?? 6443 }
        return 6443
    }

    /// Where `fleet kubeconfig` writes by default: `<inventory dir>/<cluster name>.kubeconfig`.
    public static func defaultOutput(for inventory: Inventory) -> String {
        (inventory.directory as NSString).appendingPathComponent("\(inventory.cluster.name).kubeconfig")
    }

    /// Where the kubeconfig points: a server of the inventory (read from it, pointed at its
    /// node_ip), or one of `[cluster] tls_san` (a DNS name or floating address in front of the
    /// servers: read from the first server). Nil: the first server.
    public static func endpoint(_ choice: String?, in inventory: Inventory) throws -> (read: FleetCore.Host, host: String) {
        guard let choice else { return (inventory.firstServer, "[\(inventory.firstServer.nodeIP)]") }
        let bare = choice.hasPrefix("[") && choice.hasSuffix("]") ? String(choice.dropFirst().dropLast()) : choice
        if let server = inventory.servers.first(where: { $0.name == choice || IPv6Address(bare) == $0.nodeIP }) {
            return (server, "[\(server.nodeIP)]")
        }
        if let san = inventory.cluster.tlsSAN.first(where: { $0 == bare || IPv6Address($0).map { $0 == IPv6Address(bare) } ?? false }) {
            return (inventory.firstServer, IPv6Address(san).map { "[\($0)]" } ?? san)
        }
        let servers = inventory.servers.map(\.name).joined(separator: ", ")
        let sans = inventory.cluster.tlsSAN.isEmpty ? "none" : inventory.cluster.tlsSAN.joined(separator: ", ")
        throw RewriteError(description: """
            --server "\(choice)" is neither a server of \(inventory.path) (\(servers)) nor in [cluster] tls_san (\(sans)): \
            the API certificate would not match it
            """)
    }

    /// Reads a server's kubeconfig and returns it rewritten (see ``endpoint(_:in:)``).
    public static func fetch(inventory: Inventory, connector: Connector, server choice: String? = nil) throws -> String {
        let (server, host) = try endpoint(choice, in: inventory)
        let connection = try connector.connect(to: server)
        defer { connection.close() }
        guard let data = try connection.read(remotePath, timeout: server.ssh.commandTimeout) else {
            throw RewriteError(description: """
                \(server.name) has no \(remotePath): the K3s server is not installed or has not started yet (run fleet up)
                """)
        }
        return try rewrite(String(decoding: data, as: UTF8.self), clusterName: inventory.cluster.name, host: host)
    }

    /// Writes `text` to `path` with mode 0600, atomically (a temporary file in the same directory,
    /// synced, renamed over the target). The content is never readable by others, even for a moment.
    public static func save(_ text: String, to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir.isEmpty ? "." : dir, withIntermediateDirectories: true)
        do {
            try AtomicFile.write(Data(text.utf8), to: path, mode: 0o600)
        } catch let failure as AtomicFile.Failure {
            throw RewriteError(description: "cannot write \(path): \(failure.reason)")
        }
    }
}
