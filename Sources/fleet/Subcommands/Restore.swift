import ArgumentParser
import FleetCore
import FleetRemote
import FleetSteps
import Foundation

extension Fleet {
    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restore the cluster's datastore from a snapshot (K3s's cluster-reset procedure).")

        @OptionGroup var target: InventoryOptions

        @Argument(help: "A snapshot file on this machine, or a name `fleet snapshot list` shows.")
        var snapshot: String

        @Flag(help: "Do not ask for confirmation.")
        var yes = false

        @Flag(help: "One JSON object per event per line.")
        var json = false

        @Flag(help: "Show what would run where; change nothing.")
        var dryRun = false

        func run() throws {
            let lock = dryRun ? nil : try lockInventory(target.inventory)
            defer { lock?.release() }
            let inventory = try target.load()
            if target.limit != nil {
                printError("restore takes the whole cluster: --limit is not supported")
                throw ExitCode(2)
            }
            guard let source = RestoreVerb.Source(snapshot) else {
                printError("snapshot \"\(snapshot)\": not a readable file here, nor a snapshot name (letters, digits, '-', '_', '.')")
                throw ExitCode(2)
            }
            if dryRun {
                print(try RestoreVerb.dryRun(inventory: inventory, source: source), terminator: "")
                return
            }
            if !yes {
                for line in RestoreVerb.describe(inventory, source) { OutputSink.stdout.write("  \(line)\n") }
                guard isTerminal(0) else {
                    printError("not a terminal: give --yes to restore without asking")
                    throw ExitCode(2)
                }
                OutputSink.stdout.write("Restore \(inventory.cluster.name) from \(snapshot)? [y/N] ")
                let answer = (readLine() ?? "").trimmingCharacters(in: .whitespaces).lowercased()
                guard answer == "y" || answer == "yes" else {
                    OutputSink.stdout.write("nothing done\n")
                    throw ExitCode(1)
                }
            }
            let json = json
            let summary = try runLive(json: json, plain: { r in "\(r.host) \(r.step) \(r.status.rawValue): \(r.message)\n" }) {
                reporter, onRunner in
                RestoreVerb.run(inventory: inventory, source: source, connector: SSHConnector(), reporter: reporter,
                                onRunner: onRunner)
            }
            if !summary.succeeded { throw failureExit(summary) }
        }
    }
}
