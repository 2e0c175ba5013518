import Foundation
import TOMLKit

extension InventoryReader {
    // MARK: - jump (in [ssh] and in each [[hosts]] entry)

    static let jumpHopKeys = ["host", "identity", "known_hosts", "host_key_policy"]

    /// `jump`: one hop (`"user@bastion:22"`, or OpenSSH's comma list), a list of hops in order, each a
    /// string or a table `{ host = "user@bastion:22", identity = …, known_hosts = …, host_key_policy = … }`,
    /// or `"none"` / `[]` for a direct connection. False when an error was recorded.
    mutating func applyJump(_ context: InventoryTable, to settings: inout SSHSettings) -> Bool {
        guard let value = context.table["jump"] else { return true }
        if let text = value.string {
            switch JumpSpec.parseList(text) {
            case .success(let hops):
                settings.jump = hops
                return true
            case .failure(let problem):
                fail(context, "jump", "\(InventorySyntax.tomlQuoted(text)) \(problem.reason)")
                return false
            }
        }
        guard let array = value.array else {
            typeError(context, "jump", expected: "a string (\"user@host:port\") or an array of hops", found: value)
            return false
        }
        var hops: [JumpSpec] = []
        var valid = true
        for (index, element) in array.enumerated() {
            if let text = element.string {
                switch JumpSpec.parse(text) {
                case .success(let hop): hops.append(hop)
                case .failure(let problem):
                    fail(context, "jump", "hop \(index + 1), \(InventorySyntax.tomlQuoted(text)), \(problem.reason)")
                    valid = false
                }
            } else if let table = element.table {
                let hopContext = InventoryTable(table: table, path: "\(context.path).jump[\(index)]",
                                                keyPrefix: "\(context.keyPrefix)jump[\(index)].", label: "jump hop",
                                                hostIndex: context.hostIndex, hostName: context.hostName)
                if let hop = readJumpHop(hopContext) { hops.append(hop) } else { valid = false }
            } else {
                fail(context, "jump", "hop \(index + 1) is \(InventoryReader.describe(element)): write \"user@host:port\" or a table with host = \"user@host:port\"")
                valid = false
            }
        }
        if valid { settings.jump = hops }
        return valid
    }

    private mutating func readJumpHop(_ context: InventoryTable) -> JumpSpec? {
        let before = errorCount
        checkKeys(context, allowed: Self.jumpHopKeys)
        var hop: JumpSpec?
        switch string(context, "host") {
        case .missing:
            fail(context, "host", "is required in a jump hop table: host = \"user@bastion.example:22\"")
        case .invalid: break
        case .present(let text):
            switch JumpSpec.parse(text) {
            case .success(let parsed): hop = parsed
            case .failure(let problem): fail(context, "host", "\(InventorySyntax.tomlQuoted(text)) \(problem.reason)")
            }
        }
        if case .present(let file) = path(context, "identity") { hop?.identity = file }
        if case .present(let file) = path(context, "known_hosts") { hop?.knownHosts = file }
        if case .present(let policy) = enumeration(context, "host_key_policy", HostKeyPolicy.self) {
            hop?.hostKeyPolicy = policy
        }
        return errorCount == before ? hop : nil
    }
}
