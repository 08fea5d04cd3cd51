import ArgumentParser
import Fleet
import Foundation
import LowRank
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

/// Options shared by `fleet` and `coordinator`.
struct RunOptions: ParsableArguments {
    @Option(help: "Run directory (default: runs/<scenario>-<time>).")
    var out: String?

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
            "With --baseline: target accuracies of the best tier, comma-separated.",
            valueName: "list"))
    var targets: String = "0.80,0.85,0.87"

    func validate() throws {
        if let rounds, rounds < 1 {
            throw ValidationError("--rounds must be at least 1 (got \(rounds))")
        }
        guard roundTimeout > 0 else { throw ValidationError("--round-timeout must be > 0") }
        _ = try parseTargets(targets)
        guard registrationTimeout > 0 else {
            throw ValidationError("--registration-timeout must be > 0")
        }
        try validateAssignments(assignments)
    }

    var overrides: [(keyPath: String, value: String)] {
        var list: [(keyPath: String, value: String)] = []
        if let rounds { list.append(("rounds", "\(rounds)")) }
        if let seed { list.append(("seed", "\(seed)")) }
        return list + parseAssignments(assignments)
    }

    func runDirectory(for scenario: Scenario) -> String {
        if let out { return out }
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "runs/\(scenario.name)-\(formatter.string(from: Date()))"
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
        let targets = try parseTargets(self.targets)
        let run: RunData
        do {
            run = try RunData.load(directory: directory, architecture: { $0.networkArchitecture })
        } catch {
            throw CommandError("\(error)")
        }
        if let baseline {
            print(equalAccuracyLine(run: run, baseline: baseline, targets: targets))
        } else {
            print(
                "at equal accuracy: give --baseline RUNDIR (a dense FedAvg run of the same data, e.g. of Scenarios/dense-fedavg.yaml) to compare bytes to \(targets.map { String(format: "%.0f%%", 100 * $0) }.joined(separator: "/"))"
            )
        }
        let runs = [run] + (baseline.map { [$0] } ?? [])
        let path = URL(fileURLWithPath: directory).appendingPathComponent(RunRecorder.reportFile)
            .path
        try writeReport(runs, targets: targets, baseline: runs.count - 1, to: path)
        print("report: \(path)")
    }

    func coordinatorOptions(expectedClients: Int?) -> Coordinator.Options {
        var options = Coordinator.Options()
        options.provenance = RunSummary.Provenance(
            version: Maestro.configuration.version, commit: sourceCommit(),
            commandLine: CommandLine.arguments,
            startedAt: ISO8601DateFormatter().string(from: Date()),
            host: ProcessInfo.processInfo.hostName)
        options.expectedClients = expectedClients
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
}

/// Builds everything a coordinator needs from a scenario file and runs it.
func runCoordinator(
    scenario: Scenario, directory: String, server: ZeroMQServer, options: Coordinator.Options,
    quiet: Bool, resuming: Bool = false, resumeCommand: String, releasesClients: Bool = true
) throws -> RunSummary {
    var checkpoint: CoordinatorCheckpoint?
    if resuming {
        do {
            checkpoint = try CoordinatorCheckpoint.load(directory: directory)
        } catch CoordinatorCheckpoint.Error.unreadable {
            checkpoint = nil  // killed before its first round completed: start over
        } catch {
            throw CommandError("\(error)")
        }
        if !quiet { print("resuming \(directory) after round \(checkpoint?.header.round ?? 0)") }
    }
    let recorder: RunRecorder
    do {
        recorder = try RunRecorder(
            directory: directory, scenarioYAML: scenario.yaml(),
            resumingAfter: resuming ? (checkpoint?.header.round ?? -1) : nil)
    } catch {
        throw CommandError("\(error)")
    }
    let evaluationSet: TrainingSamples
    let validationSet: TrainingSamples?
    do {
        evaluationSet = try scenario.evaluationSamples()
        validationSet = try scenario.validationSamples()
    } catch {
        throw CommandError("\(error)")
    }
    var options = options
    let progress = ProgressPrinter(scenario: scenario, quiet: quiet)
    options.onRound = { progress.print($0) }
    let coordinator: Coordinator
    do {
        coordinator = try Coordinator(
            scenario: scenario, transport: server, recorder: recorder, evaluationSet: evaluationSet,
            validationSet: validationSet, options: options, resumingFrom: checkpoint)
    } catch {
        throw CommandError("\(directory): \(error)")
    }
    do {
        return try coordinator.run()
    } catch {
        // Devices of a standalone coordinator are not told to stop: they wait, and rejoin when
        // the run is resumed (or exit non-zero at their idle timeout, which a service manager
        // restarts).
        coordinator.abandon(
            reason: "coordinator stopped: \(error)", tellingClients: releasesClients)
        if case .stopped = error {
            let done = (try? CoordinatorCheckpoint.load(directory: directory))?.header.round ?? 0
            FileHandle.standardError.write(
                Data(
                    "maestro: stopped after round \(done) of \(scenario.rounds); continue with: \(resumeCommand)\n"
                        .utf8))
            throw ExitCode(130)
        }
        throw CommandError("\(error)")
    }
}

