import ArgumentParser
import FleetCore
import FleetRemote
import FleetSteps
import Foundation

extension Fleet {
    struct Kubeconfig: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch the cluster's kubeconfig, pointed at a server's IPv6 address.",
            discussion: """
                Reads /etc/rancher/k3s/k3s.yaml from the first server, sets its server to https://[node_ip]:6443, \
                renames the "default" cluster, context and user to the cluster's name, and writes it with mode 0600 \
                (default: <inventory dir>/<cluster name>.kubeconfig). With --server, another server of the \
                inventory, or a name or address from [cluster] tls_san (e.g. a DNS name for every server).
                """)

        @Argument(help: "The inventory file (TOML).")
        var inventory: String

        @Option(name: .shortAndLong, help: "Where to write the kubeconfig.")
        var output: String?

        @Option(help: "Point it at this server (a server's name) or a [cluster] tls_san entry; default: the first server.")
        var server: String?

        func run() throws {
            let lock = try lockInventory(inventory)
            defer { lock.release() }
            let inv = try InventoryOptions.parse([inventory]).load()
            let path = output ?? KubeconfigVerb.defaultOutput(for: inv)
            do {
                let text = try KubeconfigVerb.fetch(inventory: inv, connector: SSHConnector(), server: server)
                try KubeconfigVerb.save(text, to: path)
            } catch {
                printError("\(error)")
                throw ExitCode(1)
            }
            print("wrote \(path) (mode 0600): kubectl --kubeconfig \(path) get nodes")
        }
    }
}
