#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex with a condition variable (POSIX threads): what `NSLock` and `NSCondition` offer,
/// without linking all of Foundation into the board client (docs/devices.md).
///
/// `@unchecked Sendable`: the mutex and the condition are made to be shared between threads,
/// and live at fixed heap addresses for the object's lifetime.
final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    #if os(Linux)
    /// The clock of `wait(until:)`'s deadlines: one that no change of the wall clock moves.
    private static let clock = CLOCK_MONOTONIC
    #else
    private static let clock = CLOCK_REALTIME
    #endif

    init() {
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        #if os(Linux)
        pthread_condattr_setclock(&attributes, Self.clock)
        #endif
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }

    func unlock() { pthread_mutex_unlock(mutex) }

    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Wakes every thread waiting in `wait(until:)`.
    func broadcast() { pthread_cond_broadcast(condition) }

    /// The deadline `timeout` from now (negative timeouts count as zero), for `wait(until:)`.
    static func deadline(after timeout: Duration) -> timespec {
        var now = timespec()
        clock_gettime(clock, &now)
        let (seconds, attoseconds) = timeout.components
        guard seconds >= 0, attoseconds >= 0 else { return now }
        var nanoseconds = Int(now.tv_nsec) + Int(attoseconds / 1_000_000_000)
        let carry = nanoseconds / 1_000_000_000
        nanoseconds %= 1_000_000_000
        return timespec(
            tv_sec: now.tv_sec + Int(seconds) + carry, tv_nsec: nanoseconds)
    }

    /// Waits, holding the lock, until another thread broadcasts or `deadline` passes (which
    /// may also wake it spuriously: callers check their condition again). Returns `false` once
    /// the deadline has passed.
    func wait(until deadline: timespec) -> Bool {
        var deadline = deadline
        return pthread_cond_timedwait(condition, mutex, &deadline) != ETIMEDOUT
    }
}
