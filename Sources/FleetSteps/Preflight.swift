import FleetCore
import Foundation

/// What preflight reads from a host, in one round trip.
public struct PreflightFacts: Sendable, Equatable {
    /// The `ip` command (iproute2) is installed: without it, addresses and routes are unknown.
    public var ipTool: Bool
    /// `/proc/net/if_inet6` exists: the kernel has IPv6 at all.
    public var ipv6Kernel: Bool
    /// `disable_ipv6` per `conf/` entry: `all`, `default` and each interface.
    public var disableIPv6: [String: String]
    public var addresses: [InterfaceAddress]
    public var defaultRoute: IPOutput.DefaultRoute?
    public var resolvConf: String
    /// `/run/systemd/resolve/resolv.conf`, which K3s uses when resolv.conf names only loopback servers.
    public var resolvedConf: String?
    public var hosts: String
    /// Exit status of `ping -6 -c1 -W2 <probe>`; nil when no probe is set.
    public var probeStatus: Int?
    /// Names looked up for the internet check → their IPv6 addresses (IPv4-mapped ones dropped);
    /// nil when the check is off.
    public var lookups: [String: [IPv6Address]]?

    public init(ipTool: Bool = true, ipv6Kernel: Bool = true, disableIPv6: [String: String] = [:], addresses: [InterfaceAddress] = [],
                defaultRoute: IPOutput.DefaultRoute? = nil, resolvConf: String = "", resolvedConf: String? = nil,
                hosts: String = "", probeStatus: Int? = nil, lookups: [String: [IPv6Address]]? = nil) {
        self.ipTool = ipTool
        self.ipv6Kernel = ipv6Kernel
        self.disableIPv6 = disableIPv6
        self.addresses = addresses
        self.defaultRoute = defaultRoute
        self.resolvConf = resolvConf
        self.resolvedConf = resolvedConf
        self.hosts = hosts
        self.probeStatus = probeStatus
        self.lookups = lookups
    }
}

/// What preflight wants of one host.
public struct PreflightExpectation: Sendable, Encodable {
    public var nodeIP: IPv6Address
    public var probe: IPv6Address?
    public var checkInternet: Bool
    public var source: K3sSource
    /// The air-gap directory has an images tarball: nodes need no registry for K3s's own images.
    public var imagesBundled: Bool
    /// Dynamic addresses (SLAAC/DHCPv6 leases) are warnings instead of failures.
    public var allowDynamicAddress: Bool

    public init(nodeIP: IPv6Address, probe: IPv6Address? = nil, checkInternet: Bool = false,
                source: K3sSource = .airgap, imagesBundled: Bool = false, allowDynamicAddress: Bool = false) {
        self.nodeIP = nodeIP
        self.probe = probe
        self.checkInternet = checkInternet
        self.source = source
        self.imagesBundled = imagesBundled
        self.allowDynamicAddress = allowDynamicAddress
    }

    /// What the inventory expects of `host`.
    public init(host: FleetCore.Host, inventory inv: Inventory, allowDynamicAddress: Bool = false) {
        self.init(nodeIP: host.nodeIP, probe: inv.preflight.probe, checkInternet: inv.preflight.checkInternet,
                  source: inv.k3s.source, imagesBundled: !AirgapFiles.images(in: inv.k3s.airgapDir).isEmpty,
                  allowDynamicAddress: allowDynamicAddress)
    }
}

/// One problem preflight found: what was checked (`node_ip`, `default_route`, …), the problem, its fix.
public struct PreflightFinding: Sendable, Equatable {
    public var check: String
    public var problem: String
    public var fix: String

    /// `problem: fix`, as the step prints it.
    public var text: String { fix.isEmpty ? problem : problem + ": " + fix }
}

/// The verdict: failures (each with its fix), warnings, and what was found fine.
public struct PreflightReport: Sendable, Equatable {
    public var failureFindings: [PreflightFinding] = []
    public var warningFindings: [PreflightFinding] = []
    public var passed: [String] = []

    public var failures: [String] { failureFindings.map(\.text) }
    public var warnings: [String] { warningFindings.map(\.text) }

    mutating func fail(_ check: String, _ problem: String, _ fix: String) {
        failureFindings.append(PreflightFinding(check: check, problem: problem, fix: fix))
    }

