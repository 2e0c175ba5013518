import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Raises the soft limit on open files to the hard limit: every host being set up holds a
/// socket (and a thread), so a 1000-host run must not stop at a default soft limit of 1024.
func raiseOpenFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}
