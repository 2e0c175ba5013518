import FleetCore
import Foundation

extension K3sInstall {
    /// Runs the whole install on one host. `ok` when nothing had to change.
    static func run(_ job: Job, _ ctx: TaskContext) throws -> ActionOutcome {
        let w = job.inputs.wanted
        let paths = [binaryPath, installerPath, K3sConfigFile.path] + w.images.keys.sorted()
        let tokenData = job.token.map { Data($0.reveal().utf8) }
        let r = try ctx.run(factScript(w, paths: paths).command, stdin: tokenData ?? Data())
        guard r.succeeded else { throw TaskFailure("gathering facts: \(r.statusText)", result: r) }
        let facts = parseFacts(r.stdoutText)

        if job.source == .airgap, facts.hashes[binaryPath] == w.binarySHA, let v = facts.version, v != w.version {
            throw TaskFailure(versionMismatch(v.description, w.version, job))
        }
        if let why = refusal(facts, w) { throw TaskFailure(why, refused: true) }
        let changes = plan(facts, w)
        if changes.isEmpty {
            return .ok("k3s \(facts.version ?? w.version) \(job.role.rawValue) active, config unchanged")
        }

        var logStart = 0
        for change in changes {
            switch change {
            case .uploadBinary:
                try installBinary(job, w, ctx)
            case .uploadInstaller:
                try ctx.upload(try LocalFile.contents(of: job.localPath("install.sh")), to: installerPath, mode: 0o755)
            case .uploadImage(let path):
                let name = (path as NSString).lastPathComponent
                try ctx.upload(try LocalFile.contents(of: job.localPath(name)), to: path, mode: 0o644)
            case .writeConfig:
                try ctx.upload(Data(job.inputs.config.utf8), to: K3sConfigFile.path, mode: 0o600)
            case .writeToken:
                guard let tokenData else { break }
                try ctx.upload(tokenData, to: K3sConfigFile.tokenPath, mode: 0o600)
            case .runInstaller:
                try ctx.runChecked(installerCommand(job.role, source: job.source, version: w.version),
                                   "the K3s installer failed")
            case .restart, .start:
                let r = try ctx.runChecked(startCommand(job.role, stopFirst: change == .restart),
                                           "\(change == .restart ? "restarting" : "starting") \(job.role.service)")
                logStart = Int(r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            }
        }
        let waited = try waitReady(job, ctx, since: facts, logStart: logStart)
        return .changed(changes.map(\.description).joined(separator: ", ") + "; " + waited)
    }

    /// Uploads the air-gap binary beside the installed one, checks its version, then moves it in place.
    static func installBinary(_ job: Job, _ w: Wanted, _ ctx: TaskContext) throws {
        let staged = binaryPath + ".fleet-new"
        try ctx.upload(try LocalFile.contents(of: job.localPath("k3s")), to: staged, mode: 0o755)
        let v = try ctx.runChecked("\(staged) --version </dev/null | head -n 1", "running the uploaded k3s")
        let got = K3sVersion(versionOutput: v.stdoutText)
        guard got == w.version else {
            _ = try? ctx.run("rm -f \(staged)")
            throw TaskFailure(versionMismatch(got?.description ?? "an unknown version", w.version, job), result: v)
        }
        try ctx.runChecked("mv -f \(staged) \(binaryPath)", "installing the k3s binary")
    }

    static func versionMismatch(_ got: String, _ want: K3sVersion, _ job: Job) -> String {
        "the k3s in \(job.inputs.airgapDir ?? "airgap_dir") is \(got), but [cluster] k3s_version is \(want): "
            + "put the \(want) binary there or change k3s_version"
    }

    /// The installer's environment: never a token (K3s reads it from config.yaml's token-file).
    static func installerEnvironment(_ role: Role, version: K3sVersion, airgap: Bool) -> String {
        var env = [
            "INSTALL_K3S_SKIP_START=true",
            "INSTALL_K3S_VERSION=\(shellQuote(version.description))",
        ]
        if airgap {
            env.insert("INSTALL_K3S_SKIP_DOWNLOAD=true", at: 0)
            env.append("INSTALL_K3S_EXEC=\(role.rawValue)")
        }
        return env.joined(separator: " ")
    }

    /// The command that runs the installer. With `script`, the official installer is downloaded
    /// to a file first, so that a failed download fails the task (a pipe into sh would hide it).
    public static func installerCommand(_ role: Role, source: K3sSource, version: K3sVersion) -> String {
        switch source {
        case .airgap:
            return "\(installerEnvironment(role, version: version, airgap: true)) sh \(installerPath)"
        case .script:
            let dir = (installerPath as NSString).deletingLastPathComponent
            return "mkdir -p \(dir) && curl -sfL --retry 3 -o \(installerPath) \(scriptURL) && "
                + "\(installerEnvironment(role, version: version, airgap: false)) sh \(installerPath) \(role.rawValue)"
        }
    }

    /// Starts the service without waiting for it (a wrong token must not hang the task), and prints
    /// how many lines its log had before, so that only what the new process logs is read. A
    /// restart stops first (blocking), so the old process cannot log after that count.
    public static func startCommand(_ role: Role, stopFirst: Bool) -> String {
        let svc = role.service
        return (stopFirst ? "systemctl stop \(svc) >/dev/null 2>&1; " : "")
            + "n=$(\(journalCommand(role)) 2>/dev/null | grep -vc '^-- No entries --$'); "
            + "systemctl reset-failed \(svc) >/dev/null 2>&1; "
            + "systemctl start --no-block \(svc) && echo \"$n\""
    }
}
