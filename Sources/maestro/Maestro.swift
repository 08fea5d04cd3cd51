import ArgumentParser
import CPlatform
import Fleet
import Foundation
import RunRecords
import Runtime
import Tensors

@main
struct Entry {
    /// Synchronous on purpose: an `async` main runs on libdispatch's main queue and worker
    /// pool, whose Linux pool monitor reads `/proc/self/task` and crashes (SIGILL) in a root
    /// without `/proc`, as the packaged board client runs. Nothing here needs concurrency.
    static func main() {
        unblockStopSignals()
        KernelSelection.ensureBestKernel()
        BLASKernel.setThreadCount(1)
        // Training allocates the same large activation buffers every step: keep them on the
        // heap (reused) instead of fresh mmap'd pages (a page fault per 4 KiB each time).
        maestro_keep_large_allocations_on_heap()
        run(Array(CommandLine.arguments.dropFirst()))
    }

    /// Parses and runs a command line. Unlike `Maestro.main()`, a mistyped subcommand gets a
    /// suggestion, and an error a subcommand throws while running is printed with that
    /// subcommand's usage, not the root's.
    static func run(_ arguments: [String]) -> Never {
        let arguments = BenchCommand.modernSpelling(of: arguments)
        let names = Maestro.configuration.subcommands.map { $0._commandName }
        if let first = arguments.first, !first.hasPrefix("-"), first != "help",
            !names.contains(first)
        {
            var message = "Error: unknown subcommand '\(first)'"
            if let suggestion = closestMatch(to: first, among: names) {
                message += "; did you mean '\(suggestion)'?"
            }
            FileHandle.standardError.write(
                Data((message + "\nSee 'maestro --help' for the subcommands.\n").utf8))
            Foundation.exit(64)
        }
        var command: ParsableCommand
        do {
            command = try Maestro.parseAsRoot(arguments)
        } catch {
            Maestro.exit(withError: error)
        }
        do {
            try command.run()
        } catch {
            type(of: command).exit(withError: error)
        }
        Foundation.exit(0)
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
            ClientCommand<FleetPartitions>.self, WorkerCommand.self,
            ScenarioCommand.self, KeysCommand.self, BenchCommand.self, ReportCommand.self,
            CompareCommand.self, ModelCommand.self,
        ]
    )
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
