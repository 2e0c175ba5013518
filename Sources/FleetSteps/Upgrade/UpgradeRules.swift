import Foundation

/// The version rules an upgrade is checked against before any host is touched (pure).
///
/// From K3s's and Kubernetes' documents: servers are never downgraded; a minor release is never
/// skipped (`v1.30 → v1.32` goes through a v1.31 release); the API servers of one cluster stay
/// within one minor of each other; a kubelet is never newer than the API server.
public enum UpgradeRules {
    /// One node as found: its name, role and the version its K3s reports (nil: not installed).
    public struct Node: Sendable, Equatable {
        public var name: String
        public var server: Bool
        public var version: K3sVersion?

        public init(name: String, server: Bool, version: K3sVersion?) {
            self.name = name
            self.server = server
            self.version = version
        }
    }

    /// Why upgrading `nodes` to `target` is refused; empty when it may go ahead.
    public static func problems(target: K3sVersion, nodes: [Node]) -> [String] {
        var out: [String] = []
        for n in nodes {
            guard let have = n.version else {
                out.append("\(n.name): K3s is not installed; run fleet up first (upgrade changes running nodes only)")
                continue
            }
            if target < have {
                out.append("\(n.name): runs \(have), newer than \(target): fleet never downgrades "
                    + (n.server ? "a server" : "an agent (a kubelet may not be newer than its API server)")
                    + "; restore a snapshot taken before the upgrade to go back")
            } else if target.major != have.major || target.minor > have.minor + 1 {
                out.append("\(n.name): runs \(have) and \(target) would skip a minor release: upgrade to a "
                    + "v\(have.major).\(have.minor + 1) release first")
            }
        }
        let serverMinors = nodes.filter(\.server).compactMap(\.version).map { ($0.major, $0.minor) }
        if let low = serverMinors.min(by: <), let high = serverMinors.max(by: <),
           low.0 != high.0 || high.1 > low.1 + 1 {
            out.append("the servers run v\(low.0).\(low.1) and v\(high.0).\(high.1), more than one minor apart: "
                + "bring every server to the same minor release first")
        }
        return out
    }
}

/// How many agents are upgraded at once: `N` agents or `P%` of them (rounded down), at least 1.
public struct BatchSize: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable { case count(Int), percent(Int) }
    public var kind: Kind

    /// k0sctl's default, 10 % of the agents.
    public static let `default` = BatchSize(kind: .percent(10))

    public init(kind: Kind) { self.kind = kind }

    /// `3` or `25%`; nil for anything else (0, a negative number, more than 100 %).
    public init?(_ text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.hasSuffix("%") {
            guard let p = Int(t.dropLast()), p >= 1, p <= 100 else { return nil }
            kind = .percent(p)
        } else {
            guard let n = Int(t), n >= 1 else { return nil }
            kind = .count(n)
        }
    }

    /// Agents at once for `agents` agents: never 0 (at least one goes), never more than there are.
    public func size(agents: Int) -> Int {
        let n: Int
        switch kind {
        case .count(let c): n = c
        case .percent(let p): n = agents * p / 100
        }
        return max(1, min(n, max(agents, 1)))
    }

    public var description: String {
        switch kind {
        case .count(let c): return "\(c)"
        case .percent(let p): return "\(p)%"
        }
    }
}
