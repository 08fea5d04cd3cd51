import Federation
import Fleet
import Foundation
import LowRank
import Transport

/// Why a federated run could not go on.
public enum CoordinatorError: Error, CustomStringConvertible {
    case transport(TransportError)
    case recording(RunRecorder.Error)
    case notEnoughClients(registered: Int, needed: Int, waited: Duration)
    case roundFailed(round: Int, updates: Int, needed: Int)
    case checkpointMismatch(reason: String)
    case stopped

    public var description: String {
        switch self {
        case .transport(let error): "\(error)"
        case .recording(let error): "\(error)"
        case .notEnoughClients(let registered, let needed, let waited):
            "only \(registered) of the \(needed) clients registered within \(waited)"
        case .roundFailed(let round, let updates, let needed):
            "round \(round) got \(updates) updates, fewer than minimumUpdates = \(needed) (roundFailurePolicy: abort)"
        case .checkpointMismatch(let reason): "cannot resume: \(reason)"
        case .stopped: "stopped"
        }
    }
}

/// The federated coordinator: registers clients, runs the rounds of a scenario (select,
/// send TRAIN, collect UPDATEs, aggregate in client-ID order, shrink, evaluate), records
/// metrics and the byte ledger, and writes the final model and summary.
///
/// The round logic is the pure `CoordinatorMachine`; this class is its driver: it owns the
/// transport, the recorder and the clock, feeds the machine what arrives and carries out its
/// actions. Used from one thread (the transport is not thread-safe).
public final class Coordinator {
    public struct Options: Sendable {
        /// Clients that must be registered before round 1 (default: the scenario's fleet).
        public var expectedClients: Int?
        public var registrationTimeout: Duration = .seconds(120)
        /// Wall-clock limit for the updates of one round; silent clients are dropped.
        public var roundTimeout: Duration = .seconds(120)
        public var maximumMessageSize: Int = 64 << 20
        /// Called with each finished round (for the live progress line).
        public var onRound: @Sendable (RoundMetrics) -> Void = { _ in }
        public var log: @Sendable (String) -> Void = { _ in }
        /// Polled between frames; returning true stops the run.
        public var shouldStop: @Sendable () -> Bool = { false }
        /// Polled between frames: IDs of clients known to be gone (a fleet's dead child
        /// processes), so a round does not wait for them.
        public var lostClients: @Sendable () -> [UInt32] = { [] }

        public init() {}
    }

    let options: Options
    private let transport: any MessageTransport
    private let recorder: RunRecorder
    private(set) var machine: CoordinatorMachine
    private let started = ContinuousClock.now
    private var summary: RunSummary?

    public init(
        scenario: Scenario, transport: any MessageTransport, recorder: RunRecorder,
        evaluationSet: TrainingSamples, options: Options = Options(),
        resumingFrom checkpoint: CoordinatorCheckpoint? = nil
    ) throws(CoordinatorError) {
        self.transport = transport
        self.recorder = recorder
        self.options = options
        machine = try CoordinatorMachine(
            scenario: scenario, evaluationSet: evaluationSet,
            expectedClients: options.expectedClients,
            registrationTimeout: options.registrationTimeout, roundTimeout: options.roundTimeout,
            maximumMessageSize: options.maximumMessageSize, resumingFrom: checkpoint)
    }

    /// Time since the run started: the machine's clock.
    private var now: Duration { ContinuousClock.now - started }

    /// Runs every round and writes the summary.
    public func run() throws(CoordinatorError) -> RunSummary {
        try perform(machine.start(at: now))
        while summary == nil {
            if options.shouldStop() { throw .stopped }
            if machine.isCollecting {
                let lost = options.lostClients()
                if !lost.isEmpty {
                    try perform(machine.lost(lost, at: now))
                    continue
                }
            }
            let frame: ReceivedFrame?
            do {
                frame = try transport.receive(timeout: machine.patience)
            } catch {
                guard error.isPeerFault else { throw .transport(error) }
                try perform(machine.receivedMalformedEnvelope(at: now))
                continue
            }
            if let frame {
                try perform(machine.received(frame, at: now))
            } else {
                try perform(machine.tick(at: now))
            }
        }
        return summary!
    }

    /// Tells every client to stop (used when the run is interrupted).
    public func abandon(reason: String) {
        try? perform(machine.abandon(reason: reason))
    }

    /// Carries out the machine's actions in order; the actions an action leads to (a
    /// delivered frame's ledger row, the next round after a commit) run right after it. A
    /// queue, not recursion: a run of rounds nobody can join must not grow the stack.
    private func perform(_ actions: [CoordinatorAction]) throws(CoordinatorError) {
        var queue = actions
        var next = 0
        while next < queue.count {
            let action = queue[next]
            next += 1
            let followUp: [CoordinatorAction]
            switch action {
            case .send(let frame, let peer, let ticket):
                let sent = Result { () throws(TransportError) in
                    try transport.send(frame, to: peer)
                }
                switch sent {
                case .success: followUp = machine.delivered(ticket)
                case .failure(let error):
                    followUp = machine.undelivered(ticket, error: error, at: now)
                }
            case .record(let entry):
                recorder.record(entry)
                followUp = []
            case .log(let line):
                options.log(line)
                followUp = []
            case .flushLedger:
                try recorder.flushLedgerOrThrow()
                followUp = []
            case .commit(var metrics):
                metrics.wallSeconds = (now - machine.roundStartedAt).seconds
                do {
                    try recorder.finishRound(metrics)
                    try recorder.write(
                        checkpoint().encoded(), named: CoordinatorCheckpoint.fileName)
                } catch {
                    throw .recording(error)
                }
                options.onRound(metrics)
                if options.shouldStop() {
                    machine.markCommitted()
                    throw .stopped
                }
                followUp = machine.committed(at: now)
            case .finish:
                summary = try finish()
                followUp = []
            case .fail(let error):
                throw error
            }
            queue.insert(contentsOf: followUp, at: next)
        }
    }

    /// The state after the current round, for `--resume`.
    func checkpoint() -> CoordinatorCheckpoint {
        machine.checkpoint(statistics: transport.statistics, wallSeconds: now.seconds)
    }

    private func finish() throws(CoordinatorError) -> RunSummary {
        let summary = machine.summary(statistics: transport.statistics, wallSeconds: now.seconds)
        do {
            try recorder.write(
                ModelFile.encode(machine.global, metadata: machine.modelMetadata),
                named: RunRecorder.finalModelFile)
            try recorder.writeSummary(summary)
        } catch {
            throw .recording(error)
        }
        return summary
    }
}

extension Duration {
    /// The duration in seconds as a double.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}

extension RunRecorder {
    func flushLedgerOrThrow() throws(CoordinatorError) {
        do {
            try flushLedger()
        } catch {
            throw .recording(error)
        }
    }
}

extension Scenario {
    /// The data folder of a Fashion-MNIST scenario (empty for generated data).
    public var dataDirectory: String {
        if case .fashionMNIST(let directory, _) = dataset { return directory }
        return ""
    }
}
