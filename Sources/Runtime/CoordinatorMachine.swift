import Federation
import Fleet
import Foundation
import LowRank
import Tensors
import Transport

/// What the coordinator's driver must do for its state machine.
enum CoordinatorAction {
    /// Send `frame` to `peer`, then report the result with `delivered` or `undelivered`.
    case send([UInt8], to: PeerID, ticket: SendTicket)
    /// Append a row to the byte ledger.
    case record(LedgerEntry)
    case log(String)
    /// Write the buffered ledger rows out.
    case flushLedger
    /// The round is done: write its metrics and the checkpoint, then call `committed`.
    case commit(RoundMetrics)
    /// Every round is done and every client told: write the final model and the summary.
    case finish
    /// The run cannot go on.
    case fail(CoordinatorError)
}

/// What a send was for, so that its outcome can be accounted for.
struct SendTicket {
    enum Purpose: Equatable {
        case registrationReply(UInt32)
        case train(UInt32)
        case errorReply
        case shutdown
        /// The answer to a link probe from the peer whose frame is being answered.
        case linkProbeReply
        /// A frame on a worker's control channel (simulation plumbing, not in the ledger).
        case workerControl
    }

    let purpose: Purpose
    /// The round the frame belongs to (the machine may have moved on when it is delivered).
    let round: Int
    /// The ledger's client column (-1 for a peer that is no registered client).
    let client: Int
    /// The ledger's message column.
    let message: String
    let bytes: Int
    /// A TRAIN handed to a worker of the pool (not to the client's home peer).
    var viaWorker = false
}

/// The coordinator's round logic as a pure state machine (events in, actions out):
/// registration, selection, TRAIN, collection of UPDATEs with a deadline, retries, ordered
/// aggregation, shrinking, evaluation and the byte ledger.
///
/// It reads no clock and touches no socket or file: the driver (`Coordinator`) feeds it
/// events, each with the time since the run started, and carries out the actions it returns.
/// Tests drive it with made-up frames and times.
struct CoordinatorMachine {
    /// How the run is sequenced.
    enum Phase {
        /// Waiting for `needed` clients until `deadline`.
        case registering(needed: Int, deadline: Duration)
        /// Fewer clients are reachable than the round needs (`minimumUpdates`): waiting until
        /// `deadline` for some to come back (they register again) before selecting.
        case awaitingClients(deadline: Duration)
        /// Waiting for the updates of the current attempt.
        case collecting
        /// A round is done; its metrics are being written.
        case committing
        case finished
    }

    let scenario: Scenario
    let evaluationSet: TrainingSamples
    /// The coordinator's validation set (`evaluation.validationSamples`), if any.
    let validationSet: TrainingSamples?
    let registrationTimeout: Duration
    let roundTimeout: Duration
    let maximumMessageSize: Int
    /// Which CURVE keys register as which clients (`nil`: any authenticated peer, any ID).
    let enrolment: Enrolment?
    /// At most this many clients register (the scenario's fleet, or `--max-clients`).
    let populationBound: Int
    /// At most this many samples weigh one update (the scenario's bound per client).
    let sampleBound: Int
    private(set) var phase: Phase
    private(set) var global: Network
    private(set) var serverState: ServerOptimizerState
    /// The moving average of the server's model that tiers evaluate and deploy
    /// (`evaluation.averageDecay > 0`; `nil` before the first round and without it).
    private(set) var averaged: Network?
    private(set) var clients: ClientTable
    private(set) var round = 0
    private var metrics = RoundMetrics(round: 0)
    private var totals = (up: 0, down: 0, dense: 0, virtual: 0.0)
    private var tierTotals: [String: RoundMetrics.TierBytes] = [:]
    private var participations: [String: Int] = [:]
    /// Clients whose update has been aggregated at least once: whose data reached the model.
    private var contributors: Set<UInt32> = []
    private var rejectedTotals: [String: Int] = [:]
    private var lateTotal = 0
    private var computeTotal = 0.0
    /// The last round whose metrics and checkpoint are written.
    private var completedRound = 0
    /// Clients known to be gone (a fleet's dead processes, a peer that vanished): not
    /// selected again until they register again (a restarted client does).
    private var unresponsive: Set<UInt32> = []
    /// Clients that missed a round's deadline: not selected before this round unless they
    /// send something first (a partition heals, a slow device catches up).
    private var cooldownUntil: [UInt32: Int] = [:]
    /// Time-outs in a row of each client since its last accepted update: they lengthen its
    /// next cooldown (`Cooldowns`).
    private var timeoutStreaks: [UInt32: Int] = [:]
    private var lastAccuracy: [String: Double] = [:]
    /// The tier whose budget each tier deployed at the last evaluation (`bestValidated`).
    private var lastDeployed: [String: String] = [:]
    private let denseMessageBytes: (train: Int, update: Int)
    let runID: UInt64
    private let modelDescription: String
    /// Wall seconds and transport bytes of the run before it was resumed.
    private var earlier = (wall: 0.0, sent: 0, received: 0)

