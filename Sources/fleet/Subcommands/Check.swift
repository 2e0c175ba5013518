import ArgumentParser
import FleetCore
import FleetRemote
import FleetSteps
import Foundation

extension Fleet {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find everything `up` would refuse, on every host, without changing anything.")

        @Argument(help: "The inventory file (TOML).")
        var inventory: String

        @Flag(help: "Also check Longhorn's node prerequisites (what playbooks/storage.toml installs).")
        var storage = false

        @Flag(help: "One JSON object per finding per line.")
        var json = false

        /// One finding as printed: a JSON object or `HOST SEVERITY: …`, with its newline.
        static func text(_ f: CheckFinding, json: Bool) -> String {
            (json ? f.jsonLine : f.line) + "\n"
        }

        func emit(_ f: CheckFinding) {
            OutputSink.stdout.write(Self.text(f, json: json))
        }

        func run() throws {
            let inv: Inventory
            do {
                inv = try Inventory.load(path: inventory, defaultSSHConfig: userSSHConfig)
            } catch let errors as InventoryErrors {
                CheckVerb.inventoryErrorFindings(errors).forEach(emit)
                throw ExitCode(2)
            } catch {
                emit(CheckFinding(host: "inventory", severity: .error, check: "inventory", message: "\(error)",
                                  fix: "correct the inventory"))
                throw ExitCode(2)
            }
            var findings = CheckVerb.inventoryFindings(inv)
            findings.forEach(emit)
            // Where each host's connection settings came from ([ssh], the host, an ssh config, defaults).
            if !json {
                for host in inv.hosts { printError("\(host.name) connection: \(host.ssh.originsLine(address: host.address))") }
            }
            let json = json
            var handler: InterruptHandler?
            let interrupted = Locked(false)
            findings += CheckVerb.run(inventory: inv, hosts: inv.hosts, connector: SSHConnector(),
                                      forks: inv.ssh.forks, storage: storage, onHost: { host, found in
                var text = found.map { Self.text($0, json: json) }.joined()
                if found.isEmpty, !json { text = "\(host.name) ok: ready for up\n" }
                OutputSink.stdout.write(text)
            }, onRunner: { runner in
                handler = InterruptHandler { interrupted.withLock { $0 = true }; runner.interrupt() }
            })
            _ = handler
            let errors = findings.filter { $0.severity == .error }.count
            let warnings = findings.count - errors
            if !json { printError("\(inv.hosts.count) host(s): \(errors) error(s), \(warnings) warning(s)") }
            if interrupted.withLock({ $0 }) { throw ExitCode(130) }
            if errors > 0 { throw ExitCode(1) }
        }
    }
}
