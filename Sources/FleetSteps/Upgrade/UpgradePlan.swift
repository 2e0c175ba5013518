import FleetCore
import Foundation

/// What an upgrade will do, decided from the facts alone (pure): why it is refused, or which nodes
/// are not yet at the new release and whether a snapshot comes first.
public struct UpgradePlan: Sendable, Equatable {
    /// Reasons to refuse (exit 2, no host touched); empty when the upgrade may go ahead.
    public var problems: [String]
    /// Hosts whose binary or node is not yet at the target (or that are left cordoned), in inventory order.
    public var pending: [String]
    /// A snapshot is taken before the first node restarts: whenever some node is pending.
    public var snapshot: Bool { !pending.isEmpty }

    public struct Host: Sendable, Equatable {
        public var name: String
        public var server: Bool

        public init(name: String, server: Bool) {
            self.name = name
            self.server = server
        }
    }

    public static func make(hosts: [Host], facts: UpgradeFacts, target: K3sVersion) -> UpgradePlan {
        var problems: [String] = []
        for h in hosts {
            if let why = facts.unreachable[h.name] {
                problems.append("\(h.name): cannot be read (\(why)); every node must answer before an upgrade starts")
            }
        }
        if facts.nodes == nil, let first = hosts.first(where: \.server), facts.unreachable[first.name] == nil {
            problems.append("\(first.name): its API did not list the nodes (is K3s running there?); "
                + "an upgrade needs a working cluster")
        }
        let read = hosts.filter { facts.unreachable[$0.name] == nil }
        problems += UpgradeRules.problems(target: target, nodes: read.map {
            UpgradeRules.Node(name: $0.name, server: $0.server, version: facts.versions[$0.name] ?? nil)
        })
        let pending = read.filter { h in
            let binary = facts.versions[h.name] ?? nil
            let node = facts.nodes?[h.name]
            return binary != target || !(node?.upgraded(to: target) ?? false) || (node?.unschedulable ?? false)
        }.map(\.name)
        return UpgradePlan(problems: problems, pending: pending)
    }
}
