import ArgumentParser
import FleetCore
import FleetRemote
import FleetSteps
import Foundation

extension Fleet {
    struct AddWorker: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-worker",
            abstract: "Add an agent to the inventory and join it, touching no other host.",
            discussion: """
                Appends a [[hosts]] entry (comments and layout kept), then runs the playbook for that host only \
                (the token is read from the first server) and verify on the first server. Running it again \
                changes nothing; it also finishes a host that is listed but never joined.
                Example: fleet add-worker inventory/lab.toml --name lab-5 --address fd42:f1ee:7:1::1:5
                """)

        @Argument(help: "The inventory file (TOML).")
        var inventory: String

        @Option(help: "The node name.")
        var name: String

        @Option(help: "The IPv6 address (or DNS name) SSH connects to.")
        var address: String

        @Option(help: "SSH user (default: [ssh] user).")
        var user: String?

        @Option(help: "SSH port (default: [ssh] port).")
        var port: Int?

        @Option(help: "Private key file (default: [ssh] identity).")
        var identity: String?

        @Option(name: .customLong("node-ip"), help: "The node's IPv6 address in the cluster (default: --address).")
        var nodeIP: String?

        @Option(help: "The playbook file.")
        var playbook: String = defaultPlaybook

        @Flag(help: "JSON Lines events on stdout instead of the live view.")
        var json = false

        func validate() throws {
            if let port, !(1...65535).contains(port) { throw ValidationError("--port must be from 1 to 65535") }
        }

        func run() throws {
            let lock = try lockInventory(inventory)
            defer { lock.release() }
            let request = AddWorkerVerb.Request(inventoryPath: inventory, name: name, address: address,
                                                       user: user, port: port, identity: identity, nodeIP: nodeIP)
            let inv: Inventory
            do {
                let (loaded, added) = try AddWorkerVerb.append(request, lock: lock)
                inv = loaded
                printError(added ? "\(inventory): added \(name) [\(address)]" : "\(inventory): \(name) is already listed")
            } catch {
                printError("\(error)")
                throw ExitCode(2)
            }
            for w in inv.warnings { printError("\(w)") }
            let book = try loadPlaybook(playbook, inventory: inv)
            let summaries = try runLive(json: json) { reporter, onRunner in
                try AddWorkerVerb.run(inventory: inv, playbook: book, worker: name, connector: SSHConnector(),
                                             reporter: reporter, lock: lock, onRunner: onRunner)
            }
            if let bad = summaries.first(where: { !$0.succeeded }) { throw failureExit(bad) }
        }
    }
}
