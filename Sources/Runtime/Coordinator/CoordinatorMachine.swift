import Federation
import Fleet
import Foundation
import LowRank
import RunRecords
import Tensors
import Transport

/// The coordinator's round logic as a pure state machine (events in, actions out):
/// registration, selection, TRAIN, collection of UPDATEs with a deadline, retries, ordered
/// aggregation, shrinking, evaluation and the byte ledger.
///
/// It reads no clock and touches no socket or file: the driver (`Coordinator`) feeds it
/// events, each with the time since the run started, and carries out the actions it returns.
/// Tests drive it with made-up frames and times.
///
/// This file holds its state and routes events; the rest is by concern: sequencing of rounds
/// and attempts (`+Sequencing`), frames and sends (`+Frames`), workers' control channels
/// (`+Workers`), registration policy (`RegistrationDesk`), the byte ledger (`RunTotals`) and
/// run reporting (`RunReport`).
struct CoordinatorMachine {
    /// How the run is sequenced; each phase holds the data it owns.
    enum Phase {
        /// Waiting for `needed` clients until `deadline`.
        case registering(needed: Int, deadline: Duration)
        /// Fewer clients are reachable than the round needs (`minimumUpdates`): waiting until
        /// `deadline` for some to come back (they register again) before selecting.
        case awaitingClients(deadline: Duration)
        /// Waiting for the updates of the current attempt.
        case collecting(RoundAttempt)
        /// A round is done; its metrics are being written.
        case committing
        case finished
    }

    /// What the run fixes at its start, held once: a copy of the machine (the fuzzer copies
    /// it before every frame, to check what the frame did) shares it instead of copying the
    /// scenario, the evaluation data and the strings they hold.
    final class Constants: Sendable {
        let scenario: Scenario
        /// The round's decisions under the scenario.
        let logic: RoundLogic
        let evaluationSet: TrainingSamples
        /// The coordinator's validation set (`evaluation.validationSamples`), if any.
        let validationSet: TrainingSamples?
        let registrationTimeout: Duration
        let roundTimeout: Duration
        let maximumMessageSize: Int
        /// Who may register as which client.
        let desk: RegistrationDesk
        /// At most this many samples weigh one update (the scenario's bound per client).
        let sampleBound: Int
        /// What dense FedAvg of the same architecture moves per TRAIN and per UPDATE.
        let denseMessageBytes: (train: Int, update: Int)
        let runID: UInt64
        /// The architecture as JSON, in every REGISTERED.
        let modelDescription: String
        /// The scenario as run, as YAML, in every worker assignment (emitted once: a HELLO
        /// must not cost the coordinator the scenario's serialisation).
        let scenarioYAML: String

        init(
            scenario: Scenario, evaluationSet: TrainingSamples, validationSet: TrainingSamples?,
            registrationTimeout: Duration, roundTimeout: Duration, maximumMessageSize: Int,
            desk: RegistrationDesk, modelDescription: String
        ) {
            self.scenario = scenario
            logic = RoundLogic(scenario: scenario)
            self.evaluationSet = evaluationSet
            self.validationSet = validationSet
            self.registrationTimeout = registrationTimeout
            self.roundTimeout = roundTimeout
            self.maximumMessageSize = maximumMessageSize
            self.desk = desk
            sampleBound = scenario.samplesPerClientBound
            denseMessageBytes = CoordinatorMachine.denseMessageBytes(of: scenario)
            runID = SeededGenerator.value(seed: scenario.seed, stream: 0x52_554E)
            self.modelDescription = modelDescription
            scenarioYAML = scenario.yaml()
        }
    }

    let constants: Constants
    var scenario: Scenario { constants.scenario }
    var logic: RoundLogic { constants.logic }
    var evaluationSet: TrainingSamples { constants.evaluationSet }
    var validationSet: TrainingSamples? { constants.validationSet }
    var registrationTimeout: Duration { constants.registrationTimeout }
    var roundTimeout: Duration { constants.roundTimeout }
    var maximumMessageSize: Int { constants.maximumMessageSize }
    var desk: RegistrationDesk { constants.desk }
    var sampleBound: Int { constants.sampleBound }
    var denseMessageBytes: (train: Int, update: Int) { constants.denseMessageBytes }
    var runID: UInt64 { constants.runID }
    var modelDescription: String { constants.modelDescription }
    var scenarioYAML: String { constants.scenarioYAML }

