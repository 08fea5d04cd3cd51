import Datasets
import Federation
import Fleet
import Foundation
import LowRank
import RunRecords
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
        /// How many shares the fleet is split into for worker processes (`nil`: the split the
        /// first admitted worker declares).
        public var workerSlots: Int?
        /// The secret a plaintext worker's HELLO must carry (`nil`: no plaintext worker is
        /// admitted; under CURVE with an allow-list, worker keys are what admits).
        public var workerSecret: String?
        /// Called while clients register (at most every half second, and once when all are
        /// in) with the number registered and needed.
        public var onRegistration: @Sendable (_ registered: Int, _ needed: Int) -> Void = { _, _ in
        }
        /// Recorded in `summary.json`.
        public var provenance: RunSummary.Provenance?
        /// Which CURVE keys register as which clients (from the allow-list).
        public var enrolment: Enrolment?
        /// The population bound for open deployments (at least the scenario's fleet).
        public var maximumClients: Int?
        /// How writes of whole files (the checkpoint, the final model) are retried when they
        /// fail, as on running out of descriptors or space.
        public var writeRetries = WriteRetries()

        public init() {}
    }

    let options: Options
    /// Answers link probes on the transport's thread, when it has one (``ServedServer``):
    /// give ``LinkProbeDesk/reply(to:)`` to its `start(answering:)`.
    public let probeDesk: LinkProbeDesk
    private let transport: any MessageTransport
    private let recorder: RunRecorder
    private(set) var machine: CoordinatorMachine
    private let started = ContinuousClock.now
    private var summary: RunSummary?
    private var lastRegistrationReport: ContinuousClock.Instant?

    public init(
        scenario: Scenario, transport: any MessageTransport, recorder: RunRecorder,
        evaluationSet: TrainingSamples, validationSet: TrainingSamples? = nil,
        options: Options = Options(), resumingFrom checkpoint: CoordinatorCheckpoint? = nil
    ) throws(CoordinatorError) {
        self.transport = transport
        self.recorder = recorder
        self.options = options
        probeDesk = LinkProbeDesk(
            enrolment: options.enrolment, maximumMessageSize: options.maximumMessageSize)
        machine = try CoordinatorMachine(
            scenario: scenario, evaluationSet: evaluationSet, validationSet: validationSet,
            expectedClients: options.expectedClients,
            registrationTimeout: options.registrationTimeout, roundTimeout: options.roundTimeout,
            maximumMessageSize: options.maximumMessageSize, enrolment: options.enrolment,
            maximumClients: options.maximumClients, workerSlots: options.workerSlots,
            workerSecret: options.workerSecret, resumingFrom: checkpoint)
    }

    /// Time since the run started: the machine's clock.
    private var now: Duration { ContinuousClock.now - started }

    /// Runs every round and writes the summary.
    public func run() throws(CoordinatorError) -> RunSummary {
        try perform(machine.start(at: now))
        while summary == nil {
            probeDesk.round = machine.round
            if options.shouldStop() { throw .stopped }
            if machine.isCollecting {
                let lost = options.lostClients()
                if !lost.isEmpty {
                    try perform(machine.lost(lost, at: now))
                    continue
                }
            }
            let events = transport.takeConnectionEvents()
            logRefused(events.refused)
            let closed = events.closed
            if !closed.isEmpty {
                options.log(
                    "connection closed: \(closed.map(\.description).joined(separator: ", "))")
                try perform(machine.disconnected(closed, at: now))
                continue
            }
            let arrival: Arrival?
            do {
                arrival = try transport.receiveArrival(timeout: machine.patience)
            } catch {
                guard error.isPeerFault else { throw .transport(error) }
                try perform(machine.receivedMalformedEnvelope(at: now))
                continue
            }
            switch arrival {
            case .frame(let frame)?:
                try perform(machine.received(frame, at: now))
            case .answered(let answer)?:
                if let error = answer.error, case .peerQueueFull = error { options.log("\(error)") }
                try perform(machine.answered(answer, at: now))
            case nil:
                try perform(machine.tick(at: now))
            }
            reportRegistration()
        }
        return summary!
    }

    private func reportRegistration() {
        let now = ContinuousClock.now
        guard let (registered, needed) = machine.registration else {
            if lastRegistrationReport != nil {
                lastRegistrationReport = nil
                options.onRegistration(machine.clients.count, machine.clients.count)
            }
            return
        }
        if let last = lastRegistrationReport, now - last < .milliseconds(500) { return }
        lastRegistrationReport = now
        options.onRegistration(registered, needed)
    }

    /// Logs connections closed on arrival over a cap, one line per batch, by source address.
    private func logRefused(_ addresses: [String]) {
        guard !addresses.isEmpty else { return }
        let counts = Dictionary(addresses.map { ($0, 1) }, uniquingKeysWith: +)
        let list = counts.keys.sorted().map { "\(counts[$0]!) from \($0)" }
        options.log(
            "closed \(addresses.count) connection\(addresses.count == 1 ? "" : "s") over the connection caps (\(list.joined(separator: ", ")))"
        )
    }

    /// The transport's counters without the workers' control frames: what the federated
    /// protocol moved, which the ledger adds up to.
    private var protocolStatistics: TransportStatistics {
        let all = transport.statistics
        let workerControl = machine.workerControl
        return TransportStatistics(
            framesSent: all.framesSent - workerControl.framesSent,
            bytesSent: all.bytesSent - workerControl.bytesSent,
            framesReceived: all.framesReceived - workerControl.framesReceived,
            bytesReceived: all.bytesReceived - workerControl.bytesReceived)
    }

    /// Ends an interrupted run: writes its summary, and with `tellingClients` tells every
    /// client to stop (without, devices wait to rejoin a resumed run).
    public func abandon(reason: String, tellingClients: Bool = true) {
        let completed = machine.completedRounds
        try? perform(machine.abandon(reason: reason, tellingClients: tellingClients))
        // The summary of what was done, marked interrupted (no final model: `--resume` goes on).
        var summary = machine.summary(statistics: protocolStatistics, wallSeconds: now.seconds)
        summary.rounds = completed
        summary.interrupted = true
        summary.workerControlBytes = machine.workerControlBytes
        summary.provenance = options.provenance
        try? recorder.writeSummary(summary)
    }

    /// Carries out the machine's actions in order; the actions an action leads to (a
    /// delivered frame's ledger row, the next round after a commit) run right after it, from
    /// an explicit stack, not by recursion.
    private func perform(_ actions: [CoordinatorAction]) throws(CoordinatorError) {
        // A stack of action lists, each with its next index: an action's follow-ups run next
        // without being inserted into the list (100 000 SHUTDOWNs, each followed by its ledger
        // row, made insertion quadratic), and exhausted lists are dropped before new ones go
        // on, so a chain of rounds nobody can join does not grow the stack.
        var stack: [(actions: [CoordinatorAction], next: Int)] = [(actions, 0)]
        while let top = stack.indices.last {
            guard stack[top].next < stack[top].actions.count else {
                stack.removeLast()
                continue
            }
            let action = stack[top].actions[stack[top].next]
            stack[top].next += 1
            let followUp: [CoordinatorAction]
            switch action {
            case .send(let frame, let peer, let ticket):
                let sent = Result { () throws(TransportError) in
                    try transport.send(frame, to: peer)
                }
                switch sent {
                case .success: followUp = machine.delivered(ticket)
                case .failure(let error):
                    if case .peerQueueFull = error { options.log("\(error)") }
                    followUp = machine.undelivered(ticket, error: error, at: now)
                }
            case .record(let entry):
                recorder.record(entry)
                followUp = []
            case .log(let line):
                options.log(line)
                followUp = []
            case .rejected(let rejection):
                options.log(rejection.description)
                followUp = []
            case .flushLedger:
                try recorder.flushLedgerOrThrow()
                followUp = []
            case .commit(var metrics):
                metrics.wallSeconds = (now - machine.roundStartedAt).seconds
                do {
                    try recorder.finishRound(metrics)
                    let bytes = checkpoint().encoded()
                    try options.writeRetries.run(
                        "writing \(CoordinatorCheckpoint.fileName)", log: options.log
                    ) { () throws(RunRecorder.Error) in
                        try recorder.write(bytes, named: CoordinatorCheckpoint.fileName)
                    }
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
            guard !followUp.isEmpty else { continue }
            while let last = stack.last, last.next == last.actions.count { stack.removeLast() }
            stack.append((followUp, 0))
        }
    }

    /// The state after the current round, for `--resume`.
    func checkpoint() -> CoordinatorCheckpoint {
        machine.checkpoint(statistics: protocolStatistics, wallSeconds: now.seconds)
    }

    private func finish() throws(CoordinatorError) -> RunSummary {
        var summary = machine.summary(statistics: protocolStatistics, wallSeconds: now.seconds)
        summary.workerControlBytes = machine.workerControlBytes
        summary.provenance = options.provenance
        do {
            let model = ModelFile.encode(
                machine.calibration.calibrated(machine.deployedModel),
                metadata: machine.modelMetadata)
            let tierModels = machine.tierModelFiles() ?? []
            let curve = machine.truncationCurve()
            try options.writeRetries.run("writing the final model and summary", log: options.log) {
                () throws(RunRecorder.Error) in
                try recorder.write(model, named: RunRecorder.finalModelFile)
                for file in tierModels { try recorder.write(file.bytes, named: file.name) }
                try recorder.writeTruncation(curve)
                try recorder.writeSummary(summary)
            }
        } catch {
            throw .recording(error)
        }
        return summary
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
    /// The data folder of a scenario (LEAF: its training data; empty for generated data).
    public var dataDirectory: String {
        switch dataset {
        case .fashionMNIST(let directory, _), .cifar10(let directory, _),
            .cifar100(let directory, _, _):
            directory
        case .leaf(let train, _, _, _, _): train
        case .synthetic, .syntheticIID: ""
        }
    }
}
