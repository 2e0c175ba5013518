import FleetCore
import Foundation

/// A snapshot of the cluster's datastore, taken on the first server and copied to this machine.
///
/// Embedded etcd: `k3s etcd-snapshot save --name NAME` (K3s names the file
/// `NAME-<node>-<unix time>` in `server/db/snapshots`). One server with SQLite: a consistent copy
/// of `server/db/state.db` (`sqlite3 .backup` when sqlite3 is there, else K3s stopped for the copy
/// and started again). The file is fetched beside the state file
/// (`.fleet/snapshots/<cluster>/`) with a `.sha256` beside it, checked against the server's.
public enum DatastoreSnapshot {
    public static let directory = "/var/lib/rancher/k3s/server/db/snapshots"
    public static let etcdDirectory = "/var/lib/rancher/k3s/server/db/etcd"
    public static let sqliteFile = "/var/lib/rancher/k3s/server/db/state.db"

    /// Where snapshots of this inventory's cluster are kept on this machine.
    public static func localDirectory(_ inventory: Inventory) -> String {
        let state = RunState.path(forInventory: inventory.path)
        return ((state as NSString).deletingLastPathComponent as NSString)
            .appendingPathComponent("snapshots/\(inventory.cluster.name)")
    }

    /// The name an upgrade gives its snapshot: `fleet-pre-v1.32.3-k3s1` (K3s allows no `+`).
    public static func preUpgradeName(_ version: K3sVersion) -> String {
        "fleet-pre-" + version.description.replacingOccurrences(of: "+", with: "-")
    }

    /// A snapshot name K3s and a file system both accept.
    public static func validName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 100 && name.first != "-"
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    /// The path in K3s's output line `Saving etcd snapshot to PATH` (pure).
    public static func savedPath(_ output: String) -> String? {
        for line in output.split(separator: "\n").reversed() {
            guard let r = line.range(of: "Saving etcd snapshot to ") else { continue }
            let rest = line[r.upperBound...]
            let path = rest.prefix { $0 != "\"" && $0 != " " }
            if path.hasPrefix("/") { return String(path) }
        }
        return nil
    }

    /// `k3s etcd-snapshot save`, printing its log (stderr) on stdout so the path can be read.
    static func etcdSaveCommand(_ name: String) -> String {
        "\(K3sInstall.binaryPath) etcd-snapshot save --name \(shellQuote(name)) </dev/null 2>&1"
    }

    /// A consistent copy of the SQLite datastore to `path`.
    static func sqliteCopyCommand(to path: String) -> String {
        let db = shellQuote(sqliteFile)
        let dest = shellQuote(path)
        return "mkdir -p \(shellQuote(directory)) && if command -v sqlite3 >/dev/null 2>&1; then "
            + "sqlite3 \(db) \".backup '\(path)'\"; else systemctl stop k3s && cp -- \(db) \(dest); rc=$?; "
            + "systemctl start k3s; exit $rc; fi"
    }

    /// Takes the snapshot on the host `ctx` is connected to, fetches it and returns a message.
    static func take(name: String, _ ctx: TaskContext) throws -> (remote: String, local: String, sha: String) {
        let probe = try ctx.run("test -d \(shellQuote(etcdDirectory)) && echo etcd; test -f \(shellQuote(sqliteFile)) && echo sqlite; true")
        let kinds = probe.stdoutText.split(separator: "\n").map(String.init)
        var remote: String
        if kinds.contains("etcd") {
            let r = try ctx.runChecked(etcdSaveCommand(name), "k3s etcd-snapshot save")
            if let path = savedPath(r.stdoutText) {
                remote = path
            } else {
                // Not in its log: the newest file K3s named after NAME.
                let ls = try ctx.run("ls -1t -- \(shellQuote(directory))/\(shellQuote(name))-* 2>/dev/null | head -n 1")
                let path = ls.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
                guard path.hasPrefix("/") else {
                    throw TaskFailure("k3s etcd-snapshot save ran, but no \(name)-* file is in \(directory)", result: r)
                }
                remote = path
            }
        } else if kinds.contains("sqlite") {
            remote = (directory as NSString).appendingPathComponent("\(name)-\(ctx.host.name)-\(Int(Date().timeIntervalSince1970)).db")
            try ctx.runChecked(sqliteCopyCommand(to: remote), "copying the SQLite datastore")
        } else {
            throw TaskFailure("no datastore on \(ctx.host.name): neither \(etcdDirectory) nor \(sqliteFile) exists "
                + "(is K3s installed here?)")
        }
        let (local, sha) = try fetch(remote, ctx)
        return (remote, local, sha)
    }

    /// Copies a snapshot file from the host to ``localDirectory(_:)``, checks its SHA-256 against
    /// the host's, and writes `<file>.sha256` beside it.
    static func fetch(_ remote: String, _ ctx: TaskContext) throws -> (local: String, sha: String) {
        let shaOut = try ctx.runChecked("sha256sum -- \(shellQuote(remote))", "hashing \(remote)")
        let remoteSHA = String(shaOut.stdoutText.prefix { $0 != " " })
        guard let data = try ctx.connection.download(remote, timeout: ctx.commandTimeout) else {
            throw TaskFailure("\(remote) does not exist on \(ctx.host.name)")
        }
        let sha = sha256Hex(data)
        guard sha == remoteSHA else {
            throw TaskFailure("the copy of \(remote) has SHA-256 \(sha), the server's file \(remoteSHA): not kept")
        }
        let dir = localDirectory(ctx.inventory)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let file = (remote as NSString).lastPathComponent
        let local = (dir as NSString).appendingPathComponent(file)
        do {
            try AtomicFile.write(data, to: local, mode: 0o600)
            try AtomicFile.write(Data("\(sha)  \(file)\n".utf8), to: local + ".sha256", mode: 0o600)
        } catch let f as AtomicFile.Failure {
            throw TaskFailure("cannot write \(local): \(f.reason)")
        }
        return (local, sha)
    }
}

/// A snapshot step: saved on the host it runs on (the first server) and fetched to this machine.
public struct DatastoreSnapshotAction: Action {
    public var name: String

    public init(name: String) { self.name = name }

    public func inputs(host: FleetCore.Host, inventory: Inventory) -> [String: String] { ["name": name] }

    public func describe(_ vars: TemplateVariables) -> [String] {
        ["etcd: k3s etcd-snapshot save --name \(name); one SQLite server: a consistent copy of \(DatastoreSnapshot.sqliteFile)",
         "fetch it to .fleet/snapshots/\(vars["cluster.name"])/ beside the state file, with its sha256"]
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        let s = try DatastoreSnapshot.take(name: name, ctx)
        return .changed("saved \(s.remote), fetched to \(s.local) (sha256 \(s.sha))")
    }
}
