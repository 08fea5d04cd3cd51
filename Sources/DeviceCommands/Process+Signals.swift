#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Unblocks SIGINT and SIGTERM, which a process may inherit blocked (a launcher's thread mask),
/// so that Ctrl-C and `systemctl stop` reach the stop handlers. Call before any thread starts.
public func unblockStopSignals() {
    var stopSignals = sigset_t()
    sigemptyset(&stopSignals)
    sigaddset(&stopSignals, SIGINT)
    sigaddset(&stopSignals, SIGTERM)
    pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
}
