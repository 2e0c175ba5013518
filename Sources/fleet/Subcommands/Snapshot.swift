import ArgumentParser
import FleetCore
import FleetRemote
import FleetSteps
import Foundation

extension Fleet {
    struct Snapshot: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Save, list or fetch snapshots of the cluster's datastore (on the first server).")

        @OptionGroup var target: InventoryOptions

        @Argument(help: "save [NAME] | list | fetch NAME")
        var operation: String

        @Argument(help: "The snapshot's name (save: a prefix, default \"fleet\"; fetch: a name list shows).")
        var name: String?

        @Flag(help: "One JSON object per event per line.")
        var json = false

        func validate() throws {
            switch operation {
            case "save", "list", "fetch": break
            default: throw ValidationError("unknown operation \"\(operation)\": use save, list or fetch")
            }
            if operation == "fetch" && name == nil { throw ValidationError("fetch needs the snapshot's NAME (see list)") }
            if operation == "list" && name != nil { throw ValidationError("list takes no NAME") }
            if let name, let problem = SnapshotVerb.nameProblem(name) { throw ValidationError(problem) }
        }

        func run() throws {
            let lock = operation == "list" ? nil : try lockInventory(target.inventory)
            defer { lock?.release() }
            let inventory = try target.load()
            let op: SnapshotVerb.Operation
            switch operation {
            case "save": op = .save(name ?? "fleet")
            case "fetch": op = .fetch(name!)
            default: op = .list
            }
            let table = Locked("")
            let json = json
            let summary = try runLive(json: json, plain: { r in
                r.status.succeeded && op == .list ? "" : "\(r.host) \(r.status.rawValue): \(r.message)\n"
            }) { reporter, onRunner in
                SnapshotVerb.run(inventory: inventory, operation: op, connector: SSHConnector(), reporter: reporter,
                                 listing: { text in table.withLock { $0 = text } }, onRunner: onRunner)
            }
            if op == .list && !json { OutputSink.stdout.write(table.withLock { $0 }) }
            if !summary.succeeded { throw failureExit(summary) }
        }
    }
}