    var phase: Phase
    var global: Network
    var serverState: ServerOptimizerState
    /// The moving average of the server's model that tiers evaluate and deploy
    /// (`evaluation.averageDecay > 0`; `nil` before the first round and without it).
    var averaged: Network?
    var clients: ClientTable
    var round = 0
    /// The last round whose metrics and checkpoint are written.
    var completedRound = 0
    /// The current round's metrics (round 0 while clients register).
    var metrics = RoundMetrics(round: 0)
    /// The run's byte ledger totals and counters.
    var totals = RunTotals()
    /// Who may be selected: clients gone, cooling down, contributing.
    var standing = ClientStanding()
    /// Each tier's accuracy at the last evaluation.
    var lastAccuracy: [String: Double] = [:]
    /// The tier whose budget each tier deployed at the last evaluation (`bestValidated`).
    var lastDeployed: [String: String] = [:]

    var now: Duration = .zero
    var roundStart: Duration = .zero
    /// Where each TRAIN of the current attempt went: the only peer whose UPDATE counts. It
    /// outlives the attempt until the next one starts (an UPDATE from there after the round
    /// is a late one, not one from an unknown peer).
    var trainedAt: [UInt32: PeerID] = [:]
    /// The CURVE key proved by each connection that holds a registered client or a worker's
    /// share: a frame with another key on that connection (its routing identity taken over)
    /// ends what the connection held, whatever channel the frame came on.
    var connectionKeys: [PeerID: String] = [:]
    var outbox: [CoordinatorAction] = []
    /// The worker processes: admission, shares, dispatch.
    var workers: WorkerPool
    /// Frames on workers' control channels: simulation plumbing, kept out of the ledger and
    /// the transport totals the ledger adds up to.
    var workerControl = TransportStatistics()

    /// Which CURVE keys register as which clients (`nil`: any authenticated peer, any ID).
    var enrolment: Enrolment? { desk.enrolment }
    /// At most this many clients register (the scenario's fleet, or `--max-clients`).
    var populationBound: Int { desk.populationBound }

    /// Bytes on workers' control channels, both ways (`worker_control_bytes`).
    var workerControlBytes: Int { Int(workerControl.bytesSent + workerControl.bytesReceived) }

    init(
        scenario: Scenario, evaluationSet: TrainingSamples,
        validationSet: TrainingSamples? = nil, expectedClients: Int?,
        registrationTimeout: Duration, roundTimeout: Duration, maximumMessageSize: Int,
        enrolment: Enrolment? = nil, maximumClients: Int? = nil, workerSlots: Int? = nil,
        workerSecret: String? = nil,
        partitionRows: (@Sendable () throws -> [[Int]]?)? = nil,
        resumingFrom checkpoint: CoordinatorCheckpoint?
    ) throws(CoordinatorError) {
        let desk = RegistrationDesk(
            scenario: scenario, enrolment: enrolment,
            populationBound: max(scenario.clients, maximumClients ?? 0))
        workers = WorkerPool(
            slots: workerSlots, fleetSize: scenario.clients, secret: workerSecret,
            enrolment: enrolment,
            partitionRows: partitionRows ?? Self.partitionRows(of: scenario))
        clients = ClientTable(fleetSize: scenario.clients)
        phase = .registering(needed: expectedClients ?? scenario.clients, deadline: .zero)
        global = scenario.initialNetwork()
        serverState = ServerOptimizerState(for: global.parameters)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        constants = Constants(
            scenario: scenario, evaluationSet: evaluationSet, validationSet: validationSet,
            registrationTimeout: registrationTimeout, roundTimeout: roundTimeout,
            maximumMessageSize: maximumMessageSize, desk: desk,
            modelDescription: (try? encoder.encode(global.architecture)).map {
                String(decoding: $0, as: UTF8.self)
            } ?? "")
        if let checkpoint { try restore(from: checkpoint) }
        metrics = RoundMetrics(round: round)
    }

    /// Every client's training rows, read from the scenario's data (`nil`: generated data).
    private static func partitionRows(of scenario: Scenario) -> @Sendable () throws -> [[Int]]? {
        { try scenario.partitionRows() }
    }

