import FleetCore
import Foundation

extension Preflight {
    /// Pure: every check on gathered facts, in order; one function per check.
    public static func evaluate(_ f: PreflightFacts, _ e: PreflightExpectation) -> PreflightReport {
        var r = PreflightReport()
        if !f.ipTool {
            r.fail("tools", "the ip command is missing, so addresses and routes cannot be checked", "install iproute2")
            return r
        }
        checkKernel(f, &r)
        let address = checkNodeIP(f, e, &r)
        checkDefaultRoute(f, nodeAddress: address, &r)
        checkProbe(f, e, &r)
        checkResolvers(f, &r)
        checkLocalhost(f, &r)
        checkInternet(f, e, &r)
        return r
    }

    /// IPv6 in the kernel, and `disable_ipv6` on `all` and `default`.
    static func checkKernel(_ f: PreflightFacts, _ r: inout PreflightReport) {
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
    }

    /// node_ip: present on the host, global and static. Returns its interface address when present.
    static func checkNodeIP(_ f: PreflightFacts, _ e: PreflightExpectation, _ r: inout PreflightReport) -> InterfaceAddress? {
        guard let a = f.addresses.first(where: { $0.address == e.nodeIP }) else {
            if f.ipv6Kernel { nodeIPMissing(f, e.nodeIP, &r) }
            return nil
        }
        let (problems, dynamic) = addressProblems(a)
        let soft = e.allowDynamicAddress ? dynamic : []
        let hard = problems + (e.allowDynamicAddress ? [] : dynamic)
        let ip = e.nodeIP
        if a.flags.contains("tentative") {
            r.warn("node_ip", "node_ip \(ip) on \(a.interface) is still tentative (duplicate address detection running)")
        }
        let fix = """
            K3s does not survive a node address change: configure \(ip)/\(a.prefixLength) statically on \
            \(a.interface) (e.g. netplan "addresses", systemd-networkd Address=) so that it is global with \
            valid_lft forever, or set node_ip to such an address
            """
        if !hard.isEmpty {
            r.fail("node_ip", "node_ip \(ip) on \(a.interface) " + hard.joined(separator: ", "), fix)
        } else {
            r.passed.append("node_ip \(ip) on \(a.interface) (global, static)")
        }
        if !soft.isEmpty {
            r.warn("node_ip", "node_ip \(ip) on \(a.interface) " + soft.joined(separator: ", ")
                + " (allowed by allow_dynamic_address)", fix)
        }
        return a
    }

    /// What is wrong with node_ip's address: always (`problems`), and unless dynamic addresses are allowed.
    static func addressProblems(_ a: InterfaceAddress) -> (problems: [String], dynamic: [String]) {
        var problems: [String] = []
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
        return (problems, dynamic)
    }

    /// node_ip is not an address of the host: say which ones it has, and whether disable_ipv6 removed them.
    static func nodeIPMissing(_ f: PreflightFacts, _ ip: IPv6Address, _ r: inout PreflightReport) {
        let global = f.addresses.filter { $0.scope == "global" }.map { "\($0.address) (\($0.interface))" }
        var why = "node_ip \(ip) is not an address of this host"
        why += global.isEmpty ? " (it has no global IPv6 address at all)" : " (its global IPv6 addresses: \(global.joined(separator: ", ")))"
        let disabled = f.disableIPv6.filter { $0.value == "1" && !["all", "default"].contains($0.key) }.keys.sorted()
        if !disabled.isEmpty {
            why += "; disable_ipv6 = 1 on \(disabled.joined(separator: ", ")) removes its addresses"
        }
        r.fail("node_ip", why, "add \(ip) statically to the node's interface, or set node_ip in the inventory to one of its addresses")
    }

    /// An IPv6 default route, leaving through node_ip's interface.
    static func checkDefaultRoute(_ f: PreflightFacts, nodeAddress: InterfaceAddress?, _ r: inout PreflightReport) {
        if let route = f.defaultRoute {
            let dev = route.interfaces.joined(separator: ",")
            r.passed.append("default route" + (route.via.map { " via \($0)" } ?? "") + (dev.isEmpty ? "" : " dev \(dev)"))
            if let a = nodeAddress, !route.interfaces.isEmpty, !route.interfaces.contains(a.interface) {
                r.warn("node_ip", "node_ip is on \(a.interface) but the default route leaves through \(dev)",
                       "flannel picks the default-route interface unless flannel-iface is set")
            }
        } else {
            r.fail("default_route", "no IPv6 default route (::/0)", """
                K3s needs one, even air-gapped; add one (e.g. `ip -6 route add default via <router> dev \
                <interface>`, persisted in the network configuration) or accept router advertisements on the uplink
                """)
        }
    }

    /// `[preflight] probe` answers `ping -6`.
    static func checkProbe(_ f: PreflightFacts, _ e: PreflightExpectation, _ r: inout PreflightReport) {
        if let probe = e.probe {
            switch f.probeStatus {
            case 0?: r.passed.append("probe \(probe) answers")
            case 127?: r.fail("probe", "cannot probe \(probe)", "ping is not installed (install iputils-ping)")
            case let status:
                r.fail("probe", "no answer from probe \(probe) to `ping -6 -c1 -W2`\(status.map { " (exit \($0))" } ?? "")",
                       "check the route to it and that ICMPv6 echo is allowed")
            }
        }
    }

    /// An IPv6 nameserver, through systemd-resolved's file when resolv.conf names only the stub.
    static func checkResolvers(_ f: PreflightFacts, _ r: inout PreflightReport) {
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
    }

    /// `/etc/hosts` keeps `::1 localhost`.
    static func checkLocalhost(_ f: PreflightFacts, _ r: inout PreflightReport) {
        if hostsHasIPv6Localhost(f.hosts) {
            r.passed.append("::1 localhost")
        } else {
            r.fail("hosts", "/etc/hosts lacks \"::1 localhost\"", "add the line `::1 localhost ip6-localhost ip6-loopback`")
        }
    }

    /// With `check_internet`: the release host and registry have IPv6 addresses (name resolution only).
    static func checkInternet(_ f: PreflightFacts, _ e: PreflightExpectation, _ r: inout PreflightReport) {
        if let lookups = f.lookups {
            for name in lookupNames(e) {
                let found = lookups[name] ?? []
                if found.isEmpty, let host = e.imageHosts.first(where: { $0.name == name }), name != releaseHost {
                    r.warn("internet", "\(name) has no IPv6 address (no AAAA record), so an IPv6-only node cannot fetch \(host.purpose)", """
                        mirror it on a host with IPv6 ([registries.mirrors] endpoint, or a local .tgz chart for a chart \
                        repository), import the images air-gapped (tarballs in /var/lib/rancher/k3s/agent/images/), or \
                        give the nodes NAT64/DNS64
                        """)
                } else if found.isEmpty {
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
