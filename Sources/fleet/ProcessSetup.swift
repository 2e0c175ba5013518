import Foundation

/// Process-wide settings made before anything else runs.
enum ProcessSetup {
    static func apply() {
        // A closed pipe (`fleet up --json | head -1`) must not kill fleet in the middle of an install:
        // writes then fail with EPIPE, output stops (OutputSink) and the run finishes and saves its state.
        signal(SIGPIPE, SIG_IGN)
        // No core dumps: memory holds the node token and a key passphrase.
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        _ = setrlimit(Int32(RLIMIT_CORE.rawValue), &none)
    }
}
