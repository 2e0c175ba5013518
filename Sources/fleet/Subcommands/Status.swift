import ArgumentParser
import FleetCore
import FleetRemote
import Foundation

extension Fleet {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Per host and step: what happened last, and whether the host answers now.")

        @OptionGroup var target: InventoryOptions

        @Option(help: "The playbook whose steps to list.")
        var playbook: String = defaultPlaybook

        @Flag(help: "One JSON document.")
        var json = false

        func run() throws {
            let inventory = try target.load()
            let book = try? loadPlaybook(playbook, inventory: inventory)
            let state: RunState?
            do { state = try RunState.load(path: RunState.path(forInventory: inventory.path)) } catch {
                printError("\(error)"); throw ExitCode(2)
            }
            var handler: InterruptHandler?
            let report = StatusReport.make(inventory: inventory, playbook: book, state: state,
                                           connector: SSHConnector(), forks: inventory.ssh.forks,
                                           onRunner: { runner in handler = InterruptHandler { runner.interrupt() } })
            _ = handler
            if json {
                let e = JSONEncoder()
                e.dateEncodingStrategy = .iso8601
                e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                print(String(decoding: try e.encode(report), as: UTF8.self))
            } else {
                print(report.text, terminator: "")
            }
            if !report.healthy { throw ExitCode(1) }
        }
    }
}
