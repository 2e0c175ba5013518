import Foundation

/// The connections a run's tasks open to hosts other than their own (`TaskContext.connection(to:)`,
/// e.g. deleting a node through a server that stays): at most one per host for the whole run, shared
/// by every task that asks for it, and closed when the run ends or is interrupted.
final class ConnectionPool: @unchecked Sendable {
    private let connector: Connector
    private let lock = NSLock()
    private var shared: [String: SharedConnection] = [:]
    private var closed = false

    init(connector: Connector) { self.connector = connector }

    /// The run's connection to `host`, connected now if it is not (a failure to connect is thrown).
    func connection(to host: Host) throws -> SharedConnection {
        lock.lock()
        let c: SharedConnection
        if let existing = shared[host.name] {
            c = existing
        } else {
            c = SharedConnection(host: host, connector: connector)
            shared[host.name] = c
            if closed { c.close() }
        }
        lock.unlock()
        try c.ensureConnected()
        return c
    }

    /// Closes every connection (from any thread: a blocked call returns); later calls fail.
    func closeAll() {
        lock.lock()
        closed = true
        let all = Array(shared.values)
        lock.unlock()
        for c in all { c.close() }
    }
}

/// A connection to one host shared by the tasks of a run. Each call has it to itself (tasks on
/// several hosts may use it at once); a call that fails with a `ConnectionError` drops the
/// connection, and the next call connects again through the connector. The failed call itself is
/// not repeated: the command may have run. Its errors name the host and never say `unreachable`:
/// the task using it fails, its own host is not unreachable.
public final class SharedConnection: Connection, @unchecked Sendable {
    public let host: Host
    private let connector: Connector
    /// Held for the whole of a call: one command at a time on the connection.
    private let inUse = NSLock()
    /// Guards `current` and `closed`; never held across a remote call, so `close()` can abort one.
    private let state = NSLock()
    private var current: Connection?
    private var closed = false

    init(host: Host, connector: Connector) {
        self.host = host
        self.connector = connector
    }

    public var hostName: String { host.name }

    func ensureConnected() throws {
        inUse.lock(); defer { inUse.unlock() }
        _ = try live()
    }

    /// The open connection, connecting first when there is none. Called holding `inUse`.
    private func live() throws -> Connection {
        state.lock()
        if closed { state.unlock(); throw ConnectionError("connection to \(host.name) was closed: the run is ending", unreachable: false) }
        if let c = current { state.unlock(); return c }
        state.unlock()
        let c: Connection
        do {
            c = try connector.connect(to: host)
        } catch {
            throw ConnectionError("cannot connect to \(host.name): \(error)", unreachable: false)
        }
        state.lock()
        let stoppedMeanwhile = closed
        if !stoppedMeanwhile { current = c }
        state.unlock()
        if stoppedMeanwhile {
            c.close()
            throw ConnectionError("connection to \(host.name) was closed: the run is ending", unreachable: false)
        }
        return c
    }

    private func use<T>(_ body: (Connection) throws -> T) throws -> T {
        inUse.lock(); defer { inUse.unlock() }
        let c = try live()
        do {
            return try body(c)
        } catch let e as ConnectionError {
            // Dropped (or unusable): the next call opens a new one.
            state.lock()
            if current === c { current = nil }
            state.unlock()
            c.close()
            // Not the task's own host: its task fails, it is not unreachable.
            throw ConnectionError("\(host.name): \(e.message)", unreachable: false)
        }
    }

    public func run(_ command: String, stdin: Data?, timeout: Double?) throws -> CommandResult {
        try use { try $0.run(command, stdin: stdin, timeout: timeout ?? host.ssh.commandTimeout) }
    }

    public func upload(_ data: Data, to path: String, mode: Int, timeout: Double?) throws {
        try use { try $0.upload(data, to: path, mode: mode, timeout: timeout ?? host.ssh.commandTimeout) }
    }

    public func uploadIfChanged(_ data: Data, to path: String, mode: Int, timeout: Double?) throws -> Bool {
        try use { try $0.uploadIfChanged(data, to: path, mode: mode, timeout: timeout ?? host.ssh.commandTimeout) }
    }

    public func timeNoOpCommand() throws -> Double {
        try use { try $0.timeNoOpCommand() }
    }

    /// Closes it for good (safe from any thread; a call blocked on it returns).
    public func close() {
        state.lock()
        closed = true
        let c = current
        current = nil
        state.unlock()
        c?.close()
    }
}
