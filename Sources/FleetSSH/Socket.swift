import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// TCP connect before a deadline, to an IPv6 literal, an IPv4 literal or a host name.
enum TCPSocket {
    /// Why one connect attempt failed; `retryable` when trying again may well succeed: the SYN
    /// was never answered (timed out) or the neighbour was not found in time (EHOSTUNREACH).
    struct Failure: Error {
        var reason: String
        var retryable: Bool
    }

    /// Returns a connected, non-blocking socket with TCP_NODELAY set. Name resolution counts
    /// against the deadline too; an address literal is never sent to a resolver.
    static func connect(host: String, port: Int, deadline: Date) throws(Failure) -> Int32 {
        let list = try resolve(host: host, port: port, deadline: deadline)
        defer { freeaddrinfo(list) }
        var lastError = Failure(reason: "no address", retryable: false)
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let ai = entry {
            entry = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), ai.pointee.ai_protocol)
            if fd < 0 { lastError = Failure(reason: String(cString: strerror(errno)), retryable: false); continue }
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if Glibc.connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { return fd }
            if errno != EINPROGRESS {
                lastError = Failure(reason: String(cString: strerror(errno)), retryable: errno == EHOSTUNREACH)
                close(fd); continue
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            var ready: Int32 = 0
            repeat {
                ready = poll(&pfd, 1, milliseconds(until: deadline))
            } while (ready < 0 && errno == EINTR) || (ready == 0 && Date() < deadline)
            if ready == 0 {
                lastError = Failure(reason: "timed out", retryable: true); close(fd); break
            }
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
            if soError == 0 { return fd }
            lastError = Failure(reason: String(cString: strerror(soError)), retryable: soError == EHOSTUNREACH)
            close(fd)
        }
        throw lastError
    }

    /// True when `host` is an IPv6 or IPv4 address literal.
    static func isAddressLiteral(_ host: String) -> Bool {
        var buf = in6_addr()
        return inet_pton(AF_INET6, host, &buf) == 1 || inet_pton(AF_INET, host, &buf) == 1
    }

    /// getaddrinfo with AI_NUMERICHOST for a literal; a name is resolved on a helper thread that
    /// is abandoned (it frees its own result) when the deadline passes first.
    static func resolve(host: String, port: Int, deadline: Date) throws(Failure) -> UnsafeMutablePointer<addrinfo> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_protocol = Int32(IPPROTO_TCP)
        if isAddressLiteral(host) {
            hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV
            var list: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host, String(port), &hints, &list)
            guard rc == 0, let list else {
                throw Failure(reason: "cannot use address: \(String(cString: gai_strerror(rc)))", retryable: false)
            }
            return list
        }
        let lookup = Lookup()
        let thread = Thread {
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_protocol = Int32(IPPROTO_TCP)
            var list: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host, String(port), &hints, &list)
            lookup.finish(rc: rc, list: list)
        }
        thread.stackSize = 256 * 1024
        thread.start()
        guard let (rc, list) = lookup.wait(until: deadline) else {
            throw Failure(reason: "cannot resolve: no answer before the connect timeout", retryable: false)
        }
        guard rc == 0, let list else {
            throw Failure(reason: "cannot resolve: \(String(cString: gai_strerror(rc)))", retryable: false)
        }
        return list
    }

    /// One name lookup shared by the resolving thread and the waiting caller. Whichever side
    /// comes last frees a result the caller did not take.
    private final class Lookup: @unchecked Sendable {
        private let cond = NSCondition()
        private var done = false
        private var abandoned = false
        private var rc: Int32 = 0
        private var list: UnsafeMutablePointer<addrinfo>?

        func finish(rc: Int32, list: UnsafeMutablePointer<addrinfo>?) {
            cond.lock(); defer { cond.unlock() }
            if abandoned {
                if let list { freeaddrinfo(list) }
                return
            }
            self.rc = rc
            self.list = list
            done = true
            cond.signal()
        }

        func wait(until deadline: Date) -> (Int32, UnsafeMutablePointer<addrinfo>?)? {
            cond.lock(); defer { cond.unlock() }
            while !done {
                if !cond.wait(until: deadline) && !done {
                    abandoned = true
                    return nil
                }
            }
            return (rc, list)
        }
    }
}

/// Milliseconds from now to `deadline` for poll(2): 0 when past, capped at a second so
/// callers re-check their own conditions.
func milliseconds(until deadline: Date, cap: Double = 1000) -> Int32 {
    Int32(max(0, min(cap, deadline.timeIntervalSinceNow * 1000).rounded(.up)))
}

func formatSeconds(_ s: Double) -> String {
    s == s.rounded() ? "\(Int(s)) s" : String(format: "%.1f s", s)
}
