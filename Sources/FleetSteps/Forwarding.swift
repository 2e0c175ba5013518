import FleetCore
import Foundation

/// `ipv6_forwarding`: IPv6 forwarding on, and Router Advertisements still accepted on the uplink.
///
/// With forwarding on, the kernel ignores Router Advertisements unless `accept_ra = 2` on that
/// interface (`all` is mostly ignored), so it is set on the interface holding the default route
/// (or `ra_interface` from the inventory) and on `default`. Persisted, applied and read back by the
/// built-in sysctl action.
///
///     action = "ipv6_forwarding"
///     file = "/etc/sysctl.d/91-fleet-forwarding.conf"   # optional
public struct IPv6ForwardingAction: Action {
    public static let defaultFile = "/etc/sysctl.d/91-fleet-ipv6-forwarding.conf"
    public var file: String

    public init(_ p: StepParams) throws {
        file = try p.string("file") ?? Self.defaultFile
        guard SysctlAction.validFile(file) else {
            throw p.error("file", "must be a .conf file under /etc/sysctl.d/ (\"\(file)\")")
        }
    }

    public init(file: String = defaultFile) {
        self.file = file
    }

    public struct Inputs: Encodable {
        public var file: String
        /// `ra_interface`; nil: the interface of the default route.
        public var raInterface: String?
    }

    public func inputs(host: FleetCore.Host, inventory: Inventory) -> Inputs {
        Inputs(file: file, raInterface: host.raInterface)
    }

    public func describe(_ vars: TemplateVariables) -> [String] {
        let iface = vars["host.ra_interface"].isEmpty ? "<default-route interface>" : vars["host.ra_interface"]
        return ["write \(file): net.ipv6.conf.all.forwarding = 1, net.ipv6.conf.default.forwarding = 1, "
                + "net.ipv6.conf.\(iface).accept_ra = 2, net.ipv6.conf.default.accept_ra = 2; apply; read back"]
    }

    /// Pure: the sysctl values for an uplink interface.
    public static func values(uplink: String) -> [(key: String, value: String)] {
        [
            (key: "net.ipv6.conf.all.forwarding", value: "1"),
            (key: "net.ipv6.conf.default.forwarding", value: "1"),
            (key: "net.ipv6.conf.default.accept_ra", value: "2"),
            (key: interfaceSysctlKey(uplink, "accept_ra"), value: "2"),
        ]
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        let uplink: String
        if let iface = inputs(host: ctx.host, inventory: ctx.inventory).raInterface {
            uplink = iface
        } else {
            let r = try ctx.runChecked("ip -6 route show default", "reading the IPv6 default route")
            guard let route = IPOutput.defaultRoute(r.stdoutText), let iface = route.interfaces.first else {
                throw TaskFailure("""
                    no IPv6 default route, so no uplink interface to keep accepting Router Advertisements: add a \
                    default route, or set ra_interface for this host in the inventory
                    """, result: r)
            }
            uplink = iface
        }
        let check = try ctx.run("test -d /proc/sys/net/ipv6/conf/\(shellQuote(uplink))")
        guard check.succeeded else {
            throw TaskFailure("interface \(uplink) does not exist on \(ctx.host.name) (no /proc/sys/net/ipv6/conf/\(uplink))")
        }
        let sysctl = SysctlAction(file: file, values: IPv6ForwardingAction.values(uplink: uplink))
        let outcome = try sysctl.run(ctx)
        return ActionOutcome(outcome.status, "uplink \(uplink): " + outcome.message)
    }
}
