import FleetCore
import Foundation

/// Preflight: facts (this file), checks on them (`Preflight+Checks`), the step (`K3sPreflightAction`).
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
        if e.cni != nil { addNetworkFacts(&s) }
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
        if e.imageHosts.isEmpty {
            if !(e.source == .airgap && e.imagesBundled) { names.append(registryHost) }
        } else {
            for h in e.imageHosts where !names.contains(h.name) { names.append(h.name) }
        }
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
}