    // The current round.
    private var now: Duration = .zero
    private var roundStart: Duration = .zero
    private var attempt = 0
    private var invited: [RoundLogic.Invitation] = []
    /// Budgets of the invited clients whose update is still awaited.
    private var pending: [UInt32: [Int]] = [:]
    private var received: [(contribution: ClientContribution, loss: Double)] = []
    private var collectionDeadline: Duration = .zero
    /// Where each TRAIN of the current attempt went: the only peer whose UPDATE counts.
    private var trainedAt: [UInt32: PeerID] = [:]
    /// The CURVE key proved by each connection that holds a registered client or a worker's
    /// share: a frame with another key on that connection (its routing identity taken over)
    /// ends what the connection held, whatever channel the frame came on.
    private var connectionKeys: [PeerID: String] = [:]
    private var outbox: [CoordinatorAction] = []
    /// The worker processes: admission, shares, dispatch.
    private(set) var workers: WorkerPool
    /// Frames on workers' control channels: simulation plumbing, kept out of the ledger and
    /// the transport totals the ledger adds up to.
    private(set) var workerControl = TransportStatistics()

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
        self.scenario = scenario
        self.enrolment = enrolment
        workers = WorkerPool(
            slots: workerSlots, fleetSize: scenario.clients, secret: workerSecret,
            enrolment: enrolment,
            partitionRows: partitionRows ?? Self.partitionRows(of: scenario))
        populationBound = max(scenario.clients, maximumClients ?? 0)
        sampleBound = scenario.samplesPerClientBound
        self.evaluationSet = evaluationSet
        self.validationSet = validationSet
        self.registrationTimeout = registrationTimeout
        self.roundTimeout = roundTimeout
        self.maximumMessageSize = maximumMessageSize
        clients = ClientTable(fleetSize: scenario.clients)
        phase = .registering(needed: expectedClients ?? scenario.clients, deadline: .zero)
        global = scenario.initialNetwork()
        serverState = ServerOptimizerState(for: global.parameters)
        runID = SeededGenerator.value(seed: scenario.seed, stream: 0x52_554E)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        modelDescription =
            (try? encoder.encode(global.architecture)).map { String(decoding: $0, as: UTF8.self) }
            ?? ""
        // What dense FedAvg of the same architecture would move per participation.
        var generator = SeededGenerator(seed: 0)
        let dense = Network(
            architecture: .make(
                scenario.modelKind, lowRank: false, inputShape: scenario.inputShape,
                classCount: scenario.classCount),
            using: &generator)
        let denseSlice = dense.slice(budgets: [])
        denseMessageBytes = (
            WireCodec.encodedSize(
                of: .train(Self.task(for: denseSlice, scenario: scenario, round: 1, client: 0))),
            WireCodec.encodedSize(
                of: .update(
                    TrainingUpdate(
                        factors: [], shared: denseSlice.shared, sampleCount: 0, trainingLoss: 0,
                        computeSeconds: 0)))
        )
        if let checkpoint {
            let header = checkpoint.header
            guard header.architecture == global.architecture else {
                throw .checkpointMismatch(
                    reason:
                        "the checkpoint's model is not the scenario's \(scenario.modelKind.rawValue)"
                )
            }
            guard header.round <= scenario.rounds else {
                throw .checkpointMismatch(
                    reason:
                        "the checkpoint is at round \(header.round), the scenario has \(scenario.rounds)"
                )
            }
            global = Network(
                architecture: header.architecture, parameters: checkpoint.parameters,
                keptRanks: header.keptRanks)
            serverState = checkpoint.serverState
            // A scenario that no longer averages deploys the server's model again.
            averaged =
                scenario.evaluation.averageDecay > 0
                ? checkpoint.averagedParameters.map {
                    Network(
                        architecture: header.architecture, parameters: $0,
                        keptRanks: header.keptRanks)
                } : nil
            round = header.round
            totals = (
                header.bytesUp, header.bytesDown, header.denseEquivalentBytes, header.virtualSeconds
            )
            tierTotals = header.tierBytes
            participations = header.participations
            rejectedTotals = header.rejected
            lateTotal = header.lateUpdates
            computeTotal = header.clientComputeSeconds
            lastAccuracy = header.lastAccuracy
            lastDeployed = header.deployedBudgets ?? [:]
            cooldownUntil = header.cooldownUntil ?? [:]
            timeoutStreaks = header.timeoutStreaks ?? [:]
            unresponsive = Set(header.unresponsive ?? [])
            contributors = Set(header.contributors ?? [])
            completedRound = header.round
            earlier = (header.wallSeconds, header.transportBytesSent, header.transportBytesReceived)
        }
        metrics = RoundMetrics(round: round)
    }

    /// Every client's training rows, read from the scenario's data (`nil`: generated data).
    private static func partitionRows(of scenario: Scenario) -> @Sendable () throws -> [[Int]]? {
        { try scenario.partitionRows() }
    }

    /// Budgets of each tier for the current global ranks, in the current round (capped while
    /// budgets grow).
    func budgets(tierIndex: Int) -> [Int] {
        RoundLogic.budgets(
            fraction: scenario.rankFraction(of: scenario.tiers[tierIndex], round: max(round, 1)),
            keptRanks: global.keptRanks, lowRank: true)
    }

    /// How long the driver may wait for a frame before telling the machine the time.
    var patience: Duration {
        let poll = Duration.milliseconds(200)
        guard case .collecting = phase else { return poll }
        return max(.zero, min(poll, collectionDeadline - now))
    }

    /// When the current round started (for its wall time).
    var roundStartedAt: Duration { roundStart }

    /// Clients registered and needed, while the run waits for them.
    var registration: (registered: Int, needed: Int)? {
        guard case .registering(let needed, _) = phase else { return nil }
        return (clients.count, needed)
    }

    var isCollecting: Bool {
        if case .collecting = phase { return true }
        return false
    }

    /// Frames rejected so far, over all reasons.
    var rejectedTotalsSum: Int { rejectedTotals.values.reduce(0, +) }

    /// The clients whose update the current attempt still waits for.
    var pendingClients: Dictionary<UInt32, [Int]>.Keys { pending.keys }

    /// While clients register, nothing they send changes who is selected later: in a resumed
    /// run the checkpoint's cooldowns and unresponsive clients stand as the uninterrupted run
    /// had them (a fresh run has none).
    private var isRegistering: Bool {
        if case .registering = phase { return true }
        return false
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
        if let update = handle(frame), isCollecting { received.append(update) }
        progress()
        return takeOutbox()
    }

    /// The transport refused a frame because of its sender (a malformed envelope).
    mutating func receivedMalformedEnvelope(at now: Duration) -> [CoordinatorAction] {
        self.now = now
        metrics.rejected["malformed_envelope", default: 0] += 1
        rejectedTotals["malformed_envelope", default: 0] += 1
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
            unresponsive.insert(id)
            clients.markDisconnected(id)
            if isCollecting, pending.removeValue(forKey: id) != nil {
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
            if isCollecting, pending.removeValue(forKey: id) != nil {
                emit(
                    .log("round \(round): client \(id)'s connection closed; dropped from the round")
                )
                metrics.droppedTimeout.append(Int(id))
            }
            if !isRegistering { unresponsive.insert(id) }
        }
        abandon(tasksOf: stranded)
        progress()
        return takeOutbox()
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
            unresponsive.insert(id)
            if isCollecting, pending.removeValue(forKey: id) != nil {
                metrics.droppedTimeout.append(Int(id))
            }
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
        for id in ids where isCollecting && pending.removeValue(forKey: id) != nil {
            emit(.log("round \(round): client \(id)'s task was lost with its worker; dropped"))
            metrics.droppedTimeout.append(Int(id))
        }
    }

    /// The tasks a dead worker held for the clients at these home peers are lost.
    private mutating func abandon(tasksOf homes: [PeerID]) {
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
            unresponsive.insert(id)
        case .train(let id) where ticket.viaWorker:
            // The worker is gone: the task goes to another one, the worker's other tasks are lost.
            guard let home = clients[id]?.peer, let target = trainedAt[id] else { break }
            emit(.log("round \(round): cannot reach the worker on \(target.connection): \(error)"))
            trainedAt[id] = nil
            abandon(tasksOf: workers.sendFailed(home: home, target: target))
            progress()
        case .train(let id):
            emit(.log("round \(round): cannot reach client \(id): \(error)"))
            metrics.droppedTimeout.append(Int(id))
            pending[id] = nil
            progress()
        case .errorReply, .shutdown, .linkProbeReply, .workerControl:
            break
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

    // MARK: - Sequencing

    /// Moves the run on as far as the current state allows.
    private mutating func progress() {
        switch phase {
        case .registering(let needed, let deadline):
            if clients.count >= needed {
                emit(.log("\(clients.count) clients registered"))
                emit(.flushLedger)
                advance()
            } else if now > deadline {
                phase = .finished
                emit(
                    .fail(
                        .notEnoughClients(
                            registered: clients.count, needed: needed, waited: registrationTimeout)
                    ))
            }
        case .collecting:
            if pending.isEmpty {
                finishAttempt()
            } else if now > collectionDeadline {
                emit(
                    .log(
                        "round \(round): no update from \(pending.keys.sorted().map(String.init).joined(separator: ", ")) within \(roundTimeout); dropped"
                    ))
                metrics.droppedTimeout += pending.keys.sorted().map(Int.init)
                // Excluded while `cooldownUntil > round`: the next 3, 6, 12 … rounds.
                for id in pending.keys {
                    let streak = timeoutStreaks[id, default: 0] + 1
                    timeoutStreaks[id] = streak
                    cooldownUntil[id] = round + Cooldowns.rounds(afterTimeouts: streak) + 1
                }
                pending = [:]
                finishAttempt()
            }
        case .awaitingClients(let deadline):
            if reachableClients >= scenario.minimumUpdates || now > deadline {
                startAttempt(waited: true)
            }
        case .committing, .finished:
            break
        }
    }

    /// Whether a client may not be selected now: known gone, cooling down, or its connection
    /// known closed (another connection may have taken its routing identity over, so nothing
    /// goes there until it registers again).
    private func isExcluded(_ id: UInt32) -> Bool {
        unresponsive.contains(id) || (cooldownUntil[id] ?? 0) > round
            || clients[id]?.connected == false
    }

    /// Registered clients that may be selected now.
    private var reachableClients: Int {
        var count = 0
        clients.forEach { if !isExcluded($0.id) { count += 1 } }
        return count
    }

    /// Starts the next round, or ends the run after the last one.
    private mutating func advance() {
        guard round < scenario.rounds else {
            phase = .finished
            shutdownClients(reason: "run complete")
            emit(.finish)
            return
        }
        round += 1
        roundStart = now
        metrics = RoundMetrics(round: round)
        metrics.ranks = global.keptRanks
        metrics.learningRate = Double(scenario.learningRate(round: round))
        attempt = 0
        startAttempt()
    }

    /// Selects, plans (virtual clock, deadline) and sends TRAIN for one attempt.
    ///
    /// When fewer clients are reachable than `minimumUpdates` (every device's link went down,
    /// say), the round first waits up to the round timeout for them to come back, instead of
    /// passing rounds nobody can train in.
    private mutating func startAttempt(waited: Bool = false) {
        if !waited, attempt == 0, reachableClients < scenario.minimumUpdates {
            emit(
                .log(
                    "round \(round): \(reachableClients) clients reachable, minimumUpdates is \(scenario.minimumUpdates); waiting up to \(roundTimeout) for clients to come back"
                ))
            phase = .awaitingClients(deadline: now + roundTimeout)
            return
        }
        let snapshot = self
        let excluded = { (id: UInt32) in snapshot.isExcluded(id) }
        let selected = RoundLogic.selection(
            clients: clients, excluding: excluded, scenario: scenario, round: round,
            attempt: attempt)
        metrics.selected += selected.map(Int.init)
        let (invited, dropped) = RoundLogic.invitations(
            selected: selected, clients: clients, scenario: scenario, global: global, round: round)
        metrics.droppedDeadline += dropped.map(Int.init)
        self.invited = invited
        pending = [:]
        received = []
        trainedAt = [:]
        phase = .collecting
        collectionDeadline = now + roundTimeout
        for invitation in invited {
            guard let client = clients[invitation.client] else { continue }
            pending[invitation.client] = invitation.budgets
            send(.train(invitation.task), to: client, purpose: .train(invitation.client))
        }
        if pending.isEmpty { finishAttempt() }
    }

    /// The attempt's updates are in (or the rest timed out): retry, or finish the round.
    private mutating func finishAttempt() {
        let contributions = received.sorted {
            $0.contribution.clientID < $1.contribution.clientID
        }
        let participants = contributions.map(\.contribution)
        metrics.participants += participants.map(\.clientID)
        let times = invited.filter { plan in
            participants.contains { $0.clientID == Int(plan.client) }
        }.map(\.time)
        metrics.virtualSeconds = scenario.roundSeconds(
            participants: times, anyDropped: !metrics.droppedDeadline.isEmpty)
        totals.virtual += metrics.virtualSeconds
        metrics.virtualTime = totals.virtual
        // With roundFailurePolicy retry, a round that misses minimumUpdates is run again with a
        // new selection (at most twice more); skip keeps the model, abort stops the run.
        let outcome = RoundLogic.outcome(
            updates: contributions.count, attempt: attempt,
            minimumUpdates: scenario.minimumUpdates, policy: scenario.roundFailurePolicy)
        if outcome == .retry {
            attempt += 1
            metrics.retries += 1
            emit(
                .log(
                    "round \(round): \(contributions.count) updates < minimumUpdates \(scenario.minimumUpdates); retrying with a new selection"
                ))
            startAttempt()
            return
        }
        finishRound(outcome: outcome, contributions: contributions)
    }

    private mutating func finishRound(
        outcome: RoundLogic.Outcome,
        contributions: [(contribution: ClientContribution, loss: Double)]
    ) {
        let participants = contributions.map(\.contribution)
        if !contributions.isEmpty {
            let samples = contributions.reduce(0.0) { $0 + Double($1.contribution.sampleCount) }
            metrics.trainingLoss =
                contributions.reduce(0.0) { $0 + $1.loss * Double($1.contribution.sampleCount) }
                / max(samples, 1)
        }
        // What the round started from, to roll back to if its aggregate is not finite.
        let before = (global: global, serverState: serverState, averaged: averaged)
        var aggregated = false
        switch outcome {
        case .aggregate:
            aggregate(participants)
            aggregated = true
            if let reason = RoundLogic.nonFiniteModel(global) {
                rollBack(to: before, reason: reason)
                aggregated = false
            }
        case .abort:
            phase = .finished
            emit(
                .fail(
                    .roundFailed(
                        round: round, updates: participants.count,
                        needed: scenario.minimumUpdates)))
            return
        case .keepModel, .retry:
            emit(
                .log(
                    "round \(round): \(participants.count) updates < minimumUpdates \(scenario.minimumUpdates): model unchanged"
                ))
        }
        finishModel()
        if aggregated,
            let reason = RoundLogic.nonFiniteEvaluation(
                accuracy: metrics.accuracyByTier, loss: metrics.lossByTier)
        {
            rollBack(to: before, reason: reason)
            aggregated = false
            finishModel()
        }
        if aggregated {
            for id in participants.map(\.clientID) {
                contributors.insert(UInt32(id))
                participations[scenario.tiers[clients[UInt32(id)]!.tierIndex].name, default: 0] += 1
            }
        }
        metrics.wallSeconds = (now - roundStart).seconds
        metrics.cumulativeBytes = totals.up + totals.down
        metrics.cumulativeDenseEquivalentBytes = totals.dense
        phase = .committing
        emit(.commit(metrics))
    }

    /// Applies the scenario's aggregation rule and server optimiser to the round's updates.
    private mutating func aggregate(_ participants: [ClientContribution]) {
        let rule: AggregationRule =
            switch scenario.robustness.aggregation {
            case .mean: .mean
            case .median: .median
            case .trimmedMean: .trimmedMean(fraction: scenario.robustness.trimFraction)
            }
        let delta = OrderedAggregation.pseudoGradient(
            global: global, contributions: participants,
            coverageDamping: scenario.training.coverageDamping, rule: rule)
        let covered =
            scenario.training.rankAwareServer
            ? OrderedAggregation.coveredRows(global: global, contributions: participants)
            : nil
        OrderedAggregation.apply(
            delta, to: &global.parameters, optimizer: scenario.serverOptimizer,
            state: &serverState, coveredRows: covered)
    }

    /// Throws the round's aggregate away: the model, the server optimiser's state and the
    /// deployed average are those the round started from; the round's metrics say why.
    private mutating func rollBack(
        to before: (global: Network, serverState: ServerOptimizerState, averaged: Network?),
        reason: String
    ) {
        global = before.global
        serverState = before.serverState
        averaged = before.averaged
        metrics.rolledBack = reason
        emit(.log("round \(round): aggregate rolled back (\(reason)); the previous model stands"))
    }

    /// After the round's aggregation: budget growth, shrinking, the deployed average and the
    /// evaluation.
    private mutating func finishModel() {
        for opened in RoundLogic.openGrownBudgets(
            &global, serverState: &serverState, scenario: scenario, after: round)
        {
            averaged?.zeroOutputFactor(lowRankLayer: opened.layer, rows: opened.components)
            emit(
                .log(
                    "round \(round): budget growth opens components \(opened.components) of layer \(opened.layer)"
                ))
        }
        if scenario.isLowRank
            && scenario.shrinking.shrinks(atRound: round, lastRound: scenario.rounds)
        {
            for cut in RoundLogic.shrink(&global, serverState: &serverState, scenario: scenario) {
                averaged?.mask(lowRankLayer: cut.layer, toRank: cut.to)
                emit(
                    .log(
                        "round \(round): shrank layer \(cut.layer) from \(cut.from) to \(cut.to) components"
                    ))
            }
        }
        if scenario.evaluation.averageDecay > 0 {
            RoundLogic.average(
                &averaged, toward: global, decay: scenario.evaluation.averageDecay)
        }
        if round % scenario.evaluation.period == 0 || round == scenario.rounds {
            evaluate()
        }
    }

    /// The model tiers evaluate and deploy, and the run's final model file: the moving
    /// average of the server's model (`evaluation.averageDecay`), or the server's model.
    var deployedModel: Network { averaged ?? global }

    /// Accuracy and loss on the held-out test set of the model every tier deploys: the
    /// deployed model at the tier's budget, or (`bestValidated`) at the tier budget within it
    /// that scores best on the validation set.
    private mutating func evaluate() {
        let model = deployedModel
        let tiers = scenario.tiers
        let rankSets = tiers.indices.map { index in
            scenario.isLowRank ? budgets(tierIndex: index) : global.keptRanks
        }
        let results = model.evaluate(on: evaluationSet, rankSets: rankSets)
        var deployed = Array(tiers.indices)
        if let validationSet {
            let validation = model.evaluateRows(on: validationSet, rankSets: rankSets)
            metrics.validationAccuracyByTier = Dictionary(
                uniqueKeysWithValues: zip(tiers.map(\.name), validation.map(\.accuracy)))
            if scenario.evaluation.deploy == .bestValidated {
                let significance = scenario.evaluation.deploySignificance
                deployed =
                    significance > 0
                    ? RoundLogic.bestValidatedBudgets(
                        budgets: rankSets, validationCorrect: validation.map(\.correct),
                        significance: significance)
                    : RoundLogic.bestValidatedBudgets(
                        budgets: rankSets, validationAccuracy: validation.map(\.accuracy))
                lastDeployed = Dictionary(
                    uniqueKeysWithValues: zip(tiers.map(\.name), deployed.map { tiers[$0].name }))
                metrics.deployedBudgetByTier = lastDeployed
                metrics.accuracyAtBudgetByTier = Dictionary(
                    uniqueKeysWithValues: zip(tiers.map(\.name), results.map(\.accuracy)))
            }
        }
        let accuracy = Dictionary(
            uniqueKeysWithValues: zip(tiers.map(\.name), deployed.map { results[$0].accuracy }))
        metrics.accuracyByTier = accuracy
        metrics.lossByTier = Dictionary(
            uniqueKeysWithValues: zip(tiers.map(\.name), deployed.map { results[$0].loss }))
        lastAccuracy = accuracy
    }

    /// The final (deployed) model's accuracy, parameters and MACs with every layer cut to each
    /// of `TruncationPoint.fractions` of its kept rank (one point for a dense model).
    public func truncationCurve() -> [TruncationPoint] {
        let model = deployedModel
        let fractions = scenario.isLowRank ? TruncationPoint.fractions : [1]
        let rankSets = fractions.map { model.ranks(atFraction: $0) }
        let results = model.evaluate(on: evaluationSet, rankSets: rankSets)
        return zip(fractions, zip(rankSets, results)).map { fraction, pair in
            TruncationPoint(
                rankFraction: fraction, accuracy: pair.1.accuracy,
                parameters: model.parameterCount(ranks: pair.0), macs: model.macs(ranks: pair.0),
                ranks: pair.0)
        }
    }

    private mutating func shutdownClients(reason: String) {
        clients.forEach { send(.shutdown(Shutdown(reason: reason)), to: $0, purpose: .shutdown) }
        emit(.flushLedger)
    }

    // MARK: - Frames

    /// Handles one frame; returns an accepted update, if it was one.
    private mutating func handle(
        _ frame: ReceivedFrame
    ) -> (contribution: ClientContribution, loss: Double)? {
        if let id = clients.id(of: frame.peer), let record = clients[id],
            record.key != frame.authenticatedKey, !unresponsive.contains(id) || record.connected
        {
            // Another key now speaks for this peer (a connection took its routing identity
            // over): the client is gone until it registers again, and nothing more goes there.
            emit(
                .log(
                    "client \(id)'s connection \(frame.peer) now carries another key; treated as gone"
                ))
            clients.markDisconnected(id)
            unresponsive.insert(id)
            if isCollecting, pending.removeValue(forKey: id) != nil {
                metrics.droppedTimeout.append(Int(id))
            }
        }
        let bytes = frame.bytes.count
        let envelope: Envelope
        do {
            envelope = try WireCodec.decode(frame.bytes, maximumSize: maximumMessageSize)
        } catch {
            reject(
                "malformed", peer: frame.peer, bytes: bytes, message: "garbage",
                reply: ErrorReport(code: .malformed, message: "\(error)"))
            return nil
        }
        switch envelope.message {
        case .register(let registration):
            handleRegistration(
                registration, from: frame.peer, key: frame.authenticatedKey, bytes: bytes)
        case .update(let update):
            return handleUpdate(update, envelope: envelope, peer: frame.peer, bytes: bytes)
        case .heartbeat:
            recordLedger(
                client: clientID(of: frame.peer), direction: .up, message: "heartbeat", bytes: bytes
            )
        case .error(let report):
            recordLedger(
                client: clientID(of: frame.peer), direction: .up, message: "error", bytes: bytes)
            emit(
                .log(
                    "client \(envelope.sender) (\(frame.peer)) reported: \(PeerText.escaped(report.message))"
                ))
        case .evaluation:
            recordLedger(
                client: clientID(of: frame.peer), direction: .up, message: "evaluation",
                bytes: bytes)
        case .linkProbe(let probe):
            answer(probe, from: frame.peer, key: frame.authenticatedKey, bytes: bytes)
        case .registered, .train, .evaluate, .shutdown, .workerHello, .workerAssignment,
            .workerRows, .linkProbeReply:
            reject(
                "wrong_type", peer: frame.peer, bytes: bytes,
                message: envelope.message.type.description,
                reply: ErrorReport(
                    code: .unexpected, message: "a client may not send \(envelope.message.type)"))
        }
        return nil
    }

    /// The largest probe reply: `bench --profile --coordinator` asks for at most 8 MiB, and
    /// one reply a peer does not read then stays within a connection's queue budget.
    static let maximumProbeReplyBytes = 8 << 20

    /// Answers a device's link measurement (`bench --profile --coordinator`) with a reply of
    /// the size it asks for, at most the size of its own frame: a probe never makes the
    /// coordinator send more than it received. With an enrolment, only enrolled keys are
    /// answered (as only they may register). Probes and replies are ledger rows like any
    /// other traffic.
    private mutating func answer(_ probe: LinkProbe, from peer: PeerID, key: String?, bytes: Int) {
        if enrolment != nil && enrolment?.entry(forKey: key) == nil {
            reject(
                "not_enrolled", peer: peer, bytes: bytes, message: "linkProbe",
                reply: ErrorReport(
                    code: .unexpected, message: "this connection's key is not enrolled"))
            return
        }
        guard Int(probe.replyFrameBytes) <= bytes else {
            reject(
                "probe_amplifies", peer: peer, bytes: bytes, message: "linkProbe",
                reply: ErrorReport(
                    code: .unexpected,
                    message:
                        "a link probe of \(bytes) bytes may ask for a reply of at most \(bytes) bytes, not \(probe.replyFrameBytes)"
                ))
            return
        }
        guard Int(probe.replyFrameBytes) <= Self.maximumProbeReplyBytes else {
            reject(
                "probe_too_large", peer: peer, bytes: bytes, message: "linkProbe",
                reply: ErrorReport(
                    code: .unexpected,
                    message:
                        "a link probe may ask for a reply of at most \(Self.maximumProbeReplyBytes) bytes, not \(probe.replyFrameBytes)"
                ))
            return
        }
        let client = clientID(of: peer)
        recordLedger(client: client, direction: .up, message: "linkProbe", bytes: bytes)
        let reply = LinkProbeReply(frameBytes: Int(probe.replyFrameBytes))
        let frame = WireCodec.encode(.linkProbeReply(reply), round: UInt32(round), sender: 0)
        emit(
            .send(
                frame, to: peer,
                ticket: SendTicket(
                    purpose: .linkProbeReply, round: round, client: client,
                    message: "linkProbeReply", bytes: frame.count)))
    }

    private mutating func handleRegistration(
        _ registration: Registration, from peer: PeerID, key: String?, bytes: Int
    ) {
        guard let tierIndex = scenario.tiers.firstIndex(where: { $0.name == registration.tierName })
        else {
            reject(
                "unknown_tier", peer: peer, bytes: bytes, message: "register",
                reply: ErrorReport(
                    code: .unexpected,
                    message:
                        "unknown tier '\(PeerText.escaped(registration.tierName))'; this run has \(scenario.tiers.map(\.name).joined(separator: ", "))"
                ))
            return
        }
        let refuse = { (machine: inout CoordinatorMachine, reason: String, message: String) in
            machine.reject(
                reason, peer: peer, bytes: bytes, message: "register",
                reply: ErrorReport(code: .unexpected, message: message))
        }
        let entry = enrolment?.entry(forKey: key)
        if enrolment != nil && entry == nil {
            // With an allow-list the transport admits only listed keys; a frame without one
            // (or with another) is not from an enrolled device.
            refuse(&self, "not_enrolled", "this connection's key is not enrolled")
            return
        }
        if let bound = entry?.clientID, let requested = registration.requestedClientID,
            requested != bound
        {
            refuse(
                &self, "key_id_mismatch",
                "this key is enrolled as client \(bound), not client \(requested)")
            return
        }
        if let tier = entry?.tier, tier != registration.tierName {
            refuse(
                &self, "key_tier_mismatch",
                "this key is enrolled in tier '\(tier)', not '\(PeerText.escaped(registration.tierName))'"
            )
            return
        }
        var hostedIndex: UInt32?
        if let channel = peer.channel {
            // A channel of a multiplexed connection: only an admitted worker's own clients
            // register there, each under its fleet index.
            guard let index = WorkerPool.client(ofChannel: channel),
                workers.hosts(peer.connection, client: index),
                registration.requestedClientID == UInt32(index)
            else {
                refuse(
                    &self, "not_hosted",
                    "a client registers on a channel only through the admitted worker hosting it, under its index"
                )
                return
            }
            // A hosted client is one of the scenario's: its tier is the scenario's, not the
            // worker's word.
            if let home = scenario.tierRanges.firstIndex(where: { $0.contains(index) }),
                home != tierIndex
            {
                refuse(
                    &self, "wrong_tier",
                    "client \(index) of this fleet is in tier '\(scenario.tiers[home].name)', not '\(PeerText.escaped(registration.tierName))'"
                )
                return
            }
            hostedIndex = UInt32(index)
        } else if entry?.isWorker == true {
            refuse(&self, "worker_key", "a worker's key hosts clients on its channels; it is no device")
            return
        }
        let id: UInt32
        if let held = clients.id(of: peer) {
            // A connection (or a worker's channel) is one device: it holds one client ID,
            // whatever nonce it sends now (a new process behind the same identity included).
            if let requested = registration.requestedClientID ?? entry?.clientID,
                requested != held
            {
                refuse(
                    &self, "peer_has_id",
                    "this connection is registered as client \(held); it cannot also be client \(requested)"
                )
                return
            }
            id = held
        } else if let assigned = hostedIndex ?? entry?.clientID
            ?? RoundLogic.clientID(
                for: registration, clients: clients, populationBound: populationBound)
        {
            id = assigned
        } else if clients.count >= populationBound {
            refuse(
                &self, "population_full",
                "this run takes at most \(populationBound) clients, and has them")
            return
        } else {
            refuse(&self, "no_client_id", "no client ID left to assign; give one")
            return
        }
        if Int(id) >= populationBound {
            refuse(
                &self, "id_out_of_range",
                "client IDs in this run are 0…\(populationBound - 1); \(id) is outside them")
            return
        }
        if let owner = enrolment?.key(boundTo: id), owner != key {
            refuse(&self, "id_bound_to_other_key", "client \(id) is enrolled under another key")
            return
        }
        let previous = clients[id]
        if let previous, previous.peer != peer {
            // Another peer claims a registered ID (with its nonce or not: a nonce travels in
            // the clear). It may take it over when the first connection is known gone, when
            // it is the same connection (a worker's channel), or when its key is enrolled as
            // that ID (the key proves who it is); never from a live connection on a claim.
            let proven = entry?.clientID == id
            guard
                proven || !previous.connected || unresponsive.contains(id)
                    || previous.peer.connection == peer.connection
            else {
                refuse(
                    &self, "id_taken",
                    "client \(id) is registered from another connection that is still alive")
                return
            }
        }
        if let previous, previous.nonce != registration.instanceNonce {
            emit(.log("client \(id) re-registered from \(peer) (restarted)"))
        }
        if previous == nil && clients.count >= populationBound {
            refuse(
                &self, "population_full",
                "this run takes at most \(populationBound) clients, and has them")
            return
        }
        if !isRegistering {
            unresponsive.remove(id)
            // A new process (another nonce) ends a cooldown; the same one registering again
            // (a reconnect, or a peer replaying its REGISTER) does not. See `Cooldowns`.
            if previous?.nonce != registration.instanceNonce { cooldownUntil[id] = nil }
        }
        let record = ClientRecord(
            id: id, peer: peer, tierIndex: tierIndex,
            sampleCount: min(Int(registration.sampleCount), sampleBound),
            nonce: registration.instanceNonce, reportedGflops: registration.capability, key: key)
        clients.insert(record)
        if let key { connectionKeys[peer.connection] = key }
        recordLedger(client: Int(id), direction: .up, message: "register", bytes: bytes)
        send(
            .registered(
                RegistrationAccepted(clientID: id, runID: runID, modelDescription: modelDescription)
            ), to: record, purpose: .registrationReply(id))
    }

    private mutating func handleUpdate(
        _ update: TrainingUpdate, envelope: Envelope, peer: PeerID, bytes: Int
    ) -> (contribution: ClientContribution, loss: Double)? {
        let id = envelope.sender
        guard let client = clients[id], client.peer == peer || trainedAt[id] == peer else {
            reject(
                "unknown_client", peer: peer, bytes: bytes, message: "update",
                reply: ErrorReport(
                    code: .unknownClient, message: "client \(id) is not registered from \(peer)"))
            return nil
        }
        guard Int(envelope.round) == round else {
            if Int(envelope.round) < round {
                metrics.lateUpdates += 1
                lateTotal += 1
            }
            reject(
                Int(envelope.round) < round ? "late" : "wrong_round", peer: peer, bytes: bytes,
                message: "update", reply: nil)
            return nil
        }
        guard isCollecting, let budgets = pending[id] else {
            reject(
                "not_selected_or_duplicate", peer: peer, bytes: bytes, message: "update",
                reply: ErrorReport(
                    code: .unexpected,
                    message: "no update expected from client \(id) in round \(round)"))
            return nil
        }
        guard trainedAt[id] == peer else {
            // Its TRAIN went to another worker (or is still queued): only that peer answers.
            reject(
                "not_dispatched_here", peer: peer, bytes: bytes, message: "update",
                reply: ErrorReport(
                    code: .unexpected,
                    message: "client \(id)'s task of round \(round) was not sent to \(peer)"))
            return nil
        }
        let frozen = scenario.frozenLayers(
            of: scenario.tiers[client.tierIndex], architecture: global.architecture)
        if let problem = RoundLogic.problem(
            with: update, budgets: budgets, global: global, frozenLayers: frozen,
            maximumNormRatio: scenario.robustness.maximumUpdateNormRatio)
        {
            // The client answered, wrongly: it leaves the round (no waiting for the timeout).
            pending[id] = nil
            metrics.droppedInvalid.append(Int(id))
            reject(
                problem.reason, peer: peer, bytes: bytes, message: "update",
                reply: ErrorReport(code: .shapeMismatch, message: problem.message))
            return nil
        }
        pending[id] = nil
        if let largest = RoundLogic.updateNormRatio(
            of: update, budgets: budgets, global: global, frozenLayers: frozen)
        {
            metrics.largestUpdateNormRatio = max(
                metrics.largestUpdateNormRatio ?? 0, largest.ratio)
        }
        // Work done: the streak of time-outs is over (and so is any cooldown).
        timeoutStreaks[id] = nil
        cooldownUntil[id] = nil
        metrics.clientComputeSeconds += Double(update.computeSeconds)
        computeTotal += Double(update.computeSeconds)
        recordLedger(client: Int(id), direction: .up, message: "update", bytes: bytes)
        countDenseEquivalent(denseMessageBytes.update, client: Int(id), round: round)
        // The weight is the count fixed (and capped) at registration: an update's own count
        // is the client's word, and a client could claim its way to a larger say.
        let samples = client.sampleCount
        // A frozen layer's factors came back with no rows: its budget in the update is 0.
        let slice = ModelSlice(
            budgets: update.factors.map { $0.up.shape.first ?? 0 }, factors: update.factors,
            shared: update.shared)
        return (
            ClientContribution(clientID: Int(id), sampleCount: max(samples, 1), slice: slice),
            Double(update.trainingLoss)
        )
    }

    private mutating func reject(
        _ reason: String, peer: PeerID, bytes: Int, message: String, reply: ErrorReport?
    ) {
        metrics.rejected[reason, default: 0] += 1
        rejectedTotals[reason, default: 0] += 1
        let client = clientID(of: peer)
        recordLedger(client: client, direction: .up, message: message, bytes: bytes)
        emit(
            .log(
                "rejected \(message) from \(peer): \(reason)\(reply.map { " (\($0.message))" } ?? "")"
            ))
        if let reply {
            let frame = WireCodec.encode(.error(reply), round: UInt32(round), sender: 0)
            emit(
                .send(
                    frame, to: peer,
                    ticket: SendTicket(
                        purpose: .errorReply, round: round, client: client, message: "error",
                        bytes: frame.count)
                ))
        }
    }

    private func clientID(of peer: PeerID) -> Int {
        clients.id(of: peer).map(Int.init) ?? -1
    }

    private mutating func send(
        _ message: Message, to client: ClientRecord, purpose: SendTicket.Purpose
    ) {
        let frame = WireCodec.encode(message, round: UInt32(round), sender: 0)
        var ticket = SendTicket(
            purpose: purpose, round: round, client: Int(client.id),
            message: message.type.description, bytes: frame.count)
        if case .train(let id) = purpose {
            if workers.dispatch.dispatches(client.peer) {
                // A hosted client: the first free worker trains it (dispatchTraining).
                ticket.viaWorker = true
                workers.enqueue(.init(frame: frame, home: client.peer, ticket: ticket, round: round))
                return
            }
            trainedAt[id] = client.peer
        }
        emit(.send(frame, to: client.peer, ticket: ticket))
    }

    /// Hands queued TRAINs to the free workers, each after the rows of its client if that
    /// worker does not host it and has not had them.
    private mutating func dispatchTraining() {
        while let (task, target) = workers.next(currentRound: round) {
            // A task whose client left the round (gone, dropped, registered again elsewhere)
            // while it waited, or whose client's TRAIN of this attempt already went out (a
            // retry queued it again), is not sent: it frees the worker at once.
            guard case .train(let id) = task.ticket.purpose, isCollecting, pending[id] != nil,
                clients[id]?.peer == task.home, trainedAt[id] == nil
            else {
                workers.arrived(from: target)
                continue
            }
            let rows: WorkerRows?
            do {
                rows = try workers.rows(forGuest: Int(id), on: target.connection)
            } catch {
                emit(.log("round \(round): cannot read client \(id)'s rows: \(error)"))
                rows = nil
            }
            if let rows { sendControl(.workerRows(rows), to: target.connection) }
            trainedAt[id] = target
            emit(.send(task.frame, to: target, ticket: task.ticket))
        }
    }

    private mutating func sendControl(_ message: Message, to connection: PeerID) {
        let frame = WireCodec.encode(message, round: 0, sender: 0)
        emit(
            .send(
                frame, to: connection.onChannel([]),
                ticket: SendTicket(
                    purpose: .workerControl, round: round, client: -1,
                    message: message.type.description, bytes: frame.count)))
    }

    // MARK: - Workers

    /// A frame on a worker's control channel: a HELLO from an admitted worker gets its share
    /// of the fleet; anything else gets a short refusal or nothing.
    private mutating func handleWorkerControl(_ frame: ReceivedFrame) {
        workerControl.recordReceived(frame.bytes.count)
        let envelope: Envelope
        do {
            envelope = try WireCodec.decode(frame.bytes, maximumSize: maximumMessageSize)
        } catch {
            // No answer: a reply to garbage would be more bytes than the garbage.
            emit(.log("ignored a malformed frame on the control channel of \(frame.peer): \(error)"))
            return
        }
        guard case .workerHello(let hello) = envelope.message else {
            emit(.log("ignored a \(envelope.type) on the control channel of \(frame.peer)"))
            return
        }
        switch workers.hello(hello, from: frame.peer, key: frame.authenticatedKey) {
        case .refused(let reason, let admitted, let retryable):
            emit(
                .log(
                    admitted
                        ? "refused the worker on \(PeerText.escaped(hello.host)) (\(frame.peer)): \(reason)"
                        : "refused a worker HELLO from \(frame.peer): no worker credential"))
            sendControl(
                .error(ErrorReport(code: retryable ? .retryLater : .unexpected, message: reason)),
                to: frame.peer.connection)
        case .assigned(let slot, let slots, let renewed):
            let assignment: WorkerAssignment
            do {
                assignment = try workers.assignment(
                    slot: slot, slots: slots, runID: runID, scenario: scenario.yaml())
            } catch {
                emit(.log("cannot assign share \(slot) to \(frame.peer): \(error)"))
                sendControl(
                    .error(ErrorReport(code: .internalFailure, message: "\(error)")),
                    to: frame.peer.connection)
                return
            }
            if let key = frame.authenticatedKey { connectionKeys[frame.peer.connection] = key }
            if !renewed {
                emit(
                    .log(
                        "worker on \(PeerText.escaped(hello.host)) (\(frame.peer)) hosts share \(slot) of \(slots)"
                    ))
            }
            sendControl(.workerAssignment(assignment), to: frame.peer.connection)
        }
    }

    // MARK: - Accounting

    /// Records a frame in the ledger and the byte counts. A frame of an earlier round (a
    /// registration answered as the first round starts) counts in the run's totals but not in
    /// the current round's metrics.
    private mutating func recordLedger(
        client: Int, direction: LedgerEntry.Direction, message: String, bytes: Int,
        round entryRound: Int? = nil
    ) {
        let entryRound = entryRound ?? round
        emit(
            .record(
                LedgerEntry(
                    round: entryRound, client: client, tier: tierName(client: client),
                    direction: direction, message: message, bytes: bytes)))
        let inRound = entryRound == metrics.round
        switch direction {
        case .up:
            if inRound { metrics.bytesUp += bytes }
            totals.up += bytes
        case .down:
            if inRound { metrics.bytesDown += bytes }
            totals.down += bytes
        }
        tierBytes(client: client, inRound: inRound) { entry in
            if direction == .up { entry.up += bytes } else { entry.down += bytes }
        }
        // Control messages cost the same under dense FedAvg: they count at their size.
        if message != "train" && message != "update" {
            countDenseEquivalent(bytes, client: client, round: entryRound)
        }
    }

    /// Adds what dense FedAvg would have moved for this message.
    private mutating func countDenseEquivalent(_ bytes: Int, client: Int, round entryRound: Int) {
        let inRound = entryRound == metrics.round
        if inRound { metrics.denseEquivalentBytes += bytes }
        totals.dense += bytes
        tierBytes(client: client, inRound: inRound) { $0.denseEquivalent += bytes }
    }

    private mutating func tierBytes(
        client: Int, inRound: Bool, _ update: (inout RoundMetrics.TierBytes) -> Void
    ) {
        let tier = tierName(client: client)
        if inRound { update(&metrics.bytesByTier[tier, default: RoundMetrics.TierBytes()]) }
        update(&tierTotals[tier, default: RoundMetrics.TierBytes()])
    }

    private func tierName(client: Int) -> String {
        client >= 0
            ? clients[UInt32(client)].map { scenario.tiers[$0.tierIndex].name } ?? "-" : "-"
    }

    private mutating func emit(_ action: CoordinatorAction) { outbox.append(action) }

    private mutating func takeOutbox() -> [CoordinatorAction] {
        dispatchTraining()
        defer { outbox = [] }
        return outbox
    }

    // MARK: - Results

    /// The TRAIN task for a slice sent to a client of tier fraction `tierFraction` (the seed
    /// makes local training reproducible).
    static func task(
        for slice: ModelSlice, scenario: Scenario, round: Int, client: UInt32,
        tierFraction: Double = 1, freezeConvolutions: Bool = false
    ) -> TrainingTask {
        let sampler = scenario.samplerOnWire(tierFraction: tierFraction)
        let seed = SeededGenerator.value(
            seed: scenario.seed,
            stream: RandomStream.clientTraining &+ UInt64(round) << 20 &+ UInt64(client))
        return TrainingTask(
            budgets: slice.budgets.map(UInt32.init), factors: slice.factors, shared: slice.shared,
            localEpochs: UInt16(scenario.training.localEpochs),
            batchSize: UInt16(scenario.training.batchSize),
            learningRate: scenario.learningRate(round: round), sampler: sampler.kind,
            groupLasso: Float(scenario.training.groupLasso), seed: seed,
            momentum: Float(scenario.training.momentum),
            weightDecay: Float(scenario.training.weightDecay),
            samplerFractions: sampler.fractions,
            fullBudgetProbability: Float(scenario.training.fullBudgetProbability),
            selfDistillation: scenario.training.selfDistillation,
            freezeConvolutions: freezeConvolutions)
    }

    /// The state after the current round, for `--resume`.
    func checkpoint(
        statistics: TransportStatistics, wallSeconds: Double
    ) -> CoordinatorCheckpoint {
        let header = CoordinatorCheckpoint.Header(
            round: round, architecture: global.architecture, keptRanks: global.keptRanks,
            bytesUp: totals.up, bytesDown: totals.down, denseEquivalentBytes: totals.dense,
            virtualSeconds: totals.virtual,
            wallSeconds: earlier.wall + wallSeconds,
            clientComputeSeconds: computeTotal,
            transportBytesSent: earlier.sent + Int(statistics.bytesSent),
            transportBytesReceived: earlier.received + Int(statistics.bytesReceived),
            tierBytes: tierTotals,
            participations: participations, rejected: rejectedTotals, lateUpdates: lateTotal,
            lastAccuracy: lastAccuracy, cooldownUntil: cooldownUntil,
            unresponsive: unresponsive.sorted(), contributors: contributors.sorted(),
            deployedBudgets: lastDeployed.isEmpty ? nil : lastDeployed,
            timeoutStreaks: timeoutStreaks.isEmpty ? nil : timeoutStreaks)
        return CoordinatorCheckpoint(
            header: header, parameters: global.parameters, serverState: serverState,
            averagedParameters: averaged?.parameters)
    }

    /// The final model file's metadata.
    var modelMetadata: [String: String] {
        [
            "dataset": scenario.dataset.name, "dataDirectory": scenario.dataDirectory,
            "model": scenario.modelKind.rawValue,
            "variant": scenario.isLowRank ? "lod" : "dense", "seed": "\(scenario.seed)",
            "scenario": scenario.name,
            "rounds": "\(scenario.rounds)",
        ]
    }

    /// The run's summary.
    func summary(statistics: TransportStatistics, wallSeconds: Double) -> RunSummary {
        let counts = scenario.clientsPerTier
        var samples = scenario.tiers.map { _ in (all: 0, contributed: 0, clients: 0) }
        clients.forEach { client in
            guard samples.indices.contains(client.tierIndex) else { return }
            samples[client.tierIndex].all += client.sampleCount
            if contributors.contains(client.id) {
                samples[client.tierIndex].contributed += client.sampleCount
                samples[client.tierIndex].clients += 1
            }
        }
        let tiers = scenario.tiers.enumerated().map { index, tier in
            let ranks = scenario.isLowRank ? budgets(tierIndex: index) : []
            let deployedTier = lastDeployed[tier.name].flatMap { name in
                scenario.tiers.firstIndex { $0.name == name }
            }
            let deployedRanks = deployedTier.map { budgets(tierIndex: $0) }
            let bytes = tierTotals[tier.name] ?? RoundMetrics.TierBytes()
            var summary = RunSummary.TierSummary(
                tier: tier.name, rankFraction: tier.rankFraction, clients: counts[index],
                participations: participations[tier.name] ?? 0, bytes: bytes.up + bytes.down,
                denseEquivalentBytes: bytes.denseEquivalent, accuracy: lastAccuracy[tier.name],
                ranks: ranks,
                parameters: global.parameterCount(ranks: scenario.isLowRank ? ranks : []),
                trainingFlopsPerSample: global.trainingStepFLOPs(
                    batch: 1, ranks: scenario.isLowRank ? ranks : nil,
                    frozenLayers: scenario.frozenLayers(
                        of: tier, architecture: global.architecture)),
                macs: global.macs(ranks: deployedRanks ?? (scenario.isLowRank ? ranks : [])),
                contributingClients: samples[index].clients,
                samples: samples[index].all, contributedSamples: samples[index].contributed)
            summary.deployedBudget = lastDeployed[tier.name].map {
                scenario.deployedBudgetLabel($0, round: round)
            }
            summary.deployedRanks = deployedRanks
            return summary
        }
        let moved = Double(totals.up + totals.down)
        let savings: Double = totals.dense > 0 ? 1 - moved / Double(totals.dense) : 0
        return RunSummary(
            scenario: scenario.name, strategy: scenario.model.strategy.rawValue, rounds: round,
            seed: scenario.seed,
            finalAccuracyByTier: lastAccuracy, bytesUp: totals.up, bytesDown: totals.down,
            denseEquivalentBytes: totals.dense,
            savingsRatio: savings,
            wallSeconds: earlier.wall + wallSeconds,
            virtualSeconds: totals.virtual,
            finalRanks: global.keptRanks, tiers: tiers, rejectedMessages: rejectedTotals,
            lateUpdates: lateTotal, clientComputeSeconds: computeTotal,
            transportBytesSent: earlier.sent + Int(statistics.bytesSent),
            transportBytesReceived: earlier.received + Int(statistics.bytesReceived),
            modelFile: RunRecorder.finalModelFile)
    }
}
