import Datasets
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
        /// How many shares the fleet is split into for worker processes (`nil`: the split the
        /// first worker declares).
        public var workerSlots: Int?
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
    private let transport: any MessageTransport
    private let recorder: RunRecorder
    private(set) var machine: CoordinatorMachine
    private let started = ContinuousClock.now
    private var summary: RunSummary?
    private var workers: WorkerRegistry
    private var dispatch = TrainingDispatch<SendTicket>()
    /// Every client's training rows, computed when the first worker asks.
    private var partitionRows: [[Int]]??
    /// Frames on workers' control channels: simulation plumbing, not federated traffic, so
    /// they are kept out of the ledger and the machine's transport totals.
    private var workerControl = TransportStatistics()
    private var lastRegistrationReport: ContinuousClock.Instant?

    public init(
        scenario: Scenario, transport: any MessageTransport, recorder: RunRecorder,
        evaluationSet: TrainingSamples, validationSet: TrainingSamples? = nil,
        options: Options = Options(), resumingFrom checkpoint: CoordinatorCheckpoint? = nil
    ) throws(CoordinatorError) {
        self.transport = transport
        self.recorder = recorder
        self.options = options
        machine = try CoordinatorMachine(
            scenario: scenario, evaluationSet: evaluationSet, validationSet: validationSet,
            expectedClients: options.expectedClients,
            registrationTimeout: options.registrationTimeout, roundTimeout: options.roundTimeout,
            maximumMessageSize: options.maximumMessageSize, enrolment: options.enrolment,
            maximumClients: options.maximumClients, resumingFrom: checkpoint)
        workers = WorkerRegistry(slots: options.workerSlots, fleetSize: scenario.clients)
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
                    // A dead worker also held other workers' clients' tasks: those clients
                    // are alive, but this round's TRAIN is gone with it.
                    let dead = Set(lost.compactMap { machine.clients[$0]?.peer.connection })
                    let stranded = dead.flatMap { dispatch.remove(worker: $0) }.compactMap {
                        machine.clients.id(of: $0)
                    }
                    if !stranded.isEmpty { try perform(machine.abandoned(stranded, at: now)) }
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
                let stranded = closed.flatMap { dispatch.remove(worker: $0.connection) }
                    .compactMap { machine.clients.id(of: $0) }
                if !stranded.isEmpty { try perform(machine.abandoned(stranded, at: now)) }
                continue
            }
            let frame: ReceivedFrame?
            do {
                frame = try transport.receive(timeout: machine.patience)
            } catch {
                guard error.isPeerFault else { throw .transport(error) }
                try perform(machine.receivedMalformedEnvelope(at: now))
                continue
            }
            if let frame, frame.peer.channel?.isEmpty == true {
                try handleWorkerControl(frame)
            } else if var frame {
                frame.peer = dispatch.arrived(from: frame.peer)
                try perform(machine.received(frame, at: now))
                try perform(sendQueuedTraining())
            } else {
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

    /// A frame on a worker's control channel: a HELLO gets the worker's share of the fleet.
    private func handleWorkerControl(_ frame: ReceivedFrame) throws(CoordinatorError) {
        workerControl.recordReceived(frame.bytes.count)
        let reply: Message
        do {
            let envelope = try WireCodec.decode(
                frame.bytes, maximumSize: options.maximumMessageSize)
            guard case .workerHello(let hello) = envelope.message else {
                options.log("ignored a \(envelope.type) on the control channel of \(frame.peer)")
                return
            }
            reply = try answer(hello, from: frame.peer)
        } catch {
            options.log("refused a frame on the control channel of \(frame.peer): \(error)")
            reply = .error(ErrorReport(code: .malformed, message: "\(error)"))
        }
        let bytes = WireCodec.encode(reply, round: 0, sender: 0)
        do {
            try transport.send(bytes, to: frame.peer)
            workerControl.recordSent(bytes.count)
        } catch {
            guard error.isPeerFault else { throw .transport(error) }
            options.log("cannot answer the worker on \(frame.peer): \(error)")
        }
    }

    private func answer(_ hello: WorkerHello, from peer: PeerID) throws(DatasetError) -> Message {
        switch workers.hello(hello, from: peer) {
        case .refused(let reason):
            options.log("refused the worker on \(hello.host) (\(peer)): \(reason)")
            return .error(ErrorReport(code: .unexpected, message: reason))
        case .assigned(let slot, let slots, let previous):
            let scenario = machine.scenario
            if partitionRows == nil { partitionRows = .some(try scenario.partitionRows()) }
            // Every client's rows: a worker may be handed any client's TRAIN (TrainingDispatch).
            let rows = (partitionRows ?? nil).map { all in all.map { $0.map(UInt32.init) } }
            if let previous { dispatch.remove(worker: previous.peer) }
            dispatch.add(worker: peer.connection)
            if let previous {
                options.log(
                    "worker share \(slot) of \(slots) moves from \(previous.host) (\(previous.peer)) to \(hello.host) (\(peer))"
                )
            } else {
                options.log("worker on \(hello.host) (\(peer)) hosts share \(slot) of \(slots)")
            }
            return .workerAssignment(
                WorkerAssignment(
                    slot: UInt32(slot), slots: UInt32(slots), runID: machine.runID,
                    scenario: scenario.yaml(), rows: rows ?? []))
        }
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
        return TransportStatistics(
            framesSent: all.framesSent - workerControl.framesSent,
            bytesSent: all.bytesSent - workerControl.bytesSent,
            framesReceived: all.framesReceived - workerControl.framesReceived,
            bytesReceived: all.bytesReceived - workerControl.bytesReceived)
    }

    /// Tells every client to stop (used when the run is interrupted).
    public func abandon(reason: String) {
        let completed = machine.completedRounds
        try? perform(machine.abandon(reason: reason))
        // The summary of what was done, marked interrupted (no final model: `--resume` goes on).
        var summary = machine.summary(statistics: protocolStatistics, wallSeconds: now.seconds)
        summary.rounds = completed
        summary.interrupted = true
        summary.workerControlBytes = Int(workerControl.bytesSent + workerControl.bytesReceived)
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
                if case .train = ticket.purpose, dispatch.dispatches(peer) {
                    dispatch.enqueue(
                        .init(frame: frame, home: peer, ticket: ticket, round: ticket.round))
                    followUp = try sendQueuedTraining()
                    break
                }
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

    /// Sends queued TRAINs to the workers that are free; returns what the machine makes of
    /// the sends (their ledger rows).
    private func sendQueuedTraining() throws(CoordinatorError) -> [CoordinatorAction] {
        var followUp: [CoordinatorAction] = []
        while let (task, target) = dispatch.next(currentRound: machine.round) {
            do {
                try transport.send(task.frame, to: target)
                followUp += machine.delivered(task.ticket)
            } catch {
                guard error.isPeerFault else { throw .transport(error) }
                options.log("cannot reach the worker on \(target.connection): \(error)")
                dispatch.sendFailed(task, target: target)
            }
        }
        return followUp
    }

    /// The state after the current round, for `--resume`.
    func checkpoint() -> CoordinatorCheckpoint {
        machine.checkpoint(statistics: protocolStatistics, wallSeconds: now.seconds)
    }

    private func finish() throws(CoordinatorError) -> RunSummary {
        var summary = machine.summary(statistics: protocolStatistics, wallSeconds: now.seconds)
        summary.workerControlBytes = Int(workerControl.bytesSent + workerControl.bytesReceived)
        summary.provenance = options.provenance
        do {
            let model = ModelFile.encode(machine.deployedModel, metadata: machine.modelMetadata)
            let curve = machine.truncationCurve()
            try options.writeRetries.run("writing the final model and summary", log: options.log) {
                () throws(RunRecorder.Error) in
                try recorder.write(model, named: RunRecorder.finalModelFile)
                try recorder.writeTruncation(curve)
                try recorder.writeSummary(summary)
            }
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
