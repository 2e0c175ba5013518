import Foundation
import XCTest

/// FleetCore is the engine: hosts, `[ssh]`, playbooks, the runner. The K3s settings live in FleetSteps
/// (its `InventorySchema`), so no K3s type, key or path may appear in FleetCore's sources.
final class EngineKnowsNoK3sTests: XCTestCase {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Sources/FleetCore")

    /// K3s words: the product, its sections' keys and types, its paths, its secrets and its parts.
    static let k3sWords = [
        "k3s", "cluster_cidr", "service_cidr", "cluster_dns", "clusterconfig", "node_ip", "nodeip", "ra_interface",
        "rainterface", "tls_san", "registration_address", "flannel", "etcd", "airgap", "kubelet", "preflight", "token",
        "rancher",
    ]

    func testNoK3sNameInFleetCore() throws {
        let files = FileManager.default.enumerator(at: Self.sources, includingPropertiesForKeys: nil)?
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" } ?? []
        XCTAssertGreaterThan(files.count, 20, "found FleetCore's sources at \(Self.sources.path)")
        var found: [String] = []
        for file in files {
            let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            for (number, line) in lines.enumerated() {
                let lowered = line.lowercased()
                for word in Self.k3sWords where lowered.contains(word) {
                    found.append("\(file.lastPathComponent):\(number + 1): \"\(word)\" in: \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        XCTAssertEqual(found, [], "K3s names in FleetCore:\n" + found.joined(separator: "\n"))
    }
}
