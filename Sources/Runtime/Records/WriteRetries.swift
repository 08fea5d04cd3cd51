import Foundation
import RunRecords

/// Retries a write of whole files that failed, as when the process is out of descriptors
/// (`EMFILE`, a flood of connections) or the disk is momentarily full (`ENOSPC`), with a
/// doubling back-off, a log line per failure, and the last error once the attempts are spent.
///
/// Only for writes that are idempotent and atomic (`RunRecorder.writeAtomically`: a temporary
/// file renamed over the old one), so a failed attempt leaves the previous file whole and a
/// repeated one writes the same bytes: nothing saved is lost by retrying or by giving up.
public struct WriteRetries: Sendable {
    /// Attempts in all, the first included.
    public var attempts = 8
    /// The wait after the first failure; each later wait doubles, up to `maximumDelay`.
    public var firstDelay: Duration = .milliseconds(100)
    public var maximumDelay: Duration = .seconds(2)
    /// How the driver waits (a test passes one that records the delays).
    public var sleep: @Sendable (Duration) -> Void = { delay in
        Thread.sleep(forTimeInterval: delay.seconds)
    }

    public init() {}

    /// The waits between attempts: 0.1, 0.2, 0.4, 0.8, 1.6, 2, 2 s by default (7.1 s).
    public var delays: [Duration] {
        (0..<max(0, attempts - 1)).map { index in
            min(firstDelay * (1 << min(index, 30)), maximumDelay)
        }
    }

    /// Runs `write` until it succeeds or the attempts are spent.
    func run<T>(
        _ what: String, log: (String) -> Void, _ write: () throws(RunRecorder.Error) -> T
    ) throws(RunRecorder.Error) -> T {
        let delays = self.delays
        var attempt = 0
        while true {
            do {
                return try write()
            } catch {
                guard attempt < delays.count else {
                    log("\(what) failed \(attempt + 1) times; giving up: \(error)")
                    throw error
                }
                log(
                    "\(what) failed (attempt \(attempt + 1) of \(delays.count + 1)): \(error); retrying in \(delays[attempt])"
                )
                sleep(delays[attempt])
                attempt += 1
            }
        }
    }
}
