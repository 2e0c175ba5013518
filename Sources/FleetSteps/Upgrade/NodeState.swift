import FleetCore
import Foundation

/// A node as the API shows it: what an upgrade waits for (Ready at the new `kubeletVersion`) and
/// whether it is cordoned. Parsed from `kubectl get nodes -o json` (pure).
public struct NodeState: Sendable, Equatable {
    public var name: String
    public var ready: Bool
    public var kubeletVersion: String
    public var unschedulable: Bool

    public init(name: String, ready: Bool, kubeletVersion: String, unschedulable: Bool) {
        self.name = name
        self.ready = ready
        self.kubeletVersion = kubeletVersion
        self.unschedulable = unschedulable
    }

    private struct Item: Decodable {
        struct Meta: Decodable { var name: String }
        struct Spec: Decodable { var unschedulable: Bool? }
        struct Condition: Decodable { var type: String; var status: String }
        struct Info: Decodable { var kubeletVersion: String? }
        struct Status: Decodable { var conditions: [Condition]?; var nodeInfo: Info? }
        var metadata: Meta
        var spec: Spec?
        var status: Status?
    }

    private struct List: Decodable { var items: [Item] }

    /// Nodes by name, from a NodeList or a single Node; nil when the text is neither.
    public static func parse(_ json: String) -> [String: NodeState]? {
        let data = Data(json.utf8)
        let items: [Item]
        if let list = try? JSONDecoder().decode(List.self, from: data) {
            items = list.items
        } else if let one = try? JSONDecoder().decode(Item.self, from: data) {
            items = [one]
        } else {
            return nil
        }
        var out: [String: NodeState] = [:]
        for i in items {
            let ready = i.status?.conditions?.contains { $0.type == "Ready" && $0.status == "True" } ?? false
            out[i.metadata.name] = NodeState(name: i.metadata.name, ready: ready,
                                             kubeletVersion: i.status?.nodeInfo?.kubeletVersion ?? "",
                                             unschedulable: i.spec?.unschedulable ?? false)
        }
        return out
    }

    /// Ready, and its kubelet runs `version`.
    public func upgraded(to version: K3sVersion) -> Bool { ready && kubeletVersion == version.description }
}

/// The kubectl commands an upgrade runs on a server (node names quoted; nothing secret).
public enum NodeCommands {
    static let kubectl = "\(K3sInstall.binaryPath) kubectl"

    public static func get(_ name: String) -> String {
        "\(kubectl) get node \(shellQuote(name)) -o json </dev/null"
    }

    public static let list = "\(kubectl) get nodes -o json </dev/null"

    public static func cordon(_ name: String) -> String { "\(kubectl) cordon \(shellQuote(name)) </dev/null" }

    public static func uncordon(_ name: String) -> String { "\(kubectl) uncordon \(shellQuote(name)) </dev/null" }

    /// Evicts the node's pods as `kubectl drain` does: DaemonSet pods stay, emptyDir data is
    /// deleted, pods without a controller are evicted too, each pod gets `grace` seconds, the whole
    /// drain `timeout` seconds (a disruption budget that never allows it fails the drain then).
    public static func drain(_ name: String, grace: Int, timeout: Int) -> String {
        "\(kubectl) drain \(shellQuote(name)) --ignore-daemonsets --delete-emptydir-data --force "
            + "--grace-period=\(grace) --timeout=\(timeout)s </dev/null"
    }
}
