import Fleet
import Foundation
import LowRank
import RunRecords
import Runtime
import Transport

/// What a run tells its user as it goes; the command line prints it.
public struct RunOutput: Sendable {
    /// An information line (what starts, where, how to join); not printed with `--quiet`.
    public var note: @Sendable (String) -> Void
    /// Each finished round of the scenario.
    public var round: @Sendable (RoundMetrics, Scenario) -> Void
    /// While clients register: how many are in and how many are needed.
    public var registration: (@Sendable (_ registered: Int, _ needed: Int) -> Void)?

    public init(
        note: @escaping @Sendable (String) -> Void = { _ in },
        round: @escaping @Sendable (RoundMetrics, Scenario) -> Void = { _, _ in },
        registration: (@Sendable (_ registered: Int, _ needed: Int) -> Void)? = nil
    ) {
        self.note = note
        self.round = round
        self.registration = registration
    }
}

/// Where a run starts: a new run of a scenario, or the run of a folder continued.
public enum RunStart: Sendable {
    /// A new run of `scenario` in `directory` (default: `runs/<scenario>-<time>`).
    case new(Scenario, directory: String?)
    /// The run in `directory`, continued from its last completed round. A scenario file and
    /// overrides, if given, must describe the scenario it runs (see `RunFolder`).
    case resume(directory: String, scenarioFile: String?, overrides: [ScenarioOverride])
}

/// A `--set key.path=value` override (or `--rounds`, `--seed`) of a scenario key.
public struct ScenarioOverride: Sendable, Equatable {
    public var keyPath: String
    public var value: String

    public init(keyPath: String, value: String) {
        self.keyPath = keyPath
        self.value = value
    }
}

/// A run whose scenario, folder and provenance are settled, ready to host.
struct PreparedRun {
    var scenario: Scenario
    var folder: RunFolder
    var resuming: Bool
    var provenance: RunSummary.Provenance

    /// Settles `start`: a new run's folder must hold no run (`resumeCommand(folder)` is the
    /// command the refusal suggests); a resume's scenario is the folder's, and its provenance
    /// keeps the original command line with this one appended.
    init(
        _ start: RunStart, version: String, commandLine: [String],
        resumeCommand: (String) -> String
    ) throws(LaunchError) {
        let now = SourceTree.provenance(version: version, commandLine: commandLine)
        switch start {
        case .new(let scenario, let directory):
            self.scenario = scenario
            folder = RunFolder(directory ?? RunFolder.defaultPath(for: scenario))
            try folder.prepareForNewRun(resumeCommand: resumeCommand(folder.path))
            provenance = now
            resuming = false
        case .resume(let directory, let scenarioFile, let overrides):
            folder = RunFolder(directory)
            scenario = try folder.scenarioToResume(
                scenarioFile: scenarioFile, overrides: overrides.map { ($0.keyPath, $0.value) })
            provenance = folder.provenance(resumedBy: now)
            resuming = true
        }
    }
}

/// Hosts a coordinator for a prepared run: its recorder, data, checkpoint and stop.
enum RunHost {
    static func run(
        _ run: PreparedRun, server: ZeroMQServer, options: Coordinator.Options,
        output: RunOutput, resumeCommand: String, releasesClients: Bool
    ) throws(LaunchError) -> RunSummary {
        let directory = run.folder.path
        let scenario = run.scenario
        try run.folder.record(run.provenance)
        var checkpoint: CoordinatorCheckpoint?
        if run.resuming {
            do {
                checkpoint = try CoordinatorCheckpoint.load(directory: directory)
            } catch CoordinatorCheckpoint.Error.unreadable {
                checkpoint = nil  // killed before its first round completed: start over
            } catch {
                throw .failed("\(error)")
            }
            output.note("resuming \(directory) after round \(checkpoint?.header.round ?? 0)")
        }
        let recorder: RunRecorder
        let evaluationSet: TrainingSamples
        let validationSet: TrainingSamples?
        do {
            recorder = try RunRecorder(
                directory: directory, scenarioYAML: scenario.yaml(),
                resumingAfter: run.resuming ? (checkpoint?.header.round ?? -1) : nil)
            evaluationSet = try scenario.evaluationSamples()
            validationSet = try scenario.validationSamples()
        } catch {
            throw .failed("\(error)")
        }
        var options = options
        let report = output.round
        options.onRound = { report($0, scenario) }
        options.provenance = run.provenance
        if let registration = output.registration { options.onRegistration = registration }
        // A thread of its own reads the socket and answers link probes while the coordinator
        // aggregates and evaluates; stopped (the server the caller's again) when the run ends.
        let transport: ServedServer
        let coordinator: Coordinator
        do {
            // Room for two of the largest frames, and at least 16 MiB of small ones.
            transport = try ServedServer(
                server,
                queueBudget: max(16 << 20, 2 * server.limits.maximumInboundFrameBytes))
            coordinator = try Coordinator(
                scenario: scenario, transport: transport, recorder: recorder,
                evaluationSet: evaluationSet, validationSet: validationSet, options: options,
                resumingFrom: checkpoint)
            try transport.start(answering: coordinator.probeDesk.reply)
        } catch {
            throw .failed("\(directory): \(error)")
        }
        defer { transport.stop() }
        do {
            return try coordinator.run()
        } catch {
            // Devices of a standalone coordinator are not told to stop: they wait, and rejoin
            // when the run is resumed (or exit non-zero at their idle timeout, which a service
            // manager restarts).
            coordinator.abandon(
                reason: "coordinator stopped: \(error)", tellingClients: releasesClients)
            if case .stopped = error {
                let done = (try? CoordinatorCheckpoint.load(directory: directory))?.header.round
                throw .stopped(
                    round: done ?? 0, rounds: scenario.rounds, resumeCommand: resumeCommand)
            }
            throw .failed("\(error)")
        }
    }

    /// Binds the coordinator's socket, or fails naming the address.
    static func bind(
        _ address: String, limits: ServerLimits, curve: CurveServerConfiguration?
    ) throws(LaunchError) -> ZeroMQServer {
        do {
            return try ZeroMQServer(bindingTo: address, limits: limits, curve: curve)
        } catch {
            throw .failed("\(error)")
        }
    }
}

/// `tcp://0.0.0.0:P` or `tcp://*:P` as an address local clients can connect to.
public func loopbackEndpoint(_ endpoint: String) -> String {
    for wildcard in ["tcp://0.0.0.0:", "tcp://*:", "tcp://[::]:"] where endpoint.hasPrefix(wildcard)
    {
        return "tcp://127.0.0.1:" + endpoint.dropFirst(wildcard.count)
    }
    return endpoint
}

extension ServerLimits {
    /// These limits with inbound frames bounded by what `scenario`'s peers legitimately send
    /// (``InboundFrameLimit``), never above the limit already set, and each connection's
    /// queue budget at least what the coordinator legitimately queues for it at once
    /// (``InboundFrameLimit/dispatchBytes(for:)``), never below the budget already set.
    func bounding(_ scenario: Scenario) -> ServerLimits {
        var limits = self
        limits.maximumInboundFrameBytes = min(
            maximumInboundFrameBytes, InboundFrameLimit.bytes(for: scenario))
        limits.queuedBytesPerConnection = max(
            queuedBytesPerConnection, InboundFrameLimit.dispatchBytes(for: scenario))
        return limits
    }
}
