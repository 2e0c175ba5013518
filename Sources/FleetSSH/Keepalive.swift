import CLibSSH2
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Noticing a host that went silent (power loss, cable pulled: no RST ever comes).
///
/// libssh2 1.10 sends keepalives but never notices that none are answered. So the session sends
/// one every `keepaliveInterval` seconds while it waits, and the socket gets `TCP_USER_TIMEOUT`
/// of twice that: data the peer does not acknowledge by then (a keepalive, a command's input, a
/// window update) makes the kernel drop the connection, and the next wait fails with "connection
/// timed out". A silent peer is noticed within about three intervals (10 s: about 30 s).
extension SSHSession {
    func startKeepalive() {
        let interval = target.keepaliveInterval
        guard interval > 0 else { return }
        // No reply asked: the peer's TCP acknowledgement is the answer that counts.
        libssh2_keepalive_config(session, 0, UInt32(max(1, interval.rounded())))
        var ms = UInt32(min(Double(UInt32.max), 2 * interval * 1000))
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_USER_TIMEOUT, &ms, socklen_t(MemoryLayout<UInt32>.size))
        keepaliveOn = true
    }

    /// Sends a keepalive when one is due. Only between packets: a send that half-succeeded would
    /// have to be finished by the same call, so never while libssh2 waits to send, and only when
    /// the socket has room for the whole (small) packet.
    func keepaliveTick() {
        guard keepaliveOn, libssh2_session_block_directions(session) & LibSSH2.blockOutbound == 0 else { return }
        var pfd = pollfd(fd: socket, events: Int16(POLLOUT), revents: 0)
        guard poll(&pfd, 1, 0) == 1, pfd.revents & Int16(POLLOUT) != 0 else { return }
        var next: Int32 = 0
        _ = libssh2_keepalive_send(session, &next)
    }

    /// Why the socket failed (`SO_ERROR`), e.g. "Connection timed out".
    var socketErrorText: String {
        var code: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(socket, SOL_SOCKET, SO_ERROR, &code, &len)
        return code == 0 ? "connection closed" : String(cString: strerror(code))
    }
}
