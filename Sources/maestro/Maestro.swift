import ArgumentParser
import CPlatform
import Foundation
import Runtime
import Tensors

@main
struct Entry {
    /// Synchronous on purpose: an `async` main runs on libdispatch's main queue and worker
    /// pool, whose Linux pool monitor reads `/proc/self/task` and crashes (SIGILL) in a root
    /// without `/proc`, as the packaged board client runs. Nothing here needs concurrency.
    static func main() {
        // A process may inherit SIGINT and SIGTERM blocked (a launcher's thread mask): unblock
        // them before any thread starts, so that Ctrl-C reaches the stop handlers.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGINT)
        sigaddset(&stopSignals, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
        KernelSelection.ensureBestKernel()
        BLASKernel.setThreadCount(1)
        // Training allocates the same large activation buffers every step: keep them on the
        // heap (reused) instead of fresh mmap'd pages (a page fault per 4 KiB each time).
        maestro_keep_large_allocations_on_heap()
        Maestro.main()
    }
}

struct Maestro: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maestro",
        abstract: "Federated learning with low-rank ordered (LoD) models.",
        discussion: """
            Every dense or convolutional layer is factored as W = U Vᵀ with components ordered by \
            importance, so any prefix of the components is a working smaller model.
            """,
        version: "0.1.0",
        subcommands: [
            Train.self, Evaluate.self, Export.self, FleetCommand.self, CoordinatorCommand.self,
            ClientCommand.self, WorkerCommand.self,
            ScenarioCommand.self, KeysCommand.self, Bench.self, ReportCommand.self,
            CompareCommand.self,
        ]
    )
}

/// A fatal error of a command, already phrased for the user (names the file or flag).
struct CommandError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}

/// Seconds since an arbitrary origin, for progress lines and benchmarks.
func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

/// Writes a file atomically (temporary file, fsync, rename) or fails naming it.
func writeAtomically(
    _ bytes: [UInt8], to path: String, mode: mode_t = 0o644
) throws(CommandError) {
    do {
        try RunRecorder.writeAtomically(bytes, to: path, mode: mode)
    } catch {
        throw CommandError("\(error)")
    }
}

/// Reads a whole file or fails naming it.
func readFile(_ path: String) throws(CommandError) -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
        let reason = FileManager.default.fileExists(atPath: path) ? "unreadable" : "no such file"
        throw CommandError("\(path): \(reason)")
    }
    return Array(data)
}

/// Flushes standard output so progress lines appear at once when piped.
func flushOutput() {
    fflush(nil)
}
