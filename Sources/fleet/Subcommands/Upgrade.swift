import ArgumentParser
import FleetCore
import FleetRemote
import FleetSteps
import Foundation

extension Fleet {
    struct Upgrade: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Upgrade K3s: a snapshot first, servers one at a time, agents drained in batches.")

        @OptionGroup var target: InventoryOptions

        @Option(help: "The release to go to, e.g. v1.32.3+k3s1.")
        var to: String

        @Option(help: "A folder with the new release's k3s, install.sh and images (else the install script downloads it).")
        var airgapDir: String?

        @Option(help: "Agents upgraded at once: a number or a percentage (default 10%, at least 1).")
        var batch: String = "10%"

        @Flag(help: "Cordon agents but do not evict their pods.")
        var noDrain = false

        @Option(help: "Seconds a drain may take before the agent is left cordoned and the upgrade stops.")
        var drainTimeout: Int = 300

        @Option(help: "Seconds each evicted pod gets to stop.")
        var drainGrace: Int = 120

        @Flag(help: "One JSON object per event per line.")
        var json = false

        @Flag(help: "Read the cluster and show what would run where; change nothing.")
        var dryRun = false

        @Flag(help: "Resume an upgrade that stopped: rerun only the steps that did not finish.")
        var retryFailed = false

        @Flag(help: "Do not ask for confirmation.")
        var yes = false

        func validate() throws {
            if K3sVersion(to) == nil { throw ValidationError("--to \"\(to)\" is not a K3s release (vX.Y.Z+k3sN)") }
            if BatchSize(batch) == nil { throw ValidationError("--batch \"\(batch)\" must be a number ≥ 1 or a percentage 1%…100%") }
            if drainTimeout < 1 || drainTimeout > 86_400 { throw ValidationError("--drain-timeout must be 1…86400 seconds") }
            if drainGrace < 0 || drainGrace > 86_400 { throw ValidationError("--drain-grace must be 0…86400 seconds") }
        }

        func run() throws {
            let lock = dryRun ? nil : try lockInventory(target.inventory)
            defer { lock?.release() }
            let inventory = try target.load()
            if target.limit != nil {
                printError("upgrade takes the whole cluster: --limit is not supported")
                throw ExitCode(2)
            }
            let version = K3sVersion(to)!
            let dir = airgapDir.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
            if inventory.k3s.source == .airgap && dir == nil {
                printError("\(target.inventory): [k3s] source = \"airgap\": give the new release's files with --airgap-dir")
                throw ExitCode(2)
            }
            let request = UpgradeVerb.Request(target: version, airgapDir: dir, batch: BatchSize(batch)!, drain: !noDrain,
                                              drainTimeout: drainTimeout, drainGrace: drainGrace)
            let plan: UpgradePlan
            do {
                if let dir, let note = try UpgradeVerb.checkAirgap(dir, target: version) { printError("note: \(note)") }
                plan = try UpgradeVerb.plan(inventory: inventory, request: request, connector: SSHConnector())
            } catch {
                printError("\(error)")
                throw ExitCode(2)
            }
            if dryRun {
                do {
                    print(try UpgradeVerb.dryRun(inventory: inventory, request: request, plan: plan, retryFailed: retryFailed),
                          terminator: "")
                } catch {
                    printError("\(error)")
                    throw ExitCode(2)
                }
                return
            }
            if !yes && !plan.pending.isEmpty { try confirm(plan, version) }
            let json = json
            let outcome = try runLive(json: json, plain: { r in "\(r.host) \(r.step) \(r.status.rawValue): \(r.message)\n" }) {
                reporter, onRunner in
                try UpgradeVerb.run(inventory: inventory, request: request, plan: plan, retryFailed: retryFailed,
                                    connector: SSHConnector(), reporter: reporter, lock: lock, onRunner: onRunner)
            }
            if !outcome.summary.succeeded { throw failureExit(outcome.summary) }
            if outcome.rewrote && !json {
                OutputSink.stdout.write("\(target.inventory): k3s_version = \"\(version)\"\n")
            }
        }

        func confirm(_ plan: UpgradePlan, _ version: K3sVersion) throws {
            OutputSink.stdout.write("upgrade to \(version): \(plan.pending.joined(separator: ", ")) "
                + "(snapshot first, servers one at a time, agents cordoned and drained)\n")
            guard isTerminal(0) else {
                printError("not a terminal: give --yes to upgrade without asking")
                throw ExitCode(2)
            }
            OutputSink.stdout.write("Upgrade \(plan.pending.count) node(s)? [y/N] ")
            let answer = (readLine() ?? "").trimmingCharacters(in: .whitespaces).lowercased()
            guard answer == "y" || answer == "yes" else {
                OutputSink.stdout.write("nothing done\n")
                throw ExitCode(1)
            }
        }
    }
}
