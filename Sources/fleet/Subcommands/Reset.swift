import ArgumentParser
import FleetCore
import FleetRemote
import FleetSteps
import Foundation

extension Fleet {
    struct Reset: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Uninstall K3s (agents first, then servers) and remove the files fleet wrote.")

        @OptionGroup var target: InventoryOptions

        @Flag(help: "Do not ask for confirmation.")
        var yes = false

        @Flag(help: "Also remove fleet's files in /etc/sysctl.d (the running values stay until reboot).")
        var sysctl = false

        func run() throws {
            let inventory = try target.load()
            let hosts = target.hosts(in: inventory)
            if let problem = FleetSteps.Reset.firstServerProblem(inventory, resetting: hosts) {
                printError("refusing to reset: \(problem)")
                throw ExitCode(2)
            }
            // When part of the cluster stays, the reset hosts leave it through a server that stays.
            let staying = FleetSteps.Reset.stayingServer(inventory, resetting: hosts)
            if !yes {
                var text = ""
                for h in hosts {
                    text += "\(h.name) (\(h.role.rawValue)):\n"
                    for line in FleetSteps.Reset.describe(h, sysctl: sysctl, staying: staying) { text += "  \(line)\n" }
                }
                FileHandle.standardOutput.write(Data(text.utf8))
                guard isTerminal(0) else {
                    printError("not a terminal: give --yes to reset without asking")
                    throw ExitCode(2)
                }
                FileHandle.standardOutput.write(Data("Reset \(hosts.count) host(s)? [y/N] ".utf8))
                let answer = (readLine() ?? "").trimmingCharacters(in: .whitespaces).lowercased()
                guard answer == "y" || answer == "yes" else {
                    FileHandle.standardOutput.write(Data("nothing done\n".utf8))
                    throw ExitCode(1)
                }
            }
            let outcomes = FleetSteps.Reset.run(hosts: hosts, connector: SSHConnector(), forks: inventory.ssh.forks,
                                                sysctl: sysctl, staying: staying) { o in
                FileHandle.standardOutput.write(Data((o.line + "\n").utf8))
            }
            let done = outcomes.filter(\.succeeded).map(\.host)
            do {
                try FleetSteps.Reset.forgetInState(inventory: inventory, hosts: done, playbook: defaultPlaybook)
            } catch {
                printError("\(error)")
                throw ExitCode(1)
            }
            if done.count != outcomes.count { throw ExitCode(1) }
        }
    }
}
