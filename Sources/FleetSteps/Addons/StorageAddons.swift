import FleetCore
import Foundation

/// Longhorn and Velero (`kind = "longhorn"` / `"velero"`): the rules and values that make them work on IPv6-only.
public enum StorageAddons {
    /// Longhorn's V1 data engine supports single-stack IPv6 from 1.10 on.
    public static let longhornFirstIPv6 = (major: 1, minor: 10)

    /// The add-on with its kind's fixed settings and base values under the user's.
    public static func apply(_ addon: AddonConfig, inventory: Inventory) -> AddonConfig {
        var a = addon
        switch a.kind {
        case "longhorn":
            // A failed upgrade must not uninstall Longhorn (and its volumes): helm-controller's default reinstalls.
            a.failurePolicy = .abort
            let replicas = min(3, inventory.hosts.count)
            let base: InventoryValue = .table([
                "persistence": .table(["defaultClassReplicaCount": .integer(replicas)]),
                "defaultSettings": .table(["defaultReplicaCount": .integer(replicas)]),
                // The pre-upgrade checker job fails under helm-controller's install jobs.
                "preUpgradeChecker": .table(["jobEnabled": .bool(false)]),
            ])
            a.values = base.merged(with: a.values)
            if a.namespace == "kube-system" { a.namespace = "longhorn-system" }
        case "velero":
            a.failurePolicy = .abort
            a.values = veleroValues(a.values)
            if a.namespace == "kube-system" { a.namespace = "velero" }
        default:
            break
        }
        return a
    }

    /// Velero: node-agent off unless asked for, and `checksumAlgorithm: ""` in every aws-provider backup location
    /// that sets none (MinIO and Ceph refuse the CRC32 checksums plugin ≥ 1.9.1 sends).
    static func veleroValues(_ values: InventoryValue) -> InventoryValue {
        var v = InventoryValue.table(["deployNodeAgent": .bool(false)]).merged(with: values)
        guard case .table(var top) = v, case .table(var configuration)? = top["configuration"],
              case .array(let locations)? = configuration["backupStorageLocation"] else { return v }
        configuration["backupStorageLocation"] = .array(locations.map { location in
            guard case .table(var l) = location else { return location }
            let provider = l["provider"].flatMap { if case .string(let s) = $0 { return s } else { return nil } } ?? "aws"
            guard provider == "aws" || provider == "velero.io/aws" else { return location }
            var config = l["config"]?.entries ?? [:]
            if config["checksumAlgorithm"] == nil { config["checksumAlgorithm"] = .string("") }
            l["config"] = .table(config)
            return .table(l)
        })
        top["configuration"] = .table(configuration)
        v = .table(top)
        return v
    }

    /// Why this add-on cannot be installed as given, with the key to change (checked at load).
    static func problems(_ a: AddonConfig, nodes: Int) -> [(key: String, message: String, warning: Bool)] {
        var out: [(String, String, Bool)] = []
        switch a.kind {
        case "longhorn":
            if let v = a.version, let (major, minor) = CNIValues.majorMinor(v) {
                if (major, minor) < longhornFirstIPv6 {
                    out.append(("version", "Longhorn \(v) does not run on IPv6-only clusters: its V1 data engine supports "
                                + "single-stack IPv6 from 1.10 on (longhorn#2259); use 1.10 or later", false))
                }
            } else {
                out.append(("version", "is required for kind = \"longhorn\" (1.10 or later: earlier releases do not run on IPv6-only nodes)", false))
            }
            for (path, value) in replicaCounts(a.values) where value > nodes {
                out.append(("values", "\(path) = \(value) is more than the \(nodes) node(s) of the cluster; a volume "
                            + "cannot keep more replicas than there are nodes", false))
            }
        case "velero":
            for url in s3URLs(a.values) {
                let host = hostOf(url)
                if host.hasPrefix("[") || IPv6Address(host) != nil {
                    out.append(("values", "s3Url \(url) names an IPv6 literal; S3 clients mishandle them: use a DNS name "
                                + "with an AAAA record", true))
                }
            }
        default:
            break
        }
        return out
    }

    static func replicaCounts(_ v: InventoryValue) -> [(String, Int)] {
        var out: [(String, Int)] = []
        if case .integer(let n)? = v.entries?["persistence"]?.entries?["defaultClassReplicaCount"] {
            out.append(("persistence.defaultClassReplicaCount", n))
        }
        if case .integer(let n)? = v.entries?["defaultSettings"]?.entries?["defaultReplicaCount"] {
            out.append(("defaultSettings.defaultReplicaCount", n))
        }
        return out
    }

    static func s3URLs(_ v: InventoryValue) -> [String] {
        guard case .array(let locations)? = v.entries?["configuration"]?.entries?["backupStorageLocation"] else { return [] }
        return locations.compactMap { l in
            if case .string(let s)? = l.entries?["config"]?.entries?["s3Url"] { return s }
            return nil
        }
    }

    /// The host of `scheme://host[:port]/…` (an IPv6 literal keeps its brackets).
    static func hostOf(_ url: String) -> String {
        var rest = Substring(url)
        if let r = rest.range(of: "://") { rest = rest[r.upperBound...] }
        rest = rest.prefix { $0 != "/" }
        if rest.hasPrefix("[") { return String(rest.prefix { $0 != "]" }) + "]" }
        if rest.filter({ $0 == ":" }).count > 1 { return String(rest) }
        return String(rest.prefix { $0 != ":" })
    }
}