    /// What dense FedAvg of the same architecture would move per participation.
    fileprivate static func denseMessageBytes(of scenario: Scenario) -> (train: Int, update: Int) {
        var generator = SeededGenerator(seed: 0)
        let dense = Network(
            architecture: scenario.architecture(lowRank: false),
            using: &generator)
        let denseSlice = dense.slice(budgets: [])
        return (
            WireCodec.encodedSize(
                of: .train(task(for: denseSlice, scenario: scenario, round: 1, client: 0))),
            WireCodec.encodedSize(
                of: .update(
                    TrainingUpdate(
                        factors: [], shared: denseSlice.shared, sampleCount: 0, trainingLoss: 0,
                        computeSeconds: 0)))
        )
    }

    /// Budgets of each tier for the current global ranks, in the current round (capped while
    /// budgets grow).
    func budgets(tierIndex: Int) -> [Int] { report.budgets(tierIndex: tierIndex) }

    /// The attempt whose updates are being collected.
    var attempt: RoundAttempt? {
        if case .collecting(let attempt) = phase { return attempt }
        return nil
    }

    /// How long the driver may wait for a frame before telling the machine the time.
    var patience: Duration {
        let poll = Duration.milliseconds(200)
        guard let attempt else { return poll }
        return max(.zero, min(poll, attempt.deadline - now))
    }

    /// When the current round started (for its wall time).
    var roundStartedAt: Duration { roundStart }

    /// Clients registered and needed, while the run waits for them.
    var registration: (registered: Int, needed: Int)? {
        guard case .registering(let needed, _) = phase else { return nil }
        return (clients.count, needed)
    }

    var isCollecting: Bool { attempt != nil }

    /// Frames rejected so far, over all reasons.
    var rejectedTotalsSum: Int { totals.rejectedCount }

    /// The clients whose update the current attempt still waits for.
    var pendingClients: Dictionary<UInt32, [Int]>.Keys { (attempt?.pending ?? [:]).keys }

    /// While clients register, nothing they send changes who is selected later: in a resumed
    /// run the checkpoint's cooldowns and unresponsive clients stand as the uninterrupted run
    /// had them (a fresh run has none).
    var isRegistering: Bool {
        if case .registering = phase { return true }
        return false
    }

    /// Runs `body` on the attempt being collected (`nil`, and nothing runs, in any other phase).
    @discardableResult
    mutating func withAttempt<Value>(_ body: (inout RoundAttempt) -> Value) -> Value? {
        guard case .collecting(var attempt) = phase else { return nil }
        // The phase lets go of the attempt while it changes, so it is changed in place.
        phase = .committing
        defer { phase = .collecting(attempt) }
        return body(&attempt)
    }

    /// Drops `id` from the attempt being collected; whether it was still awaited there.
    mutating func dropFromAttempt(_ id: UInt32) -> Bool {
        withAttempt { $0.drop(id) } ?? false
    }

    // MARK: - Events

    /// The run starts: wait for the clients to register.
    mutating func start(at now: Duration) -> [CoordinatorAction] {
        self.now = now
        guard case .registering(let needed, _) = phase else { return [] }
        phase = .registering(needed: needed, deadline: now + registrationTimeout)
        emit(.log("waiting for \(needed) clients to register"))
        progress()
        return takeOutbox()
    }

    /// A frame arrived.
    mutating func received(_ frame: ReceivedFrame, at now: Duration) -> [CoordinatorAction] {
        self.now = now
        if let known = connectionKeys[frame.peer.connection], known != frame.authenticatedKey {
            connectionChangedKey(frame.peer.connection)
        }
        if frame.peer.channel?.isEmpty == true {
            handleWorkerControl(frame)
            return takeOutbox()
        }
        workers.arrived(from: frame.peer)
        if let update = handle(frame) { withAttempt { $0.received.append(update) } }
        progress()
        return takeOutbox()
    }

