import FleetCore
import Foundation

/// `fleet snapshot INVENTORY save|list|fetch NAME`, on the first server: save a snapshot of the
/// datastore (and copy it here), list what K3s lists, or copy one of them here. Each is a one-step
/// playbook on the runner; the state file is left alone.
public enum SnapshotVerb {
    public enum Operation: Sendable, Equatable {
        case save(String)
        case list
        case fetch(String)
    }

    public static let step = "snapshot"

    /// Lists the first server's snapshots (K3s's own table), handed to `record`.
    struct ListAction: Action {
        let record: @Sendable (String) -> Void

        func inputs(host: FleetCore.Host, inventory: Inventory) -> [String: String] { [:] }
        func describe(_ vars: TemplateVariables) -> [String] { ["k3s etcd-snapshot ls"] }

        func run(_ ctx: TaskContext) throws -> ActionOutcome {
            let r = try ctx.runChecked("\(K3sInstall.binaryPath) etcd-snapshot ls </dev/null", "k3s etcd-snapshot ls")
            record(r.stdoutText)
            let count = max(0, r.stdoutText.split(separator: "\n").count - 1)
            return .ok("\(count) snapshot(s)")
        }
    }

    /// Copies `directory/NAME` from the first server here.
    struct FetchAction: Action {
        let name: String

        func inputs(host: FleetCore.Host, inventory: Inventory) -> [String: String] { ["name": name] }
        func describe(_ vars: TemplateVariables) -> [String] {
            ["copy \(DatastoreSnapshot.directory)/\(name) to .fleet/snapshots/\(vars["cluster.name"])/ with its sha256"]
        }

        func run(_ ctx: TaskContext) throws -> ActionOutcome {
            let remote = (DatastoreSnapshot.directory as NSString).appendingPathComponent(name)
            let (local, sha) = try DatastoreSnapshot.fetch(remote, ctx)
            return .changed("fetched \(remote) to \(local) (sha256 \(sha))")
        }
    }

    /// Why the name is refused, or nil.
    public static func nameProblem(_ name: String) -> String? {
        DatastoreSnapshot.validName(name) ? nil
            : "snapshot name \"\(name)\": use letters, digits, '-', '_' and '.', not starting with '-' (at most 100)"
    }

    /// Runs the operation; `listing` gets K3s's table for `list`.
    public static func run(inventory: Inventory, operation: Operation, connector: Connector, reporter: Reporter,
                           listing: @escaping @Sendable (String) -> Void = { _ in },
                           onRunner: (Runner) -> Void = { _ in }) -> RunSummary {
        let action: any Action
        switch operation {
        case .save(let name): action = DatastoreSnapshotAction(name: name)
        case .list: action = ListAction(record: listing)
        case .fetch(let name): action = FetchAction(name: name)
        }
        let book = Playbook(name: "snapshot", path: "snapshot", steps: [
            Step(name: step, target: .firstServer, actionName: "snapshot", action: action),
        ])
        return PlaybookRun.runReadOnly(inventory: inventory, playbook: book, command: "snapshot", connector: connector,
                                       reporter: reporter, onRunner: onRunner)
    }
}
