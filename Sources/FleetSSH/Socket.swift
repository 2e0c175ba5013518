import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// TCP connect with a timeout, to an IPv6 literal, an IPv4 literal or a host name.
enum TCPSocket {
    /// Returns a connected, non-blocking socket with TCP_NODELAY set.
    static func connect(host: String, port: Int, timeout: Double) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_protocol = Int32(IPPROTO_TCP)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw SSHError.connect(host: host, port: port, reason: "cannot resolve: \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }

        let deadline = Date().addingTimeInterval(timeout)
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let ai = entry {
            entry = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), ai.pointee.ai_protocol)
            if fd < 0 { lastError = String(cString: strerror(errno)); continue }
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if Glibc.connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { return fd }
            if errno != EINPROGRESS {
                lastError = String(cString: strerror(errno)); close(fd); continue
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            var ready: Int32 = 0
            repeat {
                let ms = Int32(max(0, min(Double(Int32.max), deadline.timeIntervalSinceNow * 1000)))
                ready = poll(&pfd, 1, ms)
            } while ready < 0 && errno == EINTR
            if ready == 0 {
                lastError = "timed out after \(formatSeconds(timeout))"; close(fd); break
            }
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
            if soError == 0 { return fd }
            lastError = String(cString: strerror(soError)); close(fd)
        }
        throw SSHError.connect(host: host, port: port, reason: lastError)
    }
}

func formatSeconds(_ s: Double) -> String {
    s == s.rounded() ? "\(Int(s)) s" : String(format: "%.1f s", s)
}
