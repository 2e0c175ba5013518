import FleetCore
import Foundation

/// A monotonically increasing counter shared by everything that records events, so that events
/// recorded by different objects on different threads can be put in one order.
public final class EventClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    public init() {}

    public func tick() -> Int {
        lock.lock(); defer { lock.unlock() }
        value += 1
        return value
    }
}

/// One thing that happened on a fake host. `seq` orders events across all hosts.
public struct FakeEvent: Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case connect, connectFailed, commandStarted, commandFinished, upload, noOpCommand, close
    }

    public var seq: Int
    public var host: String
    public var kind: Kind
    /// The command text (`commandStarted`, `commandFinished`), the path (`upload`) or an error.
    public var text: String
    /// The command's stdin, or the uploaded bytes.
    public var data: Data?
    /// The uploaded file's mode.
    public var mode: Int?
    /// For `commandFinished`: the exit status (nil when the command threw).
    public var exitCode: Int32?

    public var description: String {
        "#\(seq) \(host) \(kind.rawValue) \(text)" + (exitCode.map { " → \($0)" } ?? "")
    }
}

/// A file in a fake host's virtual file system.
public struct FakeFile: Sendable, Equatable {
    public var data: Data
    public var mode: Int

    public init(data: Data, mode: Int = 0o644) {
        self.data = data
        self.mode = mode
    }

    public var text: String { String(decoding: data, as: UTF8.self) }
}

/// Something a fake command handler can wait for: opened once by the test.
public final class FakeGate: @unchecked Sendable {
    let core: FakeCore
    var isOpenLocked = false

    init(core: FakeCore) { self.core = core }

    public func open() {
        core.cond.lock()
        isOpenLocked = true
        core.cond.broadcast()
        core.cond.unlock()
    }

    public var isOpen: Bool {
        core.cond.lock(); defer { core.cond.unlock() }
        return isOpenLocked
    }
}

/// What a fleet and its hosts share: one lock (with a condition that every change broadcasts), the
/// clock and the event log. Hosts hold it, not the fleet, so either may outlive the other.
final class FakeCore: @unchecked Sendable {
    let cond = NSCondition()
    let clock: EventClock
    var log: [FakeEvent] = []

    init(clock: EventClock) { self.clock = clock }

    @discardableResult
    func record(_ host: String, _ kind: FakeEvent.Kind, _ text: String, data: Data? = nil, mode: Int? = nil,
                exitCode: Int32? = nil) -> Int {
        cond.lock()
        let seq = clock.tick()
        log.append(FakeEvent(seq: seq, host: host, kind: kind, text: text, data: data, mode: mode, exitCode: exitCode))
        cond.broadcast()
        cond.unlock()
        return seq
    }

    var events: [FakeEvent] {
        cond.lock(); defer { cond.unlock() }
        return log
    }
}

/// How a fake command's text is matched by a handler.
public enum FakeMatch: Sendable {
    case exact(String)
    case contains(String)
    case prefix(String)
    /// An NSRegularExpression pattern searched anywhere in the text.
    case regex(String)

    public func matches(_ text: String) -> Bool {
        switch self {
        case .exact(let s): return text == s
        case .contains(let s): return text.contains(s)
        case .prefix(let s): return text.hasPrefix(s)
        case .regex(let pattern):
            guard let re = try? NSRegularExpression(pattern: pattern) else { return false }
            return re.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
        }
    }
}

/// A command as a handler sees it.
public struct FakeCommand: @unchecked Sendable {
    public let text: String
    public let stdin: Data?
    public let timeout: Double?
    public let host: FakeHost
    /// The `seq` of this command's `commandStarted` event.
    public let seq: Int
    let connection: FakeConnection

    /// Blocks until the test opens `gate`. Throws a `ConnectionError` when the connection is closed
    /// meanwhile (as an aborted SSH connection would), or when `limit` seconds pass (a safety net so that
    /// a broken engine fails the test instead of hanging it).
    public func wait(for gate: FakeGate, limit: Double = 30) throws {
        let core = host.core
        let deadline = Date().addingTimeInterval(limit)
        core.cond.lock()
        defer { core.cond.unlock() }
        while !gate.isOpenLocked {
            if connection.closedLocked {
                throw ConnectionError("connection to \(host.name) was closed", unreachable: false)
            }
            if !core.cond.wait(until: deadline) {
                throw ConnectionError("fake gate on \(host.name) was not opened within \(limit) s", unreachable: false)
            }
        }
    }

    /// What the built-in shell would have answered: lets a handler observe a command and delegate.
    public func runDefault() -> CommandResult {
        FakeShell.run(text, stdin: stdin, on: host)
    }
}

