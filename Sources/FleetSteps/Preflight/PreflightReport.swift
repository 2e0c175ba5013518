import FleetCore
import Foundation

/// One problem preflight found: what was checked (`node_ip`, `default_route`, …), the problem, its fix.
public struct PreflightFinding: Sendable, Equatable {
    public var check: String
    public var problem: String
    public var fix: String

    /// `problem: fix`, as the step prints it.
    public var text: String { fix.isEmpty ? problem : problem + ": " + fix }
}

/// The verdict: failures (each with its fix), warnings, and what was found fine.
public struct PreflightReport: Sendable, Equatable {
    public var failureFindings: [PreflightFinding] = []
    public var warningFindings: [PreflightFinding] = []
    public var passed: [String] = []

    public var failures: [String] { failureFindings.map(\.text) }
    public var warnings: [String] { warningFindings.map(\.text) }

    mutating func fail(_ check: String, _ problem: String, _ fix: String) {
        failureFindings.append(PreflightFinding(check: check, problem: problem, fix: fix))
    }

    mutating func warn(_ check: String, _ problem: String, _ fix: String = "") {
        warningFindings.append(PreflightFinding(check: check, problem: problem, fix: fix))
    }
}
