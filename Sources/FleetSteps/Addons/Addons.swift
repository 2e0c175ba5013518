import FleetCore
import Foundation

/// The add-ons a cluster gets: the inventory's `[addons]`, with the CNI's and known charts' rules applied.
public enum Addons {
    /// Every add-on as installed: the CNI's add-on becomes a bootstrap chart with `failurePolicy: abort` and the
    /// IPv6-only values under the user's; Longhorn and Velero get theirs (``StorageAddons``).
    public static func effective(_ inventory: Inventory) -> [AddonConfig] {
        let cluster = inventory.cluster
        return inventory.addons.addons.map { addon in
            var a = addon
            if let cniAddon = cluster.cni.addonName, a.name == cniAddon {
                a.bootstrap = true
                a.failurePolicy = .abort
                a.group = "cluster"
                if cluster.cni.targetNamespace != nil, !addonSetsNamespace(inventory, a.name) {
                    a.namespace = cluster.cni.targetNamespace!
                }
                a.values = cniValues(cluster, a).merged(with: a.values)
            }
            return StorageAddons.apply(a, inventory: inventory)
        }
    }

    /// The inventory named a namespace for this add-on (otherwise the CNI's own is used).
    static func addonSetsNamespace(_ inventory: Inventory, _ name: String) -> Bool {
        inventory.addons.named(name).map { $0.namespace != "kube-system" } ?? false
    }

    static func cniValues(_ cluster: ClusterConfig, _ a: AddonConfig) -> InventoryValue {
        switch cluster.cni {
        case .cilium:
            let tunnel = a.values.entries?["routingMode"] == .string("tunnel")
            return CNIValues.cilium(clusterCIDR: cluster.clusterCIDR, tunnel: tunnel)
        case .calico:
            return CNIValues.calico(clusterCIDR: cluster.clusterCIDR)
        case .flannel, .none:
            return .table([:])
        }
    }

    /// The add-ons one playbook's step installs.
    public static func effective(_ inventory: Inventory, group: String) -> [AddonConfig] {
        effective(inventory).filter { $0.group == group }
    }
}
