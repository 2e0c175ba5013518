import Foundation

/// `sysctl`: sets kernel parameters now and persists them in one file under `/etc/sysctl.d/`
/// (never appended to `/etc/sysctl.conf`), then reads them back.
///
///     action = "sysctl"
///     file = "/etc/sysctl.d/90-fleet-ipv6.conf"
///     [steps.values]
///     "net.ipv6.conf.all.disable_ipv6" = 0
public struct SysctlAction: Action {
    public var file: String
    public var values: [(key: String, value: String)]

    public init(_ p: StepParams) throws {
        file = try p.string("file") ?? "/etc/sysctl.d/90-fleet.conf"
        guard Self.validFile(file) else {
            throw p.error("file", "must be a .conf file under /etc/sysctl.d/ (\"\(file)\")")
        }
        guard let table = try p.scalarTable("values"), !table.isEmpty else {
            throw p.error("values", "is required: a table of sysctl keys and values")
        }
        for (k, v) in table {
            guard SysctlAction.validKey(k) else { throw p.error("values.\(k)", "is not a sysctl key") }
            guard !v.contains("\n") else { throw p.error("values.\(k)", "a value cannot hold a newline") }
        }
        values = table.map { (key: $0.0, value: $0.1) }
    }

    public init(file: String, values: [(key: String, value: String)]) {
        self.file = file
        self.values = values
    }

    /// A `.conf` file under `/etc/sysctl.d/` (never `/etc/sysctl.conf`, never `..`).
    public static func validFile(_ file: String) -> Bool {
        file.hasPrefix("/etc/sysctl.d/") && file.hasSuffix(".conf") && !file.contains("..")
            && RemotePath.fileProblem(file) == nil
    }

    static func validKey(_ k: String) -> Bool {
        !k.isEmpty && !k.hasPrefix(".") && k.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-/".contains($0)) }
    }

    /// The file's content: one `key = value` line per parameter, in key order.
    public var fileContent: String {
        "# Written by fleet. Changes here are overwritten on the next run.\n"
            + values.map { "\($0.key) = \($0.value)\n" }.joined()
    }

    public struct Inputs: Encodable {
        public var file: String
        public var content: String
    }

    public func inputs(host: Host, inventory: Inventory) -> Inputs {
        Inputs(file: file, content: fileContent)
    }

    public func describe(_ vars: TemplateVariables) -> [String] {
        ["write \(file):"] + values.map { "  \($0.key) = \($0.value)" } + ["sysctl -w (keys that differ); read back"]
    }

    var readCommand: String {
        "sysctl -n -- " + values.map { shellQuote($0.key) }.joined(separator: " ")
    }

    /// Facts: current values and the file's content, in one round trip.
    func gather(_ ctx: TaskContext) throws -> (current: [String], file: String) {
        let marker = "--fleet-sysctl-file--"
        let r = try ctx.run("\(readCommand); echo \(marker); cat -- \(shellQuote(file)) 2>/dev/null; true")
        let text = r.stdoutText
        let parts = text.components(separatedBy: marker + "\n")
        let current = (parts.first ?? "").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        return (current, parts.count > 1 ? parts[1] : "")
    }

    /// Pure: which keys differ from what is wanted. Numbers compare after folding whitespace.
    public func differing(current: [String]) -> [(key: String, value: String)] {
        values.enumerated().filter { i, kv in
            i >= current.count || normalise(current[i]) != normalise(kv.value)
        }.map { $0.element }
    }

    func normalise(_ s: String) -> String {
        s.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    public func run(_ ctx: TaskContext) throws -> ActionOutcome {
        let facts = try gather(ctx)
        let differ = differing(current: facts.current)
        let fileOK = facts.file == fileContent
        if differ.isEmpty && fileOK { return .ok("all \(values.count) value(s) already set and persisted") }

        // One round trip: set, read back, then write the file (content over stdin, replaced
        // atomically), each only when the one before succeeded, so a value the kernel refuses
        // (sysctl -w fails) is never persisted.
        var did: [String] = []
        var parts: [String] = []
        var prefix = ""
        if !differ.isEmpty {
            parts.append("sysctl -q -w " + differ.map { shellQuote("\($0.key)=\($0.value)") }.joined(separator: " "))
            parts.append(readCommand)
            did.append("set " + differ.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
        }
        if !fileOK {
            let tmp = shellQuote(file + ".fleet-tmp")
            let dir = shellQuote((file as NSString).deletingLastPathComponent)
            prefix = "[ -d \(dir) ] || mkdir -p -- \(dir); "
            parts.append("umask 022 && cat > \(tmp) && mv -f -- \(tmp) \(shellQuote(file))")
        }
        let what = differ.isEmpty ? "writing \(file)" : "setting values"
        let r = try ctx.runChecked(prefix + parts.joined(separator: " && "), what,
                                   stdin: fileOK ? nil : Data(fileContent.utf8))
        if !differ.isEmpty {
            let after = r.stdoutText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let still = differing(current: after)
            if !still.isEmpty {
                throw TaskFailure("read back differs: " + still.map { kv in
                    let i = values.firstIndex { $0.key == kv.key }!
                    return "\(kv.key) is \(i < after.count ? after[i] : "?"), wanted \(kv.value)"
                }.joined(separator: ", "), result: r)
            }
        }
        if !fileOK { did.append("wrote \(file)") }
        return .changed(did.joined(separator: "; "))
    }
}
