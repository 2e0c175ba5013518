import FleetCore
import Foundation

/// Reads and validates `[k3s]`: where K3s comes from.
enum K3sSection {
    static let keys = ["source", "airgap_dir"]

    static let section = InventorySection(name: "k3s", keys: keys) { reader, table in read(&reader, table) }

    static func read(_ r: inout InventoryReader, _ t: InventoryTable) {
        let before = r.errorCount
        var source = K3sSource.script
        if case .present(let value) = r.enumeration(t, "source", K3sSource.self) { source = value }
        let airgapDir = r.path(t, "airgap_dir").value
        switch source {
        case .airgap where r.errorCount == before:
            checkAirgapDirectory(&r, t, airgapDir)
        case .script where airgapDir != nil:
            r.warn(t, "airgap_dir", "is ignored unless source = \"airgap\"")
        default: break
        }
        if r.errorCount == before { r.sections[K3sConfig.self] = K3sConfig(source: source, airgapDir: airgapDir) }
    }

    static func checkAirgapDirectory(_ r: inout InventoryReader, _ t: InventoryTable, _ directory: String?) {
        guard let directory else {
            r.fail(t, "airgap_dir", """
                is required when source = "airgap": a directory on this machine holding k3s, install.sh and \
                k3s-airgap-images-<arch>.tar.zst
                """)
            return
        }
        if let problem = airgapProblem(directory) {
            r.fail(t, "airgap_dir", problem)
        } else if !hasImages(directory) {
            r.warn(key: "k3s.airgap_dir", """
                "\(directory)" has no k3s-airgap-images-<arch>.tar.zst (or .tar.gz/.tar): nodes will have to pull \
                system images from registries
                """)
        }
    }

    /// Why `directory` cannot be the air-gap source, or nil.
    static func airgapProblem(_ directory: String) -> String? {
        let files = FileManager.default
        var isDirectory: ObjCBool = false
        guard files.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            return "\"\(directory)\" does not exist; it must hold k3s and install.sh for source = \"airgap\""
        }
        guard isDirectory.boolValue else { return "\"\(directory)\" is not a directory" }
        var missing: [String] = []
        for name in ["k3s", "install.sh"] {
            var entryIsDirectory: ObjCBool = false
            let entry = (directory as NSString).appendingPathComponent(name)
            if !files.fileExists(atPath: entry, isDirectory: &entryIsDirectory) || entryIsDirectory.boolValue {
                missing.append(name)
            }
        }
        if !missing.isEmpty {
            return "\"\(directory)\" lacks \(missing.joined(separator: " and ")); source = \"airgap\" copies k3s and install.sh from it"
        }
        return nil
    }

    /// Some entry is named like an images tarball.
    static func hasImages(_ directory: String) -> Bool {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return entries.contains { $0.hasPrefix("k3s-airgap-images-") }
    }
}
