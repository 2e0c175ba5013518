import FleetCore
import Foundation

/// The hosts a cluster will pull from (images and charts), derived from what it runs: K3s's own images, the CNI,
/// the add-ons and their chart repositories, and the mirrors in `[registries]` standing in for a registry.
public struct ImageHost: Sendable, Equatable, Encodable {
    /// The DNS name looked up (for AAAA records only; nothing connects to it).
    public var name: String
    /// What the cluster fetches there, for the message.
    public var purpose: String
}

public enum ImageHosts {
    /// The DNS name behind a registry name (`docker.io` pulls from `registry-1.docker.io`), without a port.
    static func lookupName(_ registry: String) -> String {
        let host = registry == "docker.io" ? "registry-1.docker.io" : registry
        if host.hasPrefix("[") { return host }
        return String(host.split(separator: ":").first ?? Substring(host))
    }

    /// Pure: every host, once, in a stable order. `systemImages`: K3s's own images come from a registry (not an
    /// air-gap tarball).
    public static func derive(_ inventory: Inventory, systemImages: Bool) -> [ImageHost] {
        var wants: [(registry: String, purpose: String)] = []
        if systemImages { wants.append(("docker.io", "K3s's system images (rancher/*)")) }
        switch inventory.cluster.cni {
        case .cilium: wants.append(("quay.io", "Cilium's images (quay.io/cilium)"))
        case .calico:
            wants.append(("quay.io", "the Tigera operator's image (quay.io/tigera)"))
            wants.append(("docker.io", "Calico's images (calico/*)"))
        case .flannel, .none: break
        }
        var charts: [ImageHost] = []
        for a in Addons.effective(inventory) {
            if a.kind == "longhorn" { wants.append(("docker.io", "Longhorn's images (longhornio/*)")) }
            if a.kind == "velero" { wants.append(("docker.io", "Velero's images (velero/*)")) }
            if case .repo(let url, _) = a.source {
                charts.append(ImageHost(name: StorageAddons.hostOf(url), purpose: "the chart repository of [addons.\(a.name)]"))
            }
        }
        let mirrors = inventory.registries.mirrors
        var out: [ImageHost] = []
        func add(_ h: ImageHost) {
            if let i = out.firstIndex(where: { $0.name == h.name }) {
                if !out[i].purpose.contains(h.purpose) { out[i].purpose += ", " + h.purpose }
            } else {
                out.append(h)
            }
        }
        for w in wants {
            let endpoints = (mirrors[w.registry] ?? mirrors["*"])?.endpoints ?? []
            if endpoints.isEmpty {
                add(ImageHost(name: lookupName(w.registry), purpose: w.purpose))
            } else {
                for e in endpoints { add(ImageHost(name: lookupName(StorageAddons.hostOf(e)), purpose: "the mirror of \(w.registry) for \(w.purpose)")) }
            }
        }
        charts.forEach(add)
        return out.filter { IPv6Address($0.name.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))) == nil }
    }
}