public typealias FakeResponder = @Sendable (FakeCommand) throws -> CommandResult

extension CommandResult {
    /// A finished command with text output.
    public static func exit(_ code: Int32, stdout: String = "", stderr: String = "") -> CommandResult {
        CommandResult(stdout: Data(stdout.utf8), stderr: Data(stderr.utf8), exitCode: code)
    }

    public static func success(_ stdout: String = "") -> CommandResult { .exit(0, stdout: stdout) }
}

/// One simulated machine: a virtual file system, a sysctl table, scripted command handlers, and a
/// record of everything done to it.
///
/// A command is answered by the newest handler whose match accepts its text; when none does, the
/// built-in `FakeShell` interprets it against the host's files and sysctl values, and hands any
/// command it does not know to `unknownCommand` (by default: succeed silently).
public final class FakeHost: @unchecked Sendable {
    public enum Reachability: Sendable {
        case reachable
        /// `connect` throws `ConnectionError(unreachable: true)`.
        case unreachable(String)
        /// `connect` throws `ConnectionError(unreachable: false)` (e.g. the login is refused).
        case refusesLogin(String)
    }

    public let name: String
    let core: FakeCore

    private var files: [String: FakeFile] = [:]
    private var directories: Set<String> = ["/"]
    private var sysctlValues: [String: String] = [:]
    private var pinnedSysctl: Set<String> = []
    private var handlers: [(FakeMatch, FakeResponder)] = []
    private var reachabilityValue: Reachability = .reachable
    private var unknown: @Sendable ([String], Data) throws -> CommandResult = { _, _ in .success() }

    init(name: String, core: FakeCore) {
        self.name = name
        self.core = core
    }

    private func locked<R>(_ body: () throws -> R) rethrows -> R {
        core.cond.lock(); defer { core.cond.unlock() }
        return try body()
    }

    // MARK: Set-up

    public var reachability: Reachability {
        get { locked { reachabilityValue } }
        set { locked { reachabilityValue = newValue } }
    }

    /// Answers commands whose text `match` accepts. Newer handlers take precedence.
    @discardableResult
    public func on(_ match: FakeMatch, _ responder: @escaping FakeResponder) -> FakeHost {
        locked { handlers.append((match, responder)) }
        return self
    }

    /// Answers commands containing `text` with a fixed result.
    @discardableResult
    public func on(contains text: String, exit code: Int32 = 0, stdout: String = "", stderr: String = "") -> FakeHost {
        on(.contains(text)) { _ in .exit(code, stdout: stdout, stderr: stderr) }
    }

    /// What the built-in shell does with a simple command it does not know: words and stdin in.
    public func onUnknownCommand(_ body: @escaping @Sendable ([String], Data) throws -> CommandResult) {
        locked { unknown = body }
    }

    /// Makes unknown simple commands fail with status 127, as a shell would.
    public func rejectUnknownCommands() {
        onUnknownCommand { words, _ in .exit(127, stderr: "sh: \(words[0]): not found\n") }
    }

    func unknownCommand(_ words: [String], _ stdin: Data) throws -> CommandResult {
        let body = locked { unknown }
        return try body(words, stdin)
    }

    func responder(for text: String) -> FakeResponder? {
        let all = locked { handlers }
        return all.last { $0.0.matches(text) }?.1
    }

    // MARK: Files

    public func file(_ path: String) -> FakeFile? { locked { files[path] } }

    public func setFile(_ path: String, data: Data, mode: Int = 0o644) {
        locked {
            files[path] = FakeFile(data: data, mode: mode)
            var dir = (path as NSString).deletingLastPathComponent
            while !dir.isEmpty && dir != "/" {
                directories.insert(dir)
                dir = (dir as NSString).deletingLastPathComponent
            }
        }
    }

    public func setFile(_ path: String, _ text: String, mode: Int = 0o644) {
        setFile(path, data: Data(text.utf8), mode: mode)
    }

    public func removeFile(_ path: String) { _ = locked { files.removeValue(forKey: path) } }

    public func makeDirectory(_ path: String) { _ = locked { directories.insert(path) } }

    public func isDirectory(_ path: String) -> Bool { locked { directories.contains(path) } }


    // MARK: sysctl

    /// The current value of a kernel parameter; nil when the host has no such key.
    public func sysctl(_ key: String) -> String? { locked { sysctlValues[key] } }

    public func setSysctl(_ key: String, _ value: String) { locked { sysctlValues[key] = value } }

    /// Makes `sysctl -w` on `key` report success but leave the value unchanged.
    public func pinSysctl(_ key: String) { _ = locked { pinnedSysctl.insert(key) } }

