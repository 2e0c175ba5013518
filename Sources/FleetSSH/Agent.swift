import CLibSSH2
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal ssh-agent client (draft-miller-ssh-agent: list keys, sign) whose every read and
/// write ends by a deadline. libssh2's own agent code blocks on the agent socket without one,
/// so an agent that hangs (or waits for a confirmation nobody gives) would hang the connection.
final class AgentClient {
    struct Failure: Error { var reason: String }

    static let requestIdentities: UInt8 = 11
    static let identitiesAnswer: UInt8 = 12
    static let signRequest: UInt8 = 13
    static let signResponse: UInt8 = 14
    /// Answers larger than this are refused (a real agent's key list is a few KB).
    static let maxMessage = 256 * 1024

    private let fd: Int32
    let deadline: Date

    private init(fd: Int32, deadline: Date) {
        self.fd = fd
        self.deadline = deadline
    }

    deinit { close(fd) }

    static func connect(path: String, deadline: Date) throws(Failure) -> AgentClient {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw Failure(reason: "SSH_AUTH_SOCK path too long") }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw Failure(reason: String(cString: strerror(errno))) }
        let client = AgentClient(fd: fd, deadline: deadline)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            guard errno == EINPROGRESS || errno == EAGAIN else { throw Failure(reason: "cannot connect: \(String(cString: strerror(errno)))") }
            try client.wait(Int16(POLLOUT))
        }
        return client
    }

    private func wait(_ events: Int16) throws(Failure) {
        while true {
            if Date() >= deadline { throw Failure(reason: "no answer before the connect timeout") }
            var pfd = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&pfd, 1, milliseconds(until: deadline))
            if rc > 0 { return }
            if rc < 0 && errno != EINTR { throw Failure(reason: String(cString: strerror(errno))) }
        }
    }

    private func send(_ bytes: [UInt8]) throws(Failure) {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 { off += n; continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { try wait(Int16(POLLOUT)); continue }
            throw Failure(reason: "write failed: \(String(cString: strerror(errno)))")
        }
    }

    private func receive(_ count: Int) throws(Failure) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: count)
        var off = 0
        while off < count {
            let n = buf[off...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { off += n; continue }
            if n == 0 { throw Failure(reason: "closed the connection") }
            if errno == EAGAIN || errno == EINTR { try wait(Int16(POLLIN)); continue }
            throw Failure(reason: "read failed: \(String(cString: strerror(errno)))")
        }
        return buf
    }

    /// One request and its answer: (type, body).
    func transact(_ type: UInt8, _ body: [UInt8]) throws(Failure) -> (UInt8, Data) {
        try send(Self.uint32(body.count + 1) + [type] + body)
        let len = try receive(4).reduce(0) { $0 << 8 | Int($1) }
        guard len >= 1, len <= Self.maxMessage else { throw Failure(reason: "sent a message of \(len) bytes") }
        let msg = try receive(len)
        return (msg[0], Data(msg[1...]))
    }

    /// The public key blobs the agent holds.
    func identities() throws(Failure) -> [Data] {
        let (type, body) = try transact(Self.requestIdentities, [])
        guard type == Self.identitiesAnswer else { throw Failure(reason: "refused to list its keys") }
        var r = SSHWireReader(data: body)
        guard let n = r.uint32() else { throw Failure(reason: "sent a malformed key list") }
        var keys: [Data] = []
        for _ in 0..<n {
            guard let blob = r.string(), r.string() != nil else { throw Failure(reason: "sent a malformed key list") }
            keys.append(blob)
        }
        return keys
    }

    /// The raw signature (without its algorithm name) of `data` by the key `blob`.
    func sign(blob: Data, data: Data) throws(Failure) -> Data {
        let (type, body) = try transact(Self.signRequest, Self.string(blob) + Self.string(data) + Self.uint32(0))
        guard type == Self.signResponse else { throw Failure(reason: "refused to sign") }
        var outer = SSHWireReader(data: body)
        guard let sig = outer.string() else { throw Failure(reason: "sent a malformed signature") }
        var inner = SSHWireReader(data: sig)
        guard inner.string() != nil, let raw = inner.string() else { throw Failure(reason: "sent a malformed signature") }
        return raw
    }

    static func uint32(_ n: Int) -> [UInt8] {
        [UInt8(truncatingIfNeeded: n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
    }

    static func string(_ d: Data) -> [UInt8] { uint32(d.count) + [UInt8](d) }
}

/// What libssh2's sign callback needs: the agent, the key, and where to leave an error.
final class AgentSigning {
    let agent: AgentClient
    let blob: Data
    var failure: String?

    init(agent: AgentClient, blob: Data) {
        self.agent = agent
        self.blob = blob
    }

    /// libssh2's sign callback: asks the agent, hands back a malloc'd signature (libssh2 frees it).
    static let callback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                                         UnsafeMutablePointer<Int>?, UnsafePointer<UInt8>?, Int,
                                         UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 = {
        _, sig, sigLen, data, dataLen, abstract in
        guard let raw = abstract?.pointee, let sig, let sigLen else { return -1 }
        let ctx = Unmanaged<AgentSigning>.fromOpaque(raw).takeUnretainedValue()
        let message = data.map { Data(bytes: $0, count: dataLen) } ?? Data()
        do {
            let signature = try ctx.agent.sign(blob: ctx.blob, data: message)
            guard let mem = malloc(max(1, signature.count)) else { return -1 }
            signature.copyBytes(to: mem.assumingMemoryBound(to: UInt8.self), count: signature.count)
            sig.pointee = mem.assumingMemoryBound(to: UInt8.self)
            sigLen.pointee = signature.count
            return 0
        } catch {
            ctx.failure = (error as? AgentClient.Failure)?.reason ?? "\(error)"
            return -1
        }
    }
}