    mutating func warn(_ check: String, _ problem: String, _ fix: String = "") {
        warningFindings.append(PreflightFinding(check: check, problem: problem, fix: fix))
    }
}

public enum Preflight {
    /// The host that serves K3s releases, and the registry K3s's system images come from.
    public static let releaseHost = "github.com"
    public static let registryHost = "registry-1.docker.io"

    static func factScript(_ e: PreflightExpectation) -> FactScript {
        var s = FactScript()
        s.add("tools", "command -v ip >/dev/null || echo ip")
        s.add("kernel", "test -e /proc/net/if_inet6 && echo yes")
        s.add("disable", "for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo \"$f $(cat \"$f\")\"; done")
        s.add("addr", "ip -6 -o addr show")
        s.add("route", "ip -6 route show default")
        s.add("resolv", "cat /etc/resolv.conf")
        s.add("resolved", "cat /run/systemd/resolve/resolv.conf")
        s.add("hosts", "cat /etc/hosts")
        if let probe = e.probe {
            s.add("probe", "ping -6 -c1 -W2 \(shellQuote(probe.description)) >/dev/null 2>&1; echo $?")
        }
        if e.checkInternet {
            for name in lookupNames(e) {
                // Name resolution only: no connection is opened to these hosts.
                s.add("dns:" + name, "timeout 5 getent ahostsv6 \(shellQuote(name))")
            }
        }
        return s
    }

    static func lookupNames(_ e: PreflightExpectation) -> [String] {
        var names: [String] = []
        if e.source == .script { names.append(releaseHost) }
        if !(e.source == .airgap && e.imagesBundled) { names.append(registryHost) }
        return names
    }

