import ArgumentParser
import FleetCore
import Foundation
import Logging

@main
struct Fleet: ParsableCommand {
    static func main() {
        ProcessSetup.apply()
        raiseOpenFileLimit()
        // Logs go to stderr; FLEET_LOG=info|debug|trace turns them up (default: warnings only).
        let level = ProcessInfo.processInfo.environment["FLEET_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Bring up IPv6-only K3s clusters over SSH.",
        subcommands: [Up.self, Check.self, Status.self, Exec.self, AddWorker.self, Kubeconfig.self, Reset.self,
                      Upgrade.self, Snapshot.self, Restore.self]
    )
}
