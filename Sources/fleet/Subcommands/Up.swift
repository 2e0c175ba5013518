import ArgumentParser
import FleetCore
import FleetRemote
import Foundation

extension Fleet {
    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the playbook on the inventory. Safe to run again: steps check before they change.")

        @OptionGroup var target: InventoryOptions

        @Option(help: "The playbook file.")
        var playbook: String = defaultPlaybook

        @Option(help: "How many hosts work at once (default: [ssh] forks).")
        var forks: Int?

        @Flag(help: "JSON Lines events on stdout instead of the live view.")
        var json = false

        @Flag(help: "Show what would run where, with rendered commands; change nothing.")
        var dryRun = false

        @Flag(help: "Rerun only what failed, was blocked, unreachable or interrupted last time, and what never ran.")
        var retryFailed = false

        func validate() throws {
            if let forks, forks < 1 { throw ValidationError("--forks must be at least 1") }
        }

        func run() throws {
            // A dry run changes nothing: it needs no lock.
            let lock = dryRun ? nil : try lockInventory(target.inventory)
            defer { lock?.release() }
            let inventory = try target.load()
            let book = try loadPlaybook(playbook, inventory: inventory)
            let options = PlaybookRun.Options(limit: target.limitSet, forks: forks, retryFailed: retryFailed)
            guard let lock else {
                print(try PlaybookRun.dryRun(inventory: inventory, playbook: book, options: options), terminator: "")
                return
            }
            let summary = try runLive(json: json) { reporter, onRunner in
                try PlaybookRun.run(inventory: inventory, playbook: book, options: options, connector: SSHConnector(),
                                    reporter: reporter, lock: lock, onRunner: onRunner)
            }
            if !summary.succeeded { throw failureExit(summary) }
        }
    }
}

/// Finds a playbook: as given, else beside the inventory's folder (`inventory/../playbooks/…`).
func loadPlaybook(_ path: String, inventory: Inventory) throws -> Playbook {
    var candidates = [path]
    if !path.hasPrefix("/") {
        let invDir = (inventory.path as NSString).deletingLastPathComponent
        candidates.append(((invDir as NSString).deletingLastPathComponent as NSString).appendingPathComponent(path))
    }
    guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
        printError("playbook \(path): no such file")
        throw ExitCode(2)
    }
    do {
        let book = try Playbook.load(path: found, registry: actionRegistry)
        try book.check(against: inventory)
        return book
    } catch {
        printError("\(error)")
        throw ExitCode(2)
    }
}

/// Runs `body` with the right reporter (JSON Lines; else the verb's own line per finished task when
/// it gives `plain`; else the live view on a terminal, plain lines otherwise) and Ctrl-C stopping
/// the runner it is handed; an error thrown by `body` (the state file) exits 2.
/// Shared by the verbs that change hosts: `up`, `add-worker`, `reset`.
func runLive<T>(json: Bool, plain: (@Sendable (TaskResult) -> String)? = nil,
                _ body: (Reporter, @escaping (Runner) -> Void) throws -> T) throws -> T {
    let reporter: Reporter
    if json {
        reporter = JSONLinesReporter()
    } else if let plain {
        reporter = EachResultReporter { r in OutputSink.stdout.write(plain(r)) }
    } else {
        reporter = isTerminal(1) ? TerminalReporter() as Reporter : PlainReporter()
    }
    var handler: InterruptHandler?
    defer { _ = handler }
    do {
        return try body(reporter) { runner in handler = InterruptHandler { runner.interrupt() } }
    } catch {
        printError("\(error)")
        throw ExitCode(2)
    }
}

/// The exit status of a run that did not succeed: 130 when interrupted, 2 when a step refused what
/// was asked (a version change is `upgrade`'s job), else 1.
func failureExit(_ summary: RunSummary) -> ExitCode {
    ExitCode(summary.interrupted ? 130 : (summary.refused ? 2 : 1))
}