struct FleetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract:
            "Simulate a fleet on this machine: a coordinator and a pool of worker processes that host the clients.",
        discussion: """
            Starts the coordinator in this process and a pool of `maestro worker` processes (one \
            per core unless --workers says otherwise), each hosting a share of the scenario's \
            clients over one connection; with --process-per-client (or the scenario's \
            simulation.processPerClient) one `maestro client` process per client instead. Shows a \
            line per round, stops every process at the end or on Ctrl-C, and prints the savings \
            table against dense FedAvg. With --bind, real devices and workers on other machines \
            can join (--workers 0 starts no local worker).
            """)

    @Argument(help: "Scenario file (YAML), e.g. Scenarios/default.yaml (not with --resume).")
    var scenarioFile: String?

    @OptionGroup var runOptions: RunOptions

    @OptionGroup var peerLimits: PeerLimitOptions

    @Option(help: "Address to listen on (default: tcp://127.0.0.1 on a free port).")
    var bind: String?

    @Option(help: "Continue the run in this directory from its last completed round.")
    var resume: String?

    @Option(
        help:
            "Worker processes to start, each hosting a share of the clients (default: one per core; 0: none, for workers on other machines)."
    )
    var workers: Int?

    @Flag(
        name: .customLong("process-per-client"),
        help: "One `maestro client` OS process per client instead of worker processes.")
    var processPerClient = false

    func validate() throws {
        if let bind { try validateEndpoint(bind, flag: "--bind") }
        guard (scenarioFile == nil) != (resume == nil) else {
            throw ValidationError("give a scenario file, or --resume RUNDIR (not both)")
        }
        if resume != nil && !runOptions.overrides.isEmpty {
            throw ValidationError(
                "--resume continues the scenario as run: no --rounds, --seed or --set")
        }
        if let workers, workers < 0 {
            throw ValidationError("--workers must be ≥ 0 (got \(workers))")
        }
        if workers != nil && processPerClient {
            throw ValidationError("give --workers N or --process-per-client, not both")
        }
    }

    /// How the fleet's clients are hosted.
    enum Hosting: Equatable {
        case processPerClient
        case workers(Int)
    }

    func hosting(for scenario: Scenario) -> Hosting {
        if processPerClient { return .processPerClient }
        if let workers { return .workers(min(workers, scenario.clients)) }
        if scenario.simulation.processPerClient { return .processPerClient }
        return .workers(min(max(1, ProcessInfo.processInfo.activeProcessorCount), scenario.clients))
    }

    func run() throws {
        installStopHandlers()
        returnLargeBuffersToTheSystem()
        let baseline = try runOptions.loadBaseline()
        let scenario: Scenario
        let directory: String
        if let resume {
            scenario = try loadScenario(
                URL(fileURLWithPath: resume).appendingPathComponent(RunRecorder.scenarioFile).path)
            directory = resume
        } else {
            scenario = try loadScenario(scenarioFile!, overrides: runOptions.overrides)
            directory = runOptions.runDirectory(for: scenario)
            try refuseExistingRun(in: directory, resume: "maestro fleet --resume \(directory)")
        }
        let hosting = hosting(for: scenario)
        let keyNames: [String]
        switch hosting {
        case .processPerClient: keyNames = (0..<scenario.clients).map { "client-\($0)" }
        case .workers(let count): keyNames = (0..<count).map { "worker-\($0)" }
        }
        // With security.requireCurve the fleet makes a key pair for the coordinator and one
        // per client process or worker (in RUNDIR/keys) and allows exactly those.
        let keys =
            scenario.security.requireCurve
            ? try FleetKeys(
                directory: directory, names: keyNames,
                bindings: hosting == .processPerClient
                    ? scenario.fleet().map { (UInt32($0.index), $0.tier.name) } : nil) : nil
        let limits = try peerLimits.serverLimits()
        let server: ZeroMQServer
        do {
            server = try ZeroMQServer(
                bindingTo: bind ?? "tcp://127.0.0.1:*", limits: limits,
                curve: keys?.serverConfiguration)
        } catch {
            throw CommandError("\(error)")
        }
        defer { server.close() }
        let endpoint = loopbackEndpoint(server.endpoint)
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true)
        // Clients read the scenario as run (with overrides) from the run directory.
        let scenarioPath = URL(fileURLWithPath: directory).appendingPathComponent(
            RunRecorder.scenarioFile
        ).path
        try RunRecorder.writeAtomically(Array(scenario.yaml().utf8), to: scenarioPath)
        if !runOptions.quiet {
            let hosted: String
            switch hosting {
            case .processPerClient: hosted = "one process per client"
            case .workers(0):
                hosted = "no local worker (workers and devices join on \(server.endpoint))"
            case .workers(let count): hosted = "\(count) worker process\(count == 1 ? "" : "es")"
            }
            print(
                "fleet \(scenario.name): \(scenario.clients) clients (\(zip(scenario.tiers, scenario.clientsPerTier).map { "\($0.1) \($0.0.name)" }.joined(separator: ", "))), \(scenario.rounds) rounds, \(scenario.model.strategy.rawValue) \(scenario.modelKind.rawValue), \(hosted); coordinator on \(server.endpoint); run directory \(directory)"
            )
            flushOutput()
        }
        let launcher = try ClientLauncher(
            logPath: URL(fileURLWithPath: directory).appendingPathComponent("clients.log").path)
        defer { launcher.stopAll() }
        // Clients read plain copies of the training files (inflated once, here).
        var dataArguments: [String] = []
        if case .fashionMNIST(let dataDirectory, _) = scenario.dataset {
            do {
                dataArguments = ["--data-dir", try DataCache.plainTrainingFiles(of: dataDirectory)]
            } catch {
                throw CommandError("\(error)")
            }
        }
        var options = runOptions.coordinatorOptions(expectedClients: scenario.clients)
        options.enrolment = keys?.enrolment
        // Workers prove what they are: by their keys under CURVE, else by a secret that
        // reaches the local workers through their environment and remote ones through a file.
        var workerEnvironment: [String: String] = [:]
        if keys == nil, case .workers(let count) = hosting {
            let path = URL(fileURLWithPath: directory).appendingPathComponent("worker.secret").path
            let secret = try workerSecret(at: path).secret
            options.workerSecret = secret
            workerEnvironment[WorkerSecret.environmentVariable] = secret
            if count == 0 && !runOptions.quiet {
                print(
                    "workers join with: maestro worker --connect \(server.endpoint) --worker-secret-file \(path)"
                )
            }
        }
        switch hosting {
        case .processPerClient:
            for client in scenario.fleet() {
                try launcher.launch(
                    hosting: stride(from: client.index, to: client.index + 1, by: 1),
                    arguments: [
                        "client", "--connect", endpoint, "--tier", client.tier.name,
                        "--partition-of", scenarioPath, "--index", "\(client.index)", "--gflops",
                        "\(client.tier.gflops)", "--exit-with-parent",
                    ] + dataArguments + (keys?.arguments(name: "client-\(client.index)") ?? []))
            }
        case .workers(let count):
            options.workerSlots = count > 0 ? count : nil
            for slot in 0..<count {
                try launcher.launch(
                    hosting: stride(from: slot, to: scenario.clients, by: count),
                    arguments: [
                        "worker", "--connect", endpoint, "--slot", "\(slot)", "--slots", "\(count)",
                        "--exit-with-parent",
                    ] + dataArguments + (keys?.arguments(name: "worker-\(slot)") ?? []),
                    environment: workerEnvironment)
            }
        }
        options.lostClients = { launcher.exitedClients() }
        if !runOptions.quiet { options.onRegistration = RegistrationPrinter().print }
        let summary = try runCoordinator(
            scenario: scenario, directory: directory, server: server, options: options,
            quiet: runOptions.quiet, resuming: resume != nil,
            resumeCommand: "maestro fleet --resume \(shellQuoted(directory))")
        launcher.waitForExit(timeout: .seconds(10))
        try runOptions.finish(summary: summary, directory: directory, baseline: baseline)
    }
}

