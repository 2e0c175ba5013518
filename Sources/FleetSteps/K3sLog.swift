import Foundation

/// Reading K3s's log lines (logrus `level=… msg="…"` and klog `I1125 … ] "…"`). Pure.
public enum K3sLog {
    /// The message of a log line: the `msg=` field of a logrus line, the quoted text of a klog
    /// line, else the line itself (trimmed).
    public static func message(_ line: String) -> String {
        if let r = line.range(of: " msg=") ?? (line.hasPrefix("msg=") ? line.range(of: "msg=") : nil) {
            let rest = line[r.upperBound...]
            if rest.first == "\"" { return unquote(rest) }
            return String(rest.prefix { $0 != " " })
        }
        if let close = line.range(of: "] \"") {
            return unquote(line[line.index(before: close.upperBound)...])
        }
        return line.trimmingCharacters(in: .whitespaces)
    }

    /// The level of a logrus line (`info`, `error`, `fatal`, …), or nil.
    public static func level(_ line: String) -> String? {
        guard let r = line.range(of: "level=") else { return nil }
        return String(line[r.upperBound...].prefix { $0 != " " })
    }

    /// A Go-quoted string starting at `text`'s opening quote, unescaped.
    static func unquote(_ text: Substring) -> String {
        var out = ""
        var escaped = false
        for ch in text.dropFirst() {
            if escaped {
                switch ch {
                case "n": out.append("\n")
                case "t": out.append("\t")
                default: out.append(ch)
                }
                escaped = false
            } else if ch == "\\" {
                escaped = true
            } else if ch == "\"" {
                break
            } else {
                out.append(ch)
            }
        }
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The most telling error in a log: the last fatal line, else the last `Error:` / error line.
    public static func lastError(_ lines: [String]) -> String? {
        if let l = lines.last(where: { level($0) == "fatal" }) { return message(l) }
        if let l = lines.last(where: { message($0).hasPrefix("Error:") || $0.contains("apiserver exited") }) {
            return message(l)
        }
        if let l = lines.last(where: { level($0) == "error" }) { return message(l) }
        return nil
    }

    /// What an agent's log says about its join.
    public enum AgentState: Sendable, Equatable {
        case registered
        /// A failure that retrying will not fix; the text says why and what to do.
        case refused(String)
        /// Still trying; the last thing it said.
        case waiting(String?)
    }

    /// Classifies an agent's log lines (those since its last start).
    public static func agentState(_ lines: [String]) -> AgentState {
        for line in lines {
            let msg = message(line)
            if line.contains("401 Unauthorized") {
                return .refused("the server refused the join token (401 Unauthorized): \(msg)")
            }
            if line.contains("token CA hash does not match") {
                return .refused("""
                    the join token is from another cluster (its CA hash does not match the server's CA): \(msg)
                    """)
            }
            if line.contains("too many colons in address") {
                return .refused("""
                    the server URL is not usable: an IPv6 address in a URL must be bracketed, \
                    https://[addr]:6443: \(msg)
                    """)
            }
            if line.contains("Node password rejected") {
                return .refused("""
                    the server rejected this node's password: another node already has this name, or \
                    /etc/rancher/node/password changed since it joined (delete the old node with \
                    `kubectl delete node NAME` on the server, or give this host another name): \(msg)
                    """)
            }
            if level(line) == "fatal" {
                return .refused("the agent stopped: \(msg)")
            }
        }
        if lines.contains(where: { $0.contains("Successfully registered node") || $0.contains("k3s agent is up and running") }) {
            return .registered
        }
        let meaningful = lines.last { l in
            let lv = level(l)
            return lv == "error" || lv == "warning" || l.contains("Waiting to retrieve agent configuration")
        }
        return .waiting(meaningful.map(message) ?? lines.last.map(message))
    }
}
