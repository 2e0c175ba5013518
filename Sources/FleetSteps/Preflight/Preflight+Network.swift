import FleetCore
import Foundation
import Yams

extension Preflight {
    /// The installed network stack, read from the server's config.yaml (and fleet's CNI manifest): nil when K3s
    /// is not configured there yet.
    static func installedCNI(config: String, manifests: String) -> CNI? {
        guard !config.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty,
              let yaml = try? Yams.load(yaml: config) as? [String: Any] else { return nil }
        let backend = yaml["flannel-backend"].map { "\($0)" }
        let noProxy = (yaml["disable-kube-proxy"] as? Bool) ?? ((yaml["disable-kube-proxy"] as? String) == "true")
        let files = manifests.split(separator: "\n").map { ($0 as Substring).split(separator: "/").last.map(String.init) ?? "" }
        return CNI.installed(flannelBackend: backend, disableKubeProxy: noProxy, cniManifests: files)
    }

    /// Pure: why this server's network stack may not change, or nil. The stack is fixed when the cluster is
    /// created; moving between flannel, none, Cilium and Calico would leave pods on two networks.
    public static func cniChangeRefusal(installed: CNI?, wanted: CNI) -> String? {
        guard let installed, installed != wanted else { return nil }
        return """
            this server runs cni = "\(installed.rawValue)" (from /etc/rancher/k3s/config.yaml) and the inventory says \
            "\(wanted.rawValue)": the network stack is fixed when the cluster is created; set cni = \
            "\(installed.rawValue)" again, or rebuild the cluster (fleet reset, then fleet up)
            """
    }

    static func addNetworkFacts(_ s: inout FactScript) {
        s.add("k3s-config", "cat \(K3sConfigFile.path) 2>/dev/null; true")
        s.add("cni-manifests", "ls -1 \(AddonFiles.manifestsDirectory)/fleet-*.yaml 2>/dev/null; true")
    }
}
