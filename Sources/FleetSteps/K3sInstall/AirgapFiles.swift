import Foundation

/// Files taken from `[k3s] airgap_dir` (hashed and read through `LocalFile`: the binary is ~70 MB).
public enum AirgapFiles {
    /// Image tarballs K3s imports at start (`k3s-airgap-images-<arch>.tar.zst`, `.tar.gz`, `.tar`).
    public static func images(in directory: String?) -> [String] {
        guard let directory, let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return names.filter { name in
            name.hasPrefix("k3s-airgap-images-") && [".tar.zst", ".tar.gz", ".tar"].contains { name.hasSuffix($0) }
        }.sorted()
    }
}