/// The registration progress line of a large fleet.
final class RegistrationPrinter: @unchecked Sendable {
    // Called only from the coordinator's thread; the class exists to hold the start time.
    private let started = monotonicSeconds()
    private var printed = false

    func print(registered: Int, needed: Int) {
        let seconds = monotonicSeconds() - started
        if registered >= needed {
            guard printed || seconds >= 1 else { return }
            Swift.print(String(format: "registered %d clients in %.1f s", registered, seconds))
        } else {
            guard seconds >= 0.5 else { return }
            printed = true
            Swift.print(
                String(
                    format: "registering: %d of %d clients (%.1f s)", registered, needed, seconds))
        }
        flushOutput()
    }
}

struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract:
            "Run a coordinator that waits for clients (on this or other machines) and runs a scenario."
    )

    @Option(help: "Scenario file (YAML).")
    var scenario: String

    @Option(help: "Address to listen on, e.g. tcp://*:5555.")
    var bind: String

    @Option(help: "Clients to wait for before round 1 (default: the scenario's fleet size).")
    var expect: Int?

    @Flag(help: "Continue the run in --out from its last completed round.")
    var resume = false

    @Option(
        help:
            "Split the fleet into this many shares for `maestro worker` processes (default: the split the first worker declares with --slots)."
    )
    var workers: Int?

    @Option(
        name: .customLong("max-clients"),
        help:
            "Let up to this many clients register, for open deployments (default and minimum: the scenario's clients)."
    )
    var maxClients: Int?

    @OptionGroup var security: ServerSecurityOptions

    @Option(
        name: .customLong("worker-secret-file"),
        help:
            "The worker secret plaintext workers must present: read from this file, or made and written there (default: RUNDIR/worker.secret). Under CURVE with an allow-list, worker keys admit workers instead."
    )
    var workerSecretFile: String?

    @OptionGroup var runOptions: RunOptions

    @OptionGroup var peerLimits: PeerLimitOptions

    func validate() throws { try validateEndpoint(bind, flag: "--bind") }

    /// This command line again, with `--resume` (and the run folder it wrote to): the command
    /// that continues this run, with its devices and workers, where it stopped.
    func resumeCommand(_ directory: String) -> String {
        var arguments = Array(CommandLine.arguments.dropFirst()).filter { $0 != "--resume" }
        if runOptions.out == nil { arguments += ["--out", directory] }
        return (["maestro"] + arguments + ["--resume"]).map(shellQuoted).joined(separator: " ")
    }

    func run() throws {
        installStopHandlers()
        returnLargeBuffersToTheSystem()
        if resume && runOptions.out == nil { throw ValidationError("--resume needs --out RUNDIR") }
        let baseline = try runOptions.loadBaseline()
        let loaded = try loadScenario(scenario, overrides: runOptions.overrides)
        if let maxClients, maxClients < loaded.clients || maxClients >= Int(UInt32.max) {
            throw ValidationError(
                "--max-clients must be at least the scenario's \(loaded.clients) clients (got \(maxClients))"
            )
        }
        if let expect, expect < 1 || expect > (maxClients ?? loaded.clients) {
            throw ValidationError(
                "--expect must be in 1…\(maxClients ?? loaded.clients) (got \(expect))")
        }
        let limits = try peerLimits.serverLimits()
        let server: ZeroMQServer
        do {
            server = try ZeroMQServer(
                bindingTo: bind, limits: limits,
                curve: try security.configuration(required: loaded.security.requireCurve))
        } catch {
            throw CommandError("\(error)")
        }
        defer { server.close() }
        if let workers, workers < 1 || workers > loaded.clients {
            throw ValidationError("--workers must be in 1…\(loaded.clients) (got \(workers))")
        }
        let directory = runOptions.runDirectory(for: loaded)
        if !resume {
            try refuseExistingRun(in: directory, resume: resumeCommand(directory))
        }
        if !runOptions.quiet {
            print(
                "coordinator \(loaded.name) listening on \(server.endpoint); run directory \(directory)"
            )
        }
        var options = runOptions.coordinatorOptions(expectedClients: expect ?? loaded.clients)
        options.workerSlots = workers
        options.enrolment = try security.enrolment()
        if options.enrolment == nil {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true)
            let path =
                workerSecretFile
                ?? URL(fileURLWithPath: directory).appendingPathComponent("worker.secret").path
            let (secret, created) = try workerSecret(at: path)
            options.workerSecret = secret
            if !runOptions.quiet {
                print(
                    "workers join with --worker-secret-file \(path)\(created ? " (written now, mode 600)" : "")"
                )
            }
        }
        options.maximumClients = maxClients
        if !runOptions.quiet { options.onRegistration = RegistrationPrinter().print }
        let summary = try runCoordinator(
            scenario: loaded, directory: directory, server: server, options: options,
            quiet: runOptions.quiet, resuming: resume, resumeCommand: resumeCommand(directory),
            releasesClients: false)
        try runOptions.finish(summary: summary, directory: directory, baseline: baseline)
    }
}

