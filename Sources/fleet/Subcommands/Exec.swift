import ArgumentParser
import FleetCore
import FleetRemote
import Foundation

extension Fleet {
    struct Exec: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run one command on every host at once.",
            discussion: "Example: fleet exec inventory/lab.toml -- hostname")

        @OptionGroup var target: InventoryOptions

        @Flag(help: "One JSON object per host per line.")
        var json = false

        @Option(help: "How many hosts at once (default: [ssh] forks).")
        var forks: Int?

        @Option(help: "Seconds before the command is stopped (default: [ssh] command_timeout).")
        var timeout: Double?

        @Argument(parsing: .postTerminator, help: "The command, after --.")
        var command: [String] = []

        func validate() throws {
            if command.isEmpty { throw ValidationError("give the command after --, e.g. fleet exec inventory.toml -- hostname") }
            if let forks, forks < 1 { throw ValidationError("--forks must be at least 1") }
        }

        func run() throws {
            if let timeout, let problem = Seconds.problem(timeout) {
                printError("--timeout: \(problem)")
                throw ExitCode(2)
            }
            let inventory = try target.load()
            let json = json
            var handler: InterruptHandler?
            let (results, interrupted) = ExecVerb.run(
                command: command.joined(separator: " "), inventory: inventory, hosts: target.hosts(in: inventory),
                forks: forks ?? inventory.ssh.forks, timeout: timeout, connector: SSHConnector(),
                onResult: { r in OutputSink.stdout.write(((json ? r.jsonLine : r.human) + "\n")) },
                onRunner: { runner in handler = InterruptHandler { runner.interrupt() } })
            _ = handler
            if interrupted { throw ExitCode(130) }
            if !results.allSatisfy({ $0.status == "ok" }) { throw ExitCode(1) }
        }
    }
}
