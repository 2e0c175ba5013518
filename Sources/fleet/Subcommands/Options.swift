import ArgumentParser
import FleetCore
import FleetRemote
import FleetSteps
import Foundation

/// The inventory argument every verb takes.
struct InventoryOptions: ParsableArguments {
    @Argument(help: "The inventory file (TOML).")
    var inventory: String

    @Option(name: .long, help: "Only these hosts (comma-separated names).")
    var limit: String?

    var limitSet: Set<String>? {
        limit.map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }) }
    }

    /// The inventory's hosts that `--limit` names (all without it), in inventory order.
    func hosts(in inventory: Inventory) -> [FleetCore.Host] {
        guard let names = limitSet else { return inventory.hosts }
        return inventory.hosts.filter { names.contains($0.name) }
    }

    /// Loads and validates the inventory; prints warnings to stderr; exits 2 on errors.
    func load() throws -> Inventory {
        let inv: Inventory
        do {
            inv = try Inventory.load(path: inventory, defaultSSHConfig: userSSHConfig)
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
        for w in inv.warnings { printError("\(w)") }
        if let limit = limitSet {
            let unknown = limit.filter { inv.host(named: $0) == nil }.sorted()
            if !unknown.isEmpty {
                printError("\(inventory): --limit names unknown host(s): \(unknown.joined(separator: ", "))")
                throw ExitCode(2)
            }
        }
        return inv
    }
}

/// Takes the inventory's lock before a verb that changes hosts or files reads anything else; another
/// fleet process holding it makes this one print "<inventory>: in use by pid N" and exit 2, untouched.
func lockInventory(_ inventory: String) throws -> InventoryLock {
    do {
        return try InventoryLock.acquire(inventory: inventory)
    } catch {
        printError("\(error)")
        throw ExitCode(2)
    }
}

/// The OpenSSH client config the CLI reads when the inventory's `[ssh] config` is unset (only if it exists).
let userSSHConfig: String = {
    let home = ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
    return home + "/.ssh/config"
}()

/// The playbook `up`, `status` and `add-worker` use unless told otherwise.
let defaultPlaybook = "playbooks/k3s-ipv6.toml"

func printError(_ text: String) {
    OutputSink.stderr.write(text + "\n")
}

/// Every action a playbook may name: the built-in ones and the K3s steps.
var actionRegistry: ActionRegistry { K3sActions.registry }

func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

/// Stops the runner on SIGINT, SIGTERM and SIGHUP (a closed terminal): running tasks end `interrupted`, the state is saved.
final class InterruptHandler: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []

    init(_ onSignal: @escaping @Sendable () -> Void) {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler {
                printError("\ninterrupted: stopping running tasks and saving the state…")
                onSignal()
            }
            src.resume()
            sources.append(src)
        }
    }

    deinit {
        for s in sources { s.cancel() }
    }
}