/// The git commit of the source tree this executable was built in (`.build/…/maestro` inside
/// a clone), read from `.git` without running git; `nil` for an installed binary.
func sourceCommit() -> String? {
    let executable =
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        ?? CommandLine.arguments[0]
    var folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
    for _ in 0..<6 {
        let git = folder.appendingPathComponent(".git")
        if let head = try? String(contentsOf: git.appendingPathComponent("HEAD"), encoding: .utf8) {
            let line = head.trimmingCharacters(in: .whitespacesAndNewlines)
            guard line.hasPrefix("ref: ") else { return line }
            let ref = String(line.dropFirst(5))
            if let value = try? String(
                contentsOf: git.appendingPathComponent(ref), encoding: .utf8)
            {
                return value.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let packed =
                (try? String(
                    contentsOf: git.appendingPathComponent("packed-refs"), encoding: .utf8)) ?? ""
            return packed.split(separator: "\n").first { $0.hasSuffix(" " + ref) }
                .map { String($0.prefix { $0 != " " }) }
        }
        folder = folder.deletingLastPathComponent()
    }
    return nil
}

/// Refuses to start a new run in a folder that holds one: its metrics, ledger and checkpoint
/// would be mixed with the new run's (nothing is written before this check).
///
/// A folder holds a run once a round of it completed (its checkpoint, a metrics line or a final
/// model is there): a run stopped or timed out before its first round left nothing to continue,
/// and its files (registration rows, an interrupted summary) make way for the new run.
func refuseExistingRun(in directory: String, resume: String) throws {
    func size(_ file: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: "\(directory)/\(file)"))?[.size] as? Int
    }
    let found =
        [CoordinatorCheckpoint.fileName, RunRecorder.finalModelFile].first {
            size($0) != nil
        } ?? ((size(RunRecorder.metricsFile) ?? 0) > 0 ? RunRecorder.metricsFile : nil)
    guard let found else {
        for file in [RunRecorder.metricsFile, RunRecorder.ledgerFile, RunRecorder.summaryFile] {
            try? FileManager.default.removeItem(atPath: "\(directory)/\(file)")
        }
        return
    }
    throw CommandError(
        "\(directory) already holds a run (\(found)): continue it with `\(resume)`, or choose another --out"
    )
}

