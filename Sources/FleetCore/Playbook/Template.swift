import Foundation

public struct TemplateError: Error, Sendable {
    public var message: String
}

/// A string with `{{ variable }}` references to inventory values.
///
/// Variables are checked when the playbook loads, so an unknown name fails before any host is
/// touched. Rendered `.shell`, every value is shell-quoted: inventory values never reach a shell
/// unquoted. Secrets are not template variables at all: they travel on stdin or in 0600 files.
public struct Template: Sendable, Equatable, CustomStringConvertible {
    enum Part: Sendable, Equatable {
        case text(String)
        case variable(String)
    }

    /// Every variable a template may name.
    public static let variables: [String] = [
        "host.name", "host.address", "host.node_ip", "host.role", "host.user", "host.ra_interface",
        "cluster.name", "cluster.cluster_cidr", "cluster.service_cidr", "cluster.cluster_dns",
        "cluster.k3s_version", "cluster.flannel_ipv6_masq", "cluster.servers",
        "first_server.name", "first_server.address", "first_server.node_ip",
        "server_url", "registration_url", "inventory_dir",
    ]

    let parts: [Part]
    public let source: String

    public init(_ source: String) throws {
        self.source = source
        var parts: [Part] = []
        var rest = Substring(source)
        while let open = rest.range(of: "{{") {
            if open.lowerBound > rest.startIndex { parts.append(.text(String(rest[..<open.lowerBound]))) }
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw TemplateError(message: "unclosed \"{{\" in \"\(source)\"")
            }
            let name = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            guard Template.variables.contains(name) else {
                throw TemplateError(message: "unknown template variable \"\(name)\""
                    + suggestion(for: name, among: Template.variables)
                    + "; known: " + Template.variables.joined(separator: ", "))
            }
            parts.append(.variable(name))
            rest = rest[close.upperBound...]
        }
        if !rest.isEmpty { parts.append(.text(String(rest))) }
        self.parts = parts
    }

    public enum Mode: Sendable { case shell, plain }

    public func render(_ vars: TemplateVariables, _ mode: Mode) -> String {
        parts.map { part in
            switch part {
            case .text(let t): return t
            case .variable(let name):
                let value = vars[name]
                return mode == .shell ? shellQuote(value) : value
            }
        }.joined()
    }

    public var description: String { source }
}

/// Values for template variables on one host.
public struct TemplateVariables: Sendable {
    public var values: [String: String]

    public subscript(name: String) -> String { values[name] ?? "" }

    public init(host: Host, inventory: Inventory) {
        // An inventory always has a first server (its initialiser refuses one without).
        let first = inventory.firstServer
        values = [
            "host.name": host.name,
            "host.address": host.address,
            "host.node_ip": host.nodeIP.description,
            "host.role": host.role.rawValue,
            "host.user": host.ssh.user,
            "host.ra_interface": host.raInterface ?? "",
            "cluster.name": inventory.cluster.name,
            "cluster.cluster_cidr": inventory.cluster.clusterCIDR.description,
            "cluster.service_cidr": inventory.cluster.serviceCIDR.description,
            "cluster.cluster_dns": inventory.cluster.effectiveClusterDNS.description,
            "cluster.k3s_version": inventory.cluster.k3sVersion,
            "cluster.flannel_ipv6_masq": inventory.cluster.flannelIPv6Masq ? "true" : "false",
            "cluster.servers": String(inventory.servers.count),
            "inventory_dir": inventory.directory,
            "first_server.name": first.name,
            "first_server.address": first.address,
            "first_server.node_ip": first.nodeIP.description,
            "server_url": serverURL(first.nodeIP),
            "registration_url": inventory.registrationURL,
        ]
    }

    public init(values: [String: String]) { self.values = values }
}

/// `https://[addr]:6443`: an IPv6 literal in a URL must be bracketed.
public func serverURL(_ ip: IPv6Address, port: Int = 6443) -> String {
    "https://[\(ip)]:\(port)"
}
