import Foundation

/// A K3s release, `vMAJOR.MINOR.PATCH+k3sN` (e.g. `v1.31.5+k3s1`), ordered by its numbers.
///
/// The one place a K3s version is read: `[cluster] k3s_version`, `k3s --version` on a host, and
/// what `check` compares.
public struct K3sVersion: Comparable, Hashable, Sendable, CustomStringConvertible, Encodable {
    public let major: Int
    public let minor: Int
    public let patch: Int
    /// The `N` of `+k3sN`: K3s's own rebuilds of one Kubernetes release.
    public let revision: Int

    /// K3s runs IPv6-only (single-stack) clusters from this release on.
    public static let firstIPv6Only = K3sVersion(major: 1, minor: 22, patch: 9, revision: 1)

    public init(major: Int, minor: Int, patch: Int, revision: Int) {
        self.major = major
        self.minor = minor
        self.patch = patch
        self.revision = revision
    }

    /// Parses `vMAJOR.MINOR.PATCH+k3sN`; nil for any other shape (a channel name, a missing `v`, …).
    public init?(_ text: String) {
        guard text.hasPrefix("v") else { return nil }
        let halves = text.dropFirst().split(separator: "+", omittingEmptySubsequences: false)
        guard halves.count == 2, halves[1].hasPrefix("k3s") else { return nil }
        let numbers = halves[0].split(separator: ".", omittingEmptySubsequences: false)
        guard numbers.count == 3 else { return nil }
        var parts: [Int] = []
        for piece in numbers + [halves[1].dropFirst(3)] {
            guard !piece.isEmpty, piece.count <= 9, piece.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(piece)
            else { return nil }
            parts.append(value)
        }
        self.init(major: parts[0], minor: parts[1], patch: parts[2], revision: parts[3])
    }

    /// The version in `k3s --version`'s first line (`k3s version v1.31.5+k3s1 (56ec5dd4)`).
    public init?(versionOutput text: String) {
        let words = (text.split(separator: "\n").first ?? "").split(separator: " ")
        guard words.count >= 3, words[0] == "k3s", words[1] == "version" else { return nil }
        self.init(String(words[2]))
    }

    /// The minor release, `v1.31`: what Kubernetes' skew rules count in.
    public var minorRelease: String { "v\(major).\(minor)" }

    public var description: String { "v\(major).\(minor).\(patch)+k3s\(revision)" }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public static func < (a: K3sVersion, b: K3sVersion) -> Bool {
        (a.major, a.minor, a.patch, a.revision) < (b.major, b.minor, b.patch, b.revision)
    }
}
