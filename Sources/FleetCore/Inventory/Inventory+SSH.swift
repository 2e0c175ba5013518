import Foundation

extension InventoryReader {
    // MARK: - [ssh]

    mutating func readSSH(_ context: InventoryTable) -> SSHSettings? {
        checkKeys(context, allowed: InventoryKeys.ssh)
        var settings = SSHSettings()
        var valid = true
        if !applyConnectionKeys(context, to: &settings) { valid = false }
        switch path(context, "known_hosts") {
        case .missing: break
        case .invalid: valid = false
        case .present(let file): settings.knownHosts = file
        }
        switch enumeration(context, "host_key_policy", HostKeyPolicy.self) {
        case .missing: break
        case .invalid: valid = false
        case .present(let policy): settings.hostKeyPolicy = policy
        }
        switch number(context, "connect_timeout") {
        case .missing: break
        case .invalid: valid = false
        case .present(let seconds):
            if !(seconds > 0 && seconds <= 300) {
                fail(context, "connect_timeout", "\(formatSeconds(seconds)) is out of range: it must be more than 0 and at most 300 seconds")
                valid = false
            } else {
                settings.connectTimeout = seconds
            }
        }
        switch number(context, "command_timeout") {
        case .missing: break
        case .invalid: valid = false
        case .present(let seconds):
            if Seconds.problem(seconds) != nil {
                fail(context, "command_timeout", "\(formatSeconds(seconds)) is out of range: it must be more than 0 "
                        + "and at most \(Int(Seconds.maximum)) seconds")
                valid = false
            } else {
                settings.commandTimeout = seconds
            }
        }
        switch number(context, "keepalive_interval") {
        case .missing: break
        case .invalid: valid = false
        case .present(let seconds):
            if !(seconds >= 1 && seconds <= 300) {
                fail(context, "keepalive_interval", "\(formatSeconds(seconds)) is out of range: it must be from 1 to 300 seconds")
                valid = false
            } else {
                settings.keepaliveInterval = seconds
            }
        }
        switch integer(context, "forks") {
        case .missing: break
        case .invalid: valid = false
        case .present(let forks):
            if !(1...1000).contains(forks) {
                fail(context, "forks", "\(forks) is out of range: it must be from 1 to 1000")
                valid = false
            } else {
                settings.forks = forks
            }
        }
        if !readSSHConfigChoice(context) { valid = false }
        for key in SSHSettings.trackedKeys where context.contains(key) { settings.origins[key] = "[ssh]" }
        return valid ? settings : nil
    }

    func formatSeconds(_ seconds: Double) -> String {
        seconds == seconds.rounded() && abs(seconds) < 1e15 ? String(Int(seconds)) : String(seconds)
    }

    /// `user`, `port`, `identity` and `become`: allowed both in `[ssh]` and in each `[[hosts]]` entry.
    mutating func applyConnectionKeys(_ context: InventoryTable, to settings: inout SSHSettings) -> Bool {
        var valid = true
        switch string(context, "user") {
        case .missing: break
        case .invalid: valid = false
        case .present(let user):
            if let problem = InventorySyntax.userNameProblem(user) {
                fail(context, "user", "\(InventorySyntax.tomlQuoted(user)) \(problem)")
                valid = false
            } else {
                settings.user = user
            }
        }
        switch integer(context, "port") {
        case .missing: break
        case .invalid: valid = false
        case .present(let port):
            if !(1...65535).contains(port) {
                fail(context, "port", "\(port) is out of range: it must be from 1 to 65535")
                valid = false
            } else {
                settings.port = port
            }
        }
        switch path(context, "identity") {
        case .missing: break
        case .invalid: valid = false
        case .present(let file): settings.identity = file
        }
        switch enumeration(context, "become", Become.self) {
        case .missing: break
        case .invalid: valid = false
        case .present(let become): settings.become = become
        }
        if !applyJump(context, to: &settings) { valid = false }
        return valid
    }
}
