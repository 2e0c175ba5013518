import Foundation

/// Text shared by the reporters: task lines, the failure list, the summary matrix.
public enum Style {
    public enum Color: String { case red = "31", green = "32", yellow = "33", blue = "34", gray = "90" }

    public static func paint(_ s: String, _ c: Color, _ on: Bool) -> String {
        on ? "\u{1B}[\(c.rawValue)m\(s)\u{1B}[0m" : s
    }

    static func color(of status: TaskStatus) -> Color {
        switch status {
        case .ok, .skipped: return .green
        case .changed: return .yellow
        case .failed, .refused, .unreachable: return .red
        case .blocked, .interrupted: return .gray
        }
    }

    /// A one-character mark for the matrix.
    static func mark(_ status: TaskStatus) -> String {
        switch status {
        case .ok: return "ok"
        case .changed: return "ch"
        case .skipped: return "sk"
        case .failed: return "FAIL"
        case .refused: return "REFU"
        case .unreachable: return "UNRE"
        case .blocked: return "blk"
        case .interrupted: return "int"
        }
    }

    public static func line(_ r: TaskResult, color: Bool) -> String {
        let status = paint(r.status.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0), Style.color(of: r.status), color)
        return "\(status) \(r.host) \(r.step) (\(r.durationMs) ms)" + (r.message.isEmpty ? "" : ": \(r.message)")
    }

    /// Every task that did not succeed, with its output tails.
    public static func failures(_ s: RunSummary, color: Bool) -> String {
        var text = ""
        for r in s.results where [.failed, .refused, .unreachable].contains(r.status) {
            text += paint("\(r.status.rawValue.uppercased()) \(r.host) \(r.step)", .red, color) + ": \(r.message)\n"
            for (label, body) in [("stderr", r.stderrTail), ("stdout", r.stdoutTail)] where !body.isEmpty {
                let lines = body.split(separator: "\n", omittingEmptySubsequences: false).suffix(8)
                text += lines.map { "    \(label)| \($0)" }.joined(separator: "\n") + "\n"
            }
        }
        return text.isEmpty ? "" : text + "\n"
    }

    /// The hosts × steps matrix and the counts per status.
    public static func summary(_ s: RunSummary, color: Bool) -> String {
        var text = ""
        if !s.hosts.isEmpty && !s.steps.isEmpty && s.hosts.count <= 200 {
            let hw = max(4, s.hosts.map(\.count).max() ?? 4)
            let widths = s.steps.map { max(4, $0.count) }
            text += "host".padding(toLength: hw, withPad: " ", startingAt: 0)
            for (i, st) in s.steps.enumerated() { text += "  " + st.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            text += "\n"
            for h in s.hosts {
                text += h.padding(toLength: hw, withPad: " ", startingAt: 0)
                for (i, st) in s.steps.enumerated() {
                    let cell: String
                    if let r = s.result(host: h, step: st) {
                        cell = paint(mark(r.status).padding(toLength: widths[i], withPad: " ", startingAt: 0), Style.color(of: r.status), color)
                    } else {
                        cell = "-".padding(toLength: widths[i], withPad: " ", startingAt: 0)
                    }
                    text += "  " + cell
                }
                text += "\n"
            }
        }
        let counts = s.counts
        let parts = TaskStatus.allCases.compactMap { st in counts[st].map { "\($0) \(st.rawValue)" } }
        let verdict = s.interrupted ? "INTERRUPTED" : (s.succeeded ? "OK" : "FAILED")
        text += "\n" + paint(verdict, s.succeeded ? .green : .red, color)
            + " in \(String(format: "%.1f", s.duration)) s: " + parts.joined(separator: ", ") + "\n"
        return text
    }
}
