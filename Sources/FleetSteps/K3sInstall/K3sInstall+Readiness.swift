import FleetCore
import Foundation

extension K3sInstall {
    /// Lines of `journalctl -u` without the "no entries" notice.
    static func logLines(_ text: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { $0 != "-- No entries --" }
    }

    static func journalCommand(_ role: Role) -> String {
        "journalctl -u \(role.service) --no-pager -o cat"
    }

    /// Polls until the service is ready: a server's token exists and its API says ok; an agent
    /// is active and its log says it registered. Fails fast on a refused token or a crash loop.
    static func waitReady(_ job: Job, _ ctx: TaskContext, since before: Facts, logStart: Int) throws -> String {
        let start = Date()
        var s = FactScript()
        s.add("show", showCommand(job.role))
        s.add("log", "\(journalCommand(job.role)) | tail -n +\(logStart + 1) | tail -n 400")
        if job.role == .server {
            s.add("token", "test -s /var/lib/rancher/k3s/server/node-token && echo yes")
            s.add("readyz", "\(binaryPath) kubectl get --raw /readyz </dev/null")
        }
        let command = s.command
        var lastSeen = "no answer yet"
        while true {
            let r = try ctx.run(command, timeout: 30)
            let sec = FactScript.sections(r.stdoutText)
            let show = parseShow(sec["show"] ?? "")
            let active = show["ActiveState"] ?? "unknown"
            let sub = show["SubState"] ?? ""
            let restarts = Int(show["NRestarts"] ?? "") ?? 0
            let lines = logLines(sec["log"] ?? "")
            let elapsed = Date().timeIntervalSince(start)

            switch job.role {
            case .agent:
                let state = K3sLog.agentState(lines)
                if case .refused(let why) = state { throw TaskFailure(why, result: r) }
                if active == "active", state == .registered {
                    return "agent registered with \(job.inputs.registrationURL) in \(String(format: "%.1f", elapsed)) s"
                }
                if case .waiting(let last?) = state { lastSeen = last }
            case .server:
                let token = (sec["token"] ?? "").contains("yes")
                let ready = (sec["readyz"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines) == "ok"
                if active == "active", token, ready {
                    return "token present and /readyz ok in \(String(format: "%.1f", elapsed)) s"
                }
                lastSeen = "service \(active)\(sub.isEmpty ? "" : " (\(sub))"), token \(token ? "present" : "missing"), /readyz "
                    + (ready ? "ok" : "not ok")
            }
            if active == "failed" || sub == "auto-restart" || restarts > before.restarts {
                let why = K3sLog.lastError(lines) ?? "no error in its log"
                throw TaskFailure("\(job.role.service) keeps failing (\(active)\(sub.isEmpty ? "" : "/\(sub)")): \(why)", result: r)
            }
            if elapsed + 1 > job.inputs.wait || ctx.cancelled {
                throw TaskFailure("\(job.role.service) not ready after \(Int(elapsed)) s: \(lastSeen)", result: r)
            }
            Thread.sleep(forTimeInterval: job.role == .agent ? 1 : 2)
        }
    }
}
