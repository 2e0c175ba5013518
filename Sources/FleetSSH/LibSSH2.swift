import CLibSSH2
import Foundation

/// libssh2's global state. `libssh2_init` is not thread-safe, so it runs exactly once,
/// through Swift's lazily initialised global (guarded by `swift_once`).
enum LibSSH2 {
    private static let initialised: Int32 = libssh2_init(0)

    static func ensureInitialised() {
        _ = initialised
    }

    // Constants whose C definitions are macros.
    static let eagain: Int32 = -37
    static let stderrStream: Int32 = 1
    static let blockInbound: Int32 = 0x0001
    static let blockOutbound: Int32 = 0x0002
    static let methodKex: Int32 = 0
    static let methodHostKey: Int32 = 1

    static let knownHostTypePlain: Int32 = 1
    static let knownHostKeyEncRaw: Int32 = 1 << 16
    static let knownHostFileOpenSSH: Int32 = 1
    static let checkMatch: Int32 = 0
    static let checkMismatch: Int32 = 1
    static let checkNotFound: Int32 = 2

    /// Maps `LIBSSH2_HOSTKEY_TYPE_*` to the matching `LIBSSH2_KNOWNHOST_KEY_*` bits.
    /// Passing 0 would make "a key of another type is known" look like a mismatch.
    static func knownHostKeyBits(hostKeyType: Int32) -> Int32 {
        switch hostKeyType {
        case 1: return 2 << 18 // ssh-rsa
        case 2: return 3 << 18 // ssh-dss
        case 3: return 4 << 18 // ecdsa 256
        case 4: return 5 << 18 // ecdsa 384
        case 5: return 6 << 18 // ecdsa 521
        case 6: return 7 << 18 // ed25519
        default: return 15 << 18
        }
    }

    static func keyTypeName(hostKeyType: Int32) -> String {
        switch hostKeyType {
        case 1: return "ssh-rsa"
        case 2: return "ssh-dss"
        case 3: return "ecdsa-sha2-nistp256"
        case 4: return "ecdsa-sha2-nistp384"
        case 5: return "ecdsa-sha2-nistp521"
        case 6: return "ssh-ed25519"
        default: return "unknown"
        }
    }
}