    /// The transport answered a link probe on its own thread (``LinkProbeDesk``, while the
    /// driver was busy): the same event as the probe's frame would have been.
    mutating func answered(_ answer: AnsweredFrame, at now: Duration) -> [CoordinatorAction] {
        self.now = now
        if let known = connectionKeys[answer.peer.connection], known != answer.authenticatedKey {
            connectionChangedKey(answer.peer.connection)
        }
        workers.arrived(from: answer.peer)
        answeredProbe(answer)
        if case .peerQueueFull = answer.error {
            // The reply passed the peer's budget: the transport drops its connection, so what
            // it held is gone now, as for a refused send (``undelivered(_:error:at:)``).
            close([answer.peer])
        }
        progress()
        return takeOutbox()
    }

    /// The transport refused a frame because of its sender (a malformed envelope).
    mutating func receivedMalformedEnvelope(at now: Duration) -> [CoordinatorAction] {
        self.now = now
        totals.count(.malformedEnvelope, in: &metrics)
        progress()
        return takeOutbox()
    }

    /// Time passed with no frame.
    mutating func tick(at now: Duration) -> [CoordinatorAction] {
        self.now = now
        progress()
        return takeOutbox()
    }

    /// These clients are known to be gone (a fleet's dead child processes).
    mutating func lost(_ ids: [UInt32], at now: Duration) -> [CoordinatorAction] {
        self.now = now
        // A dead worker also held other workers' clients' tasks: those clients are alive, but
        // this round's TRAIN is gone with it.
        let deadWorkers = Set(ids.compactMap { clients[$0]?.peer.connection }).filter {
            workers.isWorker($0)
        }
        var stranded: [PeerID] = []
        for connection in deadWorkers.sorted(by: { $0.bytes.lexicographicallyPrecedes($1.bytes) }) {
            stranded += workers.remove(connection)
        }
        for id in ids {
            standing.unresponsive.insert(id)
            clients.markDisconnected(id)
            if dropFromAttempt(id) {
                emit(.log("round \(round): client \(id) is gone; dropped from the round"))
                metrics.droppedTimeout.append(Int(id))
            }
        }
        abandon(tasksOf: stranded)
        progress()
        return takeOutbox()
    }

    /// These connections closed (the transport's socket monitor): their clients are gone
    /// until they register again, and leave the current round at once.
    mutating func disconnected(_ connections: [PeerID], at now: Duration) -> [CoordinatorAction] {
        self.now = now
        close(connections)
        progress()
        return takeOutbox()
    }

    /// What `connections` held is gone: their clients (until they register again), a
    /// worker's share and the tasks it had in hand.
    private mutating func close(_ connections: [PeerID]) {
        let closed = Set(connections.map(\.connection))
        for connection in closed { connectionKeys[connection] = nil }
        var stranded: [PeerID] = []
        for connection in connections.map(\.connection) where workers.isWorker(connection) {
            stranded += workers.remove(connection)
        }
        var gone: [UInt32] = []
        clients.forEach { if closed.contains($0.peer.connection) { gone.append($0.id) } }
        for id in gone {
            clients.markDisconnected(id)
            if dropFromAttempt(id) {
                emit(
                    .log("round \(round): client \(id)'s connection closed; dropped from the round")
                )
                metrics.droppedTimeout.append(Int(id))
            }
            if !isRegistering { standing.unresponsive.insert(id) }
        }
        abandon(tasksOf: stranded)
    }

    /// Another key now speaks on `connection`: every client registered through it is gone
    /// until it registers again, and a worker's share is free.
    private mutating func connectionChangedKey(_ connection: PeerID) {
        emit(.log("connection \(connection) now carries another key; what it held is dropped"))
        connectionKeys[connection] = nil
        let stranded = workers.isWorker(connection) ? workers.remove(connection) : []
        var held: [UInt32] = []
        clients.forEach { if $0.peer.connection == connection { held.append($0.id) } }
        for id in held {
            clients.markDisconnected(id)
            standing.unresponsive.insert(id)
            if dropFromAttempt(id) { metrics.droppedTimeout.append(Int(id)) }
        }
        abandon(tasksOf: stranded)
    }

    /// These clients' tasks of the current round are lost (the worker training them died);
    /// the clients themselves are not known to be gone.
    mutating func abandoned(_ ids: [UInt32], at now: Duration) -> [CoordinatorAction] {
        self.now = now
        abandon(ids)
        progress()
        return takeOutbox()
    }

    private mutating func abandon(_ ids: [UInt32]) {
        for id in ids where dropFromAttempt(id) {
            emit(.log("round \(round): client \(id)'s task was lost with its worker; dropped"))
            metrics.droppedTimeout.append(Int(id))
        }
    }