    func writeSysctl(_ key: String, _ value: String) {
        locked { if !pinnedSysctl.contains(key) { sysctlValues[key] = value } }
    }

    // MARK: What happened

    public var events: [FakeEvent] { core.events.filter { $0.host == name } }

    /// The text of every command run on this host, in order (uploads are not commands).
    public var commands: [String] { events.filter { $0.kind == .commandStarted }.map(\.text) }

    /// Every upload to this host, in order.
    public var uploads: [FakeEvent] { events.filter { $0.kind == .upload } }

    public var connectCount: Int { events.filter { $0.kind == .connect }.count }
}

/// A `Connector` whose hosts live in memory. Hosts are created on first mention, reachable and
/// empty; every connection, command and upload is recorded with a sequence number that orders it
/// against everything else recorded by this fleet (and by reporters sharing its `clock`).
public final class FakeFleet: Connector, @unchecked Sendable {
    let core: FakeCore
    private var hostsByName: [String: FakeHost] = [:]

    public init(clock: EventClock = EventClock()) {
        core = FakeCore(clock: clock)
    }

    public var clock: EventClock { core.clock }

    /// The fake host called `name` (created when first asked for).
    public func host(_ name: String) -> FakeHost {
        core.cond.lock(); defer { core.cond.unlock() }
        if let h = hostsByName[name] { return h }
        let h = FakeHost(name: name, core: core)
        hostsByName[name] = h
        return h
    }

    public subscript(name: String) -> FakeHost { host(name) }

    public func makeGate() -> FakeGate { FakeGate(core: core) }

    /// Everything recorded on every host, in order.
    public var events: [FakeEvent] { core.events }

    /// Every command text run on any host, in order.
    public var allCommands: [String] { events.filter { $0.kind == .commandStarted }.map(\.text) }

    /// Waits until `condition` holds for the event log, re-checking whenever an event is recorded.
    /// Returns false when `limit` seconds pass first.
    @discardableResult
    public func waitUntil(limit: Double = 30, _ condition: ([FakeEvent]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(limit)
        core.cond.lock()
        defer { core.cond.unlock() }
        while !condition(core.log) {
            if !core.cond.wait(until: deadline) { return condition(core.log) }
        }
        return true
    }

    // MARK: Connector

    public func connect(to host: FleetCore.Host) throws -> Connection {
        let fake = self.host(host.name)
        switch fake.reachability {
        case .reachable:
            core.record(host.name, .connect, host.address)
            return FakeConnection(host: fake)
        case .unreachable(let why):
            core.record(host.name, .connectFailed, why)
            throw ConnectionError(why, unreachable: true)
        case .refusesLogin(let why):
            core.record(host.name, .connectFailed, why)
            throw ConnectionError(why, unreachable: false)
        }
    }
}

/// A connection to a `FakeHost`.
public final class FakeConnection: Connection, @unchecked Sendable {
    public let host: FakeHost
    var closedLocked = false

    init(host: FakeHost) { self.host = host }

    public var hostName: String { host.name }

    public var isClosed: Bool {
        host.core.cond.lock(); defer { host.core.cond.unlock() }
        return closedLocked
    }

    private func checkOpen() throws {
        if isClosed { throw ConnectionError("connection to \(host.name) was closed", unreachable: false) }
    }

    public func run(_ command: String, stdin: Data?, timeout: Double?) throws -> CommandResult {
        try checkOpen()
        let core = host.core
        let seq = core.record(host.name, .commandStarted, command, data: stdin)
        let cmd = FakeCommand(text: command, stdin: stdin, timeout: timeout, host: host, seq: seq, connection: self)
        do {
            let result = try host.responder(for: command).map { try $0(cmd) } ?? cmd.runDefault()
            core.record(host.name, .commandFinished, command, exitCode: result.exitCode)
            return result
        } catch {
            core.record(host.name, .commandFinished, command)
            throw error
        }
    }

    public func upload(_ data: Data, to path: String, mode: Int, timeout: Double?) throws {
        try checkOpen()
        host.core.record(host.name, .upload, path, data: data, mode: mode)
        host.setFile(path, data: data, mode: mode)
    }

    public func timeNoOpCommand() throws -> Double {
        try checkOpen()
        host.core.record(host.name, .noOpCommand, "")
        return 0.001
    }

    public func close() {
        let core = host.core
        core.cond.lock()
        let was = closedLocked
        closedLocked = true
        core.cond.broadcast()
        core.cond.unlock()
        if !was { core.record(host.name, .close, "") }
    }
}