    /// Parses the fact script's output.
    static func parseFacts(_ output: String, _ e: PreflightExpectation) -> PreflightFacts {
        let s = FactScript.sections(output)
        var disable: [String: String] = [:]
        for line in (s["disable"] ?? "").split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2 else { continue }
            let components = parts[0].split(separator: "/")
            if components.count >= 2 { disable[String(components[components.count - 2])] = String(parts[1]) }
        }
        var lookups: [String: [IPv6Address]]?
        if e.checkInternet {
            var found: [String: [IPv6Address]] = [:]
            for name in lookupNames(e) { found[name] = getentAddresses(s["dns:" + name] ?? "") }
            lookups = found
        }
        let resolved = s["resolved"].flatMap { $0.isEmpty ? nil : $0 }
        return PreflightFacts(
            ipTool: !(s["tools"] ?? "").contains("ip"),
            ipv6Kernel: (s["kernel"] ?? "").contains("yes"),
            disableIPv6: disable,
            addresses: IPOutput.addresses(s["addr"] ?? ""),
            defaultRoute: IPOutput.defaultRoute(s["route"] ?? ""),
            resolvConf: s["resolv"] ?? "",
            resolvedConf: resolved,
            hosts: s["hosts"] ?? "",
            probeStatus: s["probe"].flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) },
            lookups: lookups)
    }

    /// `getent ahostsv6` lines (`2606:50c0::1 STREAM github.com`) → real IPv6 addresses, without the
    /// IPv4-mapped ones getent adds for names that have only A records.
    public static func getentAddresses(_ text: String) -> [IPv6Address] {
        var seen: [IPv6Address] = []
        for line in text.split(separator: "\n") {
            guard let word = line.split(separator: " ").first, let a = IPv6Address(String(word)),
                  !a.isIPv4Mapped, !seen.contains(a) else { continue }
            seen.append(a)
        }
        return seen
    }

    /// Pure: the checks of issue "preflight" on gathered facts.
    public static func evaluate(_ f: PreflightFacts, _ e: PreflightExpectation) -> PreflightReport {
        var r = PreflightReport()
        let ip = e.nodeIP

        if !f.ipTool {
            r.fail("tools", "the ip command is missing, so addresses and routes cannot be checked", "install iproute2")
            return r
        }

        // IPv6 in the kernel.
        if !f.ipv6Kernel {
            r.fail("ipv6", "IPv6 is off in the kernel (no /proc/net/if_inet6)",
                   "remove ipv6.disable=1 from the kernel command line and reboot")
        } else {
            let off = ["all", "default"].filter { f.disableIPv6[$0] == "1" }
            if !off.isEmpty {
                r.warn("ipv6", off.map { "net.ipv6.conf.\($0).disable_ipv6 = 1" }.joined(separator: ", "),
                       "the kernel-ipv6 step sets it to 0")
            } else {
                r.passed.append("IPv6 on")
            }
        }

        // node_ip: present, global, static.
        let matches = f.addresses.filter { $0.address == ip }
        if let a = matches.first {
            var problems: [String] = []
            var soft: [String] = []
            if a.scope != "global" {
                problems.append("has scope \(a.scope.isEmpty ? "unknown" : a.scope), not global")
            }
            if a.flags.contains("dadfailed") {
                problems.append("failed duplicate address detection (another host uses it)")
            }
            if a.flags.contains("temporary") {
                problems.append("is a temporary (privacy) address, replaced every few hours")
            }
            var dynamic: [String] = []
            if a.flags.contains("dynamic") { dynamic.append("is dynamic (a SLAAC or DHCPv6 lease)") }
            if a.flags.contains("mngtmpaddr") { dynamic.append("is flagged mngtmpaddr (privacy addresses are made from it)") }
            if let valid = a.validLifetime { dynamic.append("has valid_lft \(valid)sec, not forever") }
            if a.flags.contains("deprecated") || a.preferredLifetime == 0 {
                dynamic.append("is deprecated (preferred_lft 0): the kernel no longer uses it for new connections")
            }
            if e.allowDynamicAddress { soft = dynamic } else { problems += dynamic }
            if a.flags.contains("tentative") {
                r.warn("node_ip", "node_ip \(ip) on \(a.interface) is still tentative (duplicate address detection running)")
            }
            let fix = """
                K3s does not survive a node address change: configure \(ip)/\(a.prefixLength) statically on \
                \(a.interface) (e.g. netplan "addresses", systemd-networkd Address=) so that it is global with \
                valid_lft forever, or set node_ip to such an address
                """
            if !problems.isEmpty {
                r.fail("node_ip", "node_ip \(ip) on \(a.interface) " + problems.joined(separator: ", "), fix)
            } else {
                r.passed.append("node_ip \(ip) on \(a.interface) (global, static)")
            }
            if !soft.isEmpty {
                r.warn("node_ip", "node_ip \(ip) on \(a.interface) " + soft.joined(separator: ", ")
                    + " (allowed by allow_dynamic_address)", fix)
            }
        } else if f.ipv6Kernel {
            let global = f.addresses.filter { $0.scope == "global" }.map { "\($0.address) (\($0.interface))" }
            var why = "node_ip \(ip) is not an address of this host"
            why += global.isEmpty ? " (it has no global IPv6 address at all)" : " (its global IPv6 addresses: \(global.joined(separator: ", ")))"
            let disabled = f.disableIPv6.filter { $0.value == "1" && !["all", "default"].contains($0.key) }.keys.sorted()
            if !disabled.isEmpty {
                why += "; disable_ipv6 = 1 on \(disabled.joined(separator: ", ")) removes its addresses"
            }
            r.fail("node_ip", why, "add \(ip) statically to the node's interface, or set node_ip in the inventory to one of its addresses")
        }

        // Default route.
        if let route = f.defaultRoute {
            let dev = route.interfaces.joined(separator: ",")
            r.passed.append("default route" + (route.via.map { " via \($0)" } ?? "") + (dev.isEmpty ? "" : " dev \(dev)"))
            if let a = matches.first, !route.interfaces.isEmpty, !route.interfaces.contains(a.interface) {
                r.warn("node_ip", "node_ip is on \(a.interface) but the default route leaves through \(dev)",
                       "flannel picks the default-route interface unless flannel-iface is set")
            }
        } else {
            r.fail("default_route", "no IPv6 default route (::/0)", """
                K3s needs one, even air-gapped; add one (e.g. `ip -6 route add default via <router> dev \
                <interface>`, persisted in the network configuration) or accept router advertisements on the uplink
                """)
        }

        // Probe.
        if let probe = e.probe {
            switch f.probeStatus {
            case 0?: r.passed.append("probe \(probe) answers")
            case 127?: r.fail("probe", "cannot probe \(probe)", "ping is not installed (install iputils-ping)")
            case let status:
                r.fail("probe", "no answer from probe \(probe) to `ping -6 -c1 -W2`\(status.map { " (exit \($0))" } ?? "")",
                       "check the route to it and that ICMPv6 echo is allowed")
            }
        }

        // Resolvers.
        let listed = ResolvConf.nameservers(f.resolvConf)
        var effective = listed.filter { !isLoopback($0) }
        var source = "/etc/resolv.conf"
        if effective.isEmpty, !listed.isEmpty, let resolved = f.resolvedConf {
            effective = ResolvConf.nameservers(resolved).filter { !isLoopback($0) }
            source = "/run/systemd/resolve/resolv.conf (resolv.conf names only the local stub)"
        }
        let v6 = effective.filter { ResolvConf.ipv6($0) != nil }
        if let first = v6.first {
            r.passed.append("IPv6 nameserver \(first)")
        } else {
            let have = effective.isEmpty ? "no usable nameserver" : "only \(effective.joined(separator: ", "))"
            r.fail("dns", "\(source) lists \(have)", """
                CoreDNS forwards to the node's resolvers, so pods on an IPv6-only node get no DNS (k3s#11675); add \
                an IPv6 nameserver, or point K3s's resolv-conf at a file that lists one
                """)
        }

        // ::1 localhost.
        if hostsHasIPv6Localhost(f.hosts) {
            r.passed.append("::1 localhost")
        } else {
            r.fail("hosts", "/etc/hosts lacks \"::1 localhost\"", "add the line `::1 localhost ip6-localhost ip6-loopback`")
        }

        // Internet over IPv6 (name resolution only).
        if let lookups = f.lookups {
            for name in lookupNames(e) {
                let found = lookups[name] ?? []
                if found.isEmpty {
                    let what = name == releaseHost ? "K3s releases (the script installer downloads from it)"
                                                   : "K3s's system images"
                    r.warn("internet", "\(name) has no IPv6 address (no AAAA record), so an IPv6-only node cannot fetch \(what)", """
                        use source = "airgap" with the images tarball, a registry mirror or NAT64/DNS64, or dual-stack \
                        "hybrid" nodes (IPv4 for egress, the cluster IPv6-only)
                        """)
                } else {
                    r.passed.append("\(name) has IPv6 (\(found[0]))")
                }
            }
        }
        return r
    }

    static func isLoopback(_ server: String) -> Bool {
        if let a = ResolvConf.ipv6(server) { return a.isLoopback }
        return server.hasPrefix("127.")
    }

    /// `::1` (any spelling) with `localhost` among its names.
    static func hostsHasIPv6Localhost(_ text: String) -> Bool {
        for line in text.split(separator: "\n") {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = content.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard words.count >= 2, IPv6Address(words[0])?.isLoopback == true else { continue }
            if words.dropFirst().contains("localhost") { return true }
        }
        return false
    }

    /// The task's message: one line per failure or warning, then what passed.
    static func message(_ r: PreflightReport, skippedInternet: Bool) -> String {
        var lines: [String] = []
        if !r.failures.isEmpty {
            lines.append("\(r.failures.count) problem(s):")
            lines += r.failures.map { "  - " + $0 }
        }
        lines += r.warnings.map { "warning: " + $0 }
        var ok = r.passed.joined(separator: "; ")
        if skippedInternet { ok += (ok.isEmpty ? "" : "; ") + "internet check skipped (check_internet = false)" }
        if !ok.isEmpty { lines.append(r.failures.isEmpty ? ok : "passed: " + ok) }
        return lines.joined(separator: "\n")
    }
}

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

    public func plan(_ vars: TemplateVariables) -> [String] {
        ["check IPv6: node_ip \(vars["host.node_ip"]) present, global and static; default route; probe; "
            + "IPv6 nameserver; ::1 localhost" + (allowDynamicAddress ? " (dynamic address allowed)" : "")]
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        let e = inputs(host: ctx.host, inventory: ctx.inventory)
        let r = try ctx.run(Preflight.factScript(e).command)
        guard r.succeeded else { throw TaskFailure("gathering facts: \(r.statusText)", result: r) }
        let report = Preflight.evaluate(Preflight.parseFacts(r.stdoutText, e), e)
        let message = Preflight.message(report, skippedInternet: !e.checkInternet)
        if !report.failures.isEmpty { throw TaskFailure(message, result: r) }
        return .ok(message)
    }
}
