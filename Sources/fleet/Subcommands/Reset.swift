import ArgumentParser
import FleetCore
import FleetRemote
import FleetSteps
import Foundation

extension Fleet {
    /// A verb that changes hosts, on the engine: parse the options, build the verb's request,
    /// confirm, then run its playbook through `runLive` (state file, `--json`, Ctrl-C) and map the
    /// summary to an exit status. `upgrade` and `snapshot` follow this shape.
    struct Reset: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Uninstall K3s (agents first, then servers) and remove the files fleet wrote.")

        @OptionGroup var target: InventoryOptions

        @Flag(help: "Do not ask for confirmation.")
        var yes = false

        @Flag(help: "Also remove fleet's files in /etc/sysctl.d (the running values stay until reboot).")
        var sysctl = false

        @Flag(help: "One JSON object per event per line (one task_finished per host and step).")
        var json = false

        @Flag(help: "Show what would run where; change nothing.")
        var dryRun = false

        @Flag(help: "Reset again only the hosts whose last reset did not finish.")
        var retryFailed = false

        @Option(help: "How many agents are reset at once (default: [ssh] forks).")
        var forks: Int?

        func validate() throws {
            if let forks, forks < 1 { throw ValidationError("--forks must be at least 1") }
        }

        func run() throws {
            // A dry run changes nothing: it needs no lock.
            let lock = dryRun ? nil : try lockInventory(target.inventory)
            defer { lock?.release() }
            let inventory = try target.load()
            let request: ResetVerb.Request
            do {
                request = try ResetVerb.Request(inventory: inventory, hosts: target.hosts(in: inventory), sysctl: sysctl)
            } catch {
                printError("\(error)")
                throw ExitCode(2)
            }
            if dryRun {
                do {
                    print(try ResetVerb.dryRun(inventory: inventory, request: request, retryFailed: retryFailed,
                                               defaultPlaybook: defaultPlaybook), terminator: "")
                } catch {
                    printError("\(error)")
                    throw ExitCode(2)
                }
                return
            }
            if !yes { try confirm(request) }
            let json = json
            let summary = try runLive(json: json, plain: { r in "\(r.host) \(r.status.rawValue): \(r.message)\n" }) { reporter, onRunner in
                try ResetVerb.run(inventory: inventory, request: request, retryFailed: retryFailed, forks: forks,
                                  connector: SSHConnector(), reporter: reporter, defaultPlaybook: defaultPlaybook,
                                  lock: lock, onRunner: onRunner)
            }
            if !summary.succeeded { throw failureExit(summary) }
        }

        /// Lists what it would do and asks on a terminal; refuses (exit 2) without one.
        func confirm(_ request: ResetVerb.Request) throws {
            var text = ""
            for h in request.hosts {
                text += "\(h.name) (\(h.role.rawValue)):\n"
                for line in ResetVerb.describe(h, sysctl: sysctl, staying: request.staying) { text += "  \(line)\n" }
            }
            OutputSink.stdout.write(text)
            guard isTerminal(0) else {
                printError("not a terminal: give --yes to reset without asking")
                throw ExitCode(2)
            }
            OutputSink.stdout.write("Reset \(request.hosts.count) host(s)? [y/N] ")
            let answer = (readLine() ?? "").trimmingCharacters(in: .whitespaces).lowercased()
            guard answer == "y" || answer == "yes" else {
                OutputSink.stdout.write("nothing done\n")
                throw ExitCode(1)
            }
        }
    }
}
