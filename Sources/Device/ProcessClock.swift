#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The clocks a process times itself with, in seconds since an arbitrary origin.
///
/// Training is timed in CPU time, not wall time: on a loaded machine the wall clock would
/// count waiting. A worker trains its clients one at a time on its one thread, so it reads
/// its thread's clock; a client process, its process's.
public enum ProcessClock: Sendable {
    /// Wall time that never goes back (progress lines, benchmarks).
    case monotonic
    /// CPU time of this whole process.
    case processCPU
    /// CPU time of the calling thread.
    case threadCPU
    /// User and system CPU time of this process's waited-for descendants.
    case childrenCPU

    public var seconds: Double {
        switch self {
        case .monotonic: Self.read(CLOCK_MONOTONIC)
        case .processCPU: Self.read(CLOCK_PROCESS_CPUTIME_ID)
        case .threadCPU: Self.read(CLOCK_THREAD_CPUTIME_ID)
        case .childrenCPU:
            {
                var usage = rusage()
                getrusage(RUSAGE_CHILDREN.rawValue, &usage)
                return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) * 1e-6
                    + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) * 1e-6
            }()
        }
    }

    private static func read(_ clock: clockid_t) -> Double {
        var time = timespec()
        clock_gettime(clock, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}