/// `tcp://0.0.0.0:P` or `tcp://*:P` as an address local clients can connect to.
func loopbackEndpoint(_ endpoint: String) -> String {
    for wildcard in ["tcp://0.0.0.0:", "tcp://*:", "tcp://[::]:"] where endpoint.hasPrefix(wildcard)
    {
        return "tcp://127.0.0.1:" + endpoint.dropFirst(wildcard.count)
    }
    return endpoint
}

/// Key pairs of a CURVE-secured simulated fleet, written to RUNDIR/keys (secret files 600):
/// the coordinator's and one per client process or worker.
struct FleetKeys {
    let directory: String
    let serverConfiguration: CurveServerConfiguration
    /// Each client process's key bound to its fleet index and tier (workers' keys, which
    /// host many clients, to none).
    let enrolment: Enrolment

    /// `bindings[i]` is the client ID and tier of `names[i]`'s key, when given.
    init(
        directory runDirectory: String, names: [String], bindings: [(UInt32, String)]? = nil
    ) throws {
        let folder = URL(fileURLWithPath: runDirectory).appendingPathComponent("keys").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        func pair(_ name: String) throws -> CurveKeyPair {
            let secret = "\(folder)/\(name).key"
            if let existing = try? readKey(secret, what: "secret key") {  // a resumed run keeps its keys
                return try CurveKeyPair(secretKey: existing)
            }
            let pair = try CurveKeyPair.generate()
            try writeAtomically(Array((pair.secretKey + "\n").utf8), to: secret, mode: 0o600)
            try writeAtomically(Array((pair.publicKey + "\n").utf8), to: "\(folder)/\(name).pub")
            return pair
        }
        directory = folder
        let server = try pair("coordinator")
        var enrolment = Enrolment()
        var lines = [
            "# maestro fleet: each client's key bound to its client ID and tier, or a worker's key"
        ]
        for (index, name) in names.enumerated() {
            let key = try pair(name).publicKey
            // Without bindings the keys are the workers': enrolled as workers, never devices.
            let binding = bindings?[index]
            _ = enrolment.add(
                key: key,
                entry: binding.map { Enrolment.Entry(clientID: $0.0, tier: $0.1) } ?? .worker)
            lines.append(
                [key, binding.map { "\($0.0) \($0.1)" } ?? "worker"].joined(separator: " "))
        }
        try writeAtomically(
            Array((lines.joined(separator: "\n") + "\n").utf8), to: "\(folder)/allow-list")
        self.enrolment = enrolment
        serverConfiguration = CurveServerConfiguration(
            keyPair: server, allowedClientKeys: enrolment.keys)
    }

    func arguments(name: String) -> [String] {
        [
            "--server-key", "\(directory)/coordinator.pub", "--client-key",
            "\(directory)/\(name).key",
        ]
    }
}

/// `text` as one shell word: as it is when it is plain, in single quotes otherwise.
func shellQuoted(_ text: String) -> String {
    let plain =
        !text.isEmpty
        && text.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) || "-_./:=@%+,".unicodeScalars.contains($0)
        }
    return plain ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
