import ArgumentParser
import FleetCore
import Foundation

@main
struct Fleet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Bring up IPv6-only K3s clusters over SSH.",
        subcommands: [Up.self, Status.self, Exec.self, AddWorker.self, Kubeconfig.self]
    )
}
