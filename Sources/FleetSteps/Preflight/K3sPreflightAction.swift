import FleetCore
import Foundation

/// `k3s_preflight`: checks a host can run an IPv6-only K3s node. Changes nothing.
///
///     action = "k3s_preflight"
///     allow_dynamic_address = false   # optional: SLAAC/DHCPv6 node addresses only warn
public struct K3sPreflightAction: Action {
    public var allowDynamicAddress: Bool

    public init(_ p: StepParams) throws {
        allowDynamicAddress = try p.bool("allow_dynamic_address") ?? false
    }

    public init(allowDynamicAddress: Bool = false) {
        self.allowDynamicAddress = allowDynamicAddress
    }

    /// The settings preflight reads: the node IP, `[preflight] probe` and `check_internet`, and the
    /// K3s source (whether images must come from registries).
    public func inputs(host: FleetCore.Host, inventory: Inventory) -> PreflightExpectation {
        PreflightExpectation(host: host, inventory: inventory, allowDynamicAddress: allowDynamicAddress)
    }

    public func describe(_ vars: TemplateVariables) -> [String] {
        ["check IPv6: node_ip \(vars["host.node_ip"]) present, global and static; default route; probe; "
            + "IPv6 nameserver; ::1 localhost" + (allowDynamicAddress ? " (dynamic address allowed)" : "")]
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        let e = inputs(host: ctx.host, inventory: ctx.inventory)
        let r = try ctx.run(Preflight.factScript(e).command)
        guard r.succeeded else { throw TaskFailure("gathering facts: \(r.statusText)", result: r) }
        if let wanted = e.cni {
            let sections = FactScript.sections(r.stdoutText)
            let installed = Preflight.installedCNI(config: sections["k3s-config"] ?? "", manifests: sections["cni-manifests"] ?? "")
            if let why = Preflight.cniChangeRefusal(installed: installed, wanted: wanted) {
                throw TaskFailure(why, result: r, refused: true)
            }
        }
        let report = Preflight.evaluate(Preflight.parseFacts(r.stdoutText, e), e)
        let message = Preflight.message(report, skippedInternet: !e.checkInternet)
        if !report.failures.isEmpty { throw TaskFailure(message, result: r) }
        return .ok(message)
    }
}
