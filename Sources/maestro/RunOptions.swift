import ArgumentParser
import Fleet
import Foundation
import Launch
import Report
import RunRecords
import Runtime
import Synchronization
import Transport

/// Set by SIGINT/SIGTERM; the coordinator polls it between frames.
let stopRequested = Atomic<Bool>(false)

func installStopHandlers() {
    for signalNumber in [SIGINT, SIGTERM] {
        signal(signalNumber) { _ in stopRequested.store(true, ordering: .relaxed) }
    }
}

/// The scenario overrides of `fleet`, `coordinator` and `scenario show`: `--rounds`,
/// `--seed` and `--set key.path=value`.
struct ScenarioOverrideOptions: ParsableArguments {
    @Option(help: "Override the scenario's number of rounds.")
    var rounds: Int?

    @Option(help: "Override the scenario's seed.")
    var seed: UInt64?

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp(
            "Override any scenario key, e.g. --set training.learningRate=0.02 (repeatable).",
            valueName: "key.path=value"))
    var assignments: [String] = []

    func validate() throws {
        if let rounds, rounds < 1 {
            throw ValidationError("--rounds must be at least 1 (got \(rounds))")
        }
        try validateAssignments(assignments)
    }

    var overrides: [(keyPath: String, value: String)] {
        var list: [(keyPath: String, value: String)] = []
        if let rounds { list.append(("rounds", "\(rounds)")) }
        if let seed { list.append(("seed", "\(seed)")) }
        return list + parseAssignments(assignments)
    }

    var scenarioOverrides: [ScenarioOverride] {
        overrides.map { ScenarioOverride(keyPath: $0.keyPath, value: $0.value) }
    }
}

/// Options shared by `fleet` and `coordinator`.
struct RunOptions: ParsableArguments {
    @Option(help: "Run directory (default: runs/<scenario>-<time>).")
    var out: String?

    @OptionGroup var scenario: ScenarioOverrideOptions

    @Option(
        name: .customLong("round-timeout"),
        help: "Wall-clock seconds to wait for a round's updates before dropping silent clients.")
    var roundTimeout: Double = 120

    @Option(
        name: .customLong("registration-timeout"),
        help: "Wall-clock seconds to wait for the clients to register.")
    var registrationTimeout: Double = 120

    @Flag(help: "Print only the final table.")
    var quiet = false

    @Option(
        help:
            "A finished run to compare with at equal accuracy (e.g. a dense FedAvg run of the same data): its to-target line goes into the savings table and its curves into report.html."
    )
    var baseline: String?

    @Option(
        help: ArgumentHelp(
            "Target accuracies of the best tier, comma-separated (default: the scenario's report.targets, else 0.80,0.85,0.87).",
            valueName: "list"))
    var targets: String?

    func validate() throws {
        guard roundTimeout > 0 else { throw ValidationError("--round-timeout must be > 0") }
        if let targets { _ = try parseTargets(targets) }
        guard registrationTimeout > 0 else {
            throw ValidationError("--registration-timeout must be > 0")
        }
    }

    /// The baseline run, read before the run starts so that a wrong path fails at once.
    func loadBaseline() throws -> RunData? {
        guard let baseline else { return nil }
        do {
            return try RunData.load(directory: baseline, architecture: { $0.networkArchitecture })
        } catch {
            throw CommandError("--baseline \(baseline): \(error)")
        }
    }

    /// After a run: writes `report.html` (with the baseline, if any) and prints the savings
    /// table, with the at-equal-accuracy line when there is a baseline.
    func finish(summary: RunSummary, directory: String, baseline: RunData?) throws {
        if !quiet { print() }  // after the progress lines
        print(SavingsTable(summary: summary).render())
        let run: RunData
        do {
            run = try RunData.load(directory: directory, architecture: { $0.networkArchitecture })
        } catch {
            throw CommandError("\(error)")
        }
        let runs = [run] + (baseline.map { [$0] } ?? [])
        let targets = try self.targets.map(parseTargets) ?? RunData.targets(of: runs)
        if let baseline {
            print(equalAccuracyLine(run: run, baseline: baseline, targets: targets))
        } else {
            print(
                "at equal accuracy: give --baseline RUNDIR (a dense FedAvg run of the same data, e.g. of Scenarios/dense-fedavg.yaml) to compare bytes to \(targets.map { String(format: "%.0f%%", 100 * $0) }.joined(separator: "/"))"
            )
        }
        let path = URL(fileURLWithPath: directory).appendingPathComponent(RunRecorder.reportFile)
            .path
        try writeReport(runs, targets: targets, baseline: runs.count - 1, to: path)
        print("report: \(path)")
    }

    /// The coordinator's timeouts, log and stop request from these options.
    var coordinatorOptions: Coordinator.Options {
        var options = Coordinator.Options()
        options.roundTimeout = .milliseconds(Int64(roundTimeout * 1000))
        // Half the transport's ZMQ_MAXMSGSIZE: frames in between decode to an error that gets
        // a reply (`messageTooLarge`) instead of a silently dropped connection.
        options.maximumMessageSize = ZeroMQOptions().maximumMessageSize / 2
        options.registrationTimeout = .milliseconds(Int64(registrationTimeout * 1000))
        options.shouldStop = { stopRequested.load(ordering: .relaxed) }
        let quiet = self.quiet
        options.log = { message in
            if !quiet { FileHandle.standardError.write(Data("coordinator: \(message)\n".utf8)) }
        }
        return options
    }

    /// What the run prints as it goes: nothing but the final table with `--quiet`.
    var output: RunOutput {
        guard !quiet else { return RunOutput() }
        return RunOutput(
            note: { line in
                print(line)
                flushOutput()
            },
            round: { round, scenario in ProgressPrinter(scenario: scenario).print(round) },
            registration: RegistrationPrinter().print)
    }
}

/// Runs a library call, mapping its error to the command line's: a stop prints the command
/// that continues the run and exits 130; any other failure is one line.
func launching<Result>(_ body: () throws(LaunchError) -> Result) throws -> Result {
    do {
        return try body()
    } catch .stopped(let round, let rounds, let command) {
        FileHandle.standardError.write(
            Data(
                "maestro: \(LaunchError.stopped(round: round, rounds: rounds, resumeCommand: command))\n"
                    .utf8))
        throw ExitCode(130)
    } catch {
        throw CommandError(error.description)
    }
}