    /// The tasks a dead worker held for the clients at these home peers are lost.
    mutating func abandon(tasksOf homes: [PeerID]) {
        abandon(homes.compactMap { clients.id(of: $0) }.sorted())
    }

    /// A `.send` action went out.
    mutating func delivered(_ ticket: SendTicket) -> [CoordinatorAction] {
        if ticket.purpose == .workerControl {
            workerControl.recordSent(ticket.bytes)
            return takeOutbox()
        }
        recordLedger(
            client: ticket.client, direction: .down, message: ticket.message, bytes: ticket.bytes,
            round: ticket.round)
        if case .train = ticket.purpose {
            countDenseEquivalent(
                denseMessageBytes.train, client: ticket.client, round: ticket.round)
        }
        return takeOutbox()
    }

    /// A `.send` action failed.
    mutating func undelivered(
        _ ticket: SendTicket, error: TransportError, at now: Duration
    ) -> [CoordinatorAction] {
        self.now = now
        switch ticket.purpose {
        case .registrationReply(let id):
            guard error.isPeerFault else {
                emit(.fail(.transport(error)))
                break
            }
            // The client vanished right after registering: it misses rounds until it returns.
            emit(.log("cannot answer client \(id)'s registration: \(error)"))
            standing.unresponsive.insert(id)
        case .train(let id) where ticket.viaWorker:
            // The worker is gone: the task goes to another one, the worker's other tasks are lost.
            // A failure of an earlier hand-over (its worker already dropped, the task since
            // handed to another) is not the current worker's.
            guard let home = clients[id]?.peer, let target = trainedAt[id],
                ticket.worker == nil || ticket.worker == target
            else { break }
            emit(.log("round \(round): cannot reach the worker on \(target.connection): \(error)"))
            trainedAt[id] = nil
            abandon(tasksOf: workers.sendFailed(home: home, target: target))
            progress()
        case .train(let id):
            emit(.log("round \(round): cannot reach client \(id): \(error)"))
            metrics.droppedTimeout.append(Int(id))
            _ = dropFromAttempt(id)
            // Its connection is gone or being dropped (it did not read what it was sent): it
            // is not selected again, by a retry of this round either, until it registers again.
            if error.isPeerFault { standing.unresponsive.insert(id) }
            progress()
        case .errorReply, .shutdown, .linkProbeReply, .workerControl:
            break
        }
        if case .peerQueueFull(let peer, _, _) = error {
            // The transport drops the connection of a peer that does not read what it is
            // sent: what it held is gone now, not only once its closing is reported, so no
            // task or reply is queued for it in between.
            close([peer])
            progress()
        }
        return takeOutbox()
    }

    /// The driver wrote the round's metrics and checkpoint: go on with the next round, or end.
    mutating func committed(at now: Duration) -> [CoordinatorAction] {
        self.now = now
        guard case .committing = phase else { return [] }
        markCommitted()
        advance()
        return takeOutbox()
    }

    /// The last round whose metrics and checkpoint are written.
    var completedRounds: Int { completedRound }

    /// The round's metrics and checkpoint are written (the run may stop here).
    mutating func markCommitted() { completedRound = round }

    /// Ends the interrupted run; with `tellingClients`, every client is told to stop.
    ///
    /// Clients that are not told keep waiting (a device reconnects and registers again with a
    /// resumed coordinator). SHUTDOWN frames belong to the unfinished next round: on `--resume`
    /// they are dropped from the ledger together with that round, as the checkpoint's totals
    /// do not count them.
    mutating func abandon(reason: String, tellingClients: Bool = true) -> [CoordinatorAction] {
        if round == completedRound { round += 1 }
        phase = .finished
        if tellingClients { shutdownClients(reason: reason) }
        return takeOutbox()
    }

    mutating func shutdownClients(reason: String) {
        clients.forEach { send(.shutdown(Shutdown(reason: reason)), to: $0, purpose: .shutdown) }
        emit(.flushLedger)
    }

    mutating func emit(_ action: CoordinatorAction) { outbox.append(action) }

    private mutating func takeOutbox() -> [CoordinatorAction] {
        dispatchTraining()
        defer { outbox = [] }
        return outbox
    }
}
