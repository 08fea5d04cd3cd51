import Federation
import Fleet
import Foundation
import LowRank
import Tensors
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

/// A registered client as the coordinator knows it.
struct ClientRecord {
    var id: UInt32
    var peer: PeerID
    var tierIndex: Int
    var sampleCount: Int
    var nonce: UInt64
}

/// The federated coordinator: registers clients, runs the rounds of a scenario (select,
/// send TRAIN, collect UPDATEs, aggregate in client-ID order, shrink, evaluate), records
/// metrics and the byte ledger, and writes the final model and summary.
///
/// Owns its transport and is used from one thread (the transport is not thread-safe).
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

    let scenario: Scenario
    let options: Options
    private let transport: any MessageTransport
    private let recorder: RunRecorder
    private let evaluationSet: TrainingSamples
    private(set) var global: Network
    private var serverState: ServerOptimizerState
    private var clients: [UInt32: ClientRecord] = [:]
    private var round = 0
    private var metrics = RoundMetrics(round: 0)
    private var totals = (up: 0, down: 0, dense: 0, virtual: 0.0)
    private var tierTotals: [String: RoundMetrics.TierBytes] = [:]
    private var participations: [String: Int] = [:]
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
    static let timeoutCooldownRounds = 3
    private var lastAccuracy: [String: Double] = [:]
    private let denseMessageBytes: (train: Int, update: Int)
    private let runID: UInt64
    private let modelDescription: String
    private let started = ContinuousClock.now
    /// Wall seconds and transport bytes of the run before it was resumed.
    private var earlier = (wall: 0.0, sent: 0, received: 0)

    public init(
        scenario: Scenario, transport: any MessageTransport, recorder: RunRecorder,
        evaluationSet: TrainingSamples, options: Options = Options(),
        resumingFrom checkpoint: CoordinatorCheckpoint? = nil
    ) throws(CoordinatorError) {
        self.scenario = scenario
        self.transport = transport
        self.recorder = recorder
        self.evaluationSet = evaluationSet
        self.options = options
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
            completedRound = header.round
            earlier = (header.wallSeconds, header.transportBytesSent, header.transportBytesReceived)
        }
    }

    /// Budgets of each tier for the current global ranks.
    func budgets(tierIndex: Int) -> [Int] {
        RoundLogic.budgets(
            tier: scenario.tiers[tierIndex], keptRanks: global.keptRanks, lowRank: true)
    }

    /// Runs every round and writes the summary.
    public func run() throws(CoordinatorError) -> RunSummary {
        try waitForRegistrations()
        while round < scenario.rounds {
            round += 1
            try runRound()
            if options.shouldStop() { throw .stopped }
        }
        try shutdownClients(reason: "run complete")
        return try finish()
    }

    // MARK: - Registration

    private func waitForRegistrations() throws(CoordinatorError) {
        let needed = options.expectedClients ?? scenario.clients
        let deadline = ContinuousClock.now + options.registrationTimeout
        options.log("waiting for \(needed) clients to register")
        while clients.count < needed {
            if options.shouldStop() { throw .stopped }
            if ContinuousClock.now > deadline {
                throw .notEnoughClients(
                    registered: clients.count, needed: needed, waited: options.registrationTimeout)
            }
            try receiveAndHandle(timeout: .milliseconds(200))
        }
        options.log("\(clients.count) clients registered")
        try recorder.flushLedgerOrThrow()
    }

    private func handleRegistration(
        _ registration: Registration, from peer: PeerID, bytes: Int
    ) throws(CoordinatorError) {
        guard let tierIndex = scenario.tiers.firstIndex(where: { $0.name == registration.tierName })
        else {
            reject(
                "unknown_tier", peer: peer, bytes: bytes, message: "register",
                reply: ErrorReport(
                    code: .unexpected,
                    message:
                        "unknown tier '\(registration.tierName)'; this run has \(scenario.tiers.map(\.name).joined(separator: ", "))"
                ))
            return
        }
        let id = RoundLogic.clientID(
            for: registration, clients: clients, fleetSize: scenario.clients)
        if let previous = clients[id], previous.nonce != registration.instanceNonce {
            options.log("client \(id) re-registered from \(peer) (restarted)")
        }
        unresponsive.remove(id)
        cooldownUntil[id] = nil
        clients[id] = ClientRecord(
            id: id, peer: peer, tierIndex: tierIndex, sampleCount: Int(registration.sampleCount),
            nonce: registration.instanceNonce)
        recordLedger(client: Int(id), direction: .up, message: "register", bytes: bytes)
        do {
            try send(
                .registered(
                    RegistrationAccepted(
                        clientID: id, runID: runID, modelDescription: modelDescription)
                ), to: id)
        } catch .transport(let error) where error.isPeerFault {
            // The client vanished right after registering: it misses rounds until it returns.
            options.log("cannot answer client \(id)'s registration: \(error)")
            unresponsive.insert(id)
        }
    }

    // MARK: - Rounds

    private func runRound() throws(CoordinatorError) {
        let roundStart = ContinuousClock.now
        metrics = RoundMetrics(round: round)
        metrics.ranks = global.keptRanks
        metrics.learningRate = Double(scenario.learningRate(round: round))
        // With roundFailurePolicy retry, a round that misses minimumUpdates is run again with a
        // new selection (at most twice more); skip keeps the model, abort stops the run.
        var attempt = 0
        var contributions: [(contribution: ClientContribution, loss: Double)] = []
        var outcome = RoundLogic.Outcome.retry
        while outcome == .retry {
            contributions = try attemptRound(attempt: attempt)
            outcome = RoundLogic.outcome(
                updates: contributions.count, attempt: attempt,
                minimumUpdates: scenario.minimumUpdates, policy: scenario.roundFailurePolicy)
            if outcome == .retry {
                attempt += 1
                metrics.retries += 1
                options.log(
                    "round \(round): \(contributions.count) updates < minimumUpdates \(scenario.minimumUpdates); retrying with a new selection"
                )
            }
        }
        let participants = contributions.map(\.contribution)
        if !contributions.isEmpty {
            let samples = contributions.reduce(0.0) { $0 + Double($1.contribution.sampleCount) }
            metrics.trainingLoss =
                contributions.reduce(0.0) { $0 + $1.loss * Double($1.contribution.sampleCount) }
                / max(samples, 1)
        }
        switch outcome {
        case .aggregate:
            let delta = OrderedAggregation.pseudoGradient(
                global: global, contributions: participants,
                coverageDamping: scenario.training.coverageDamping)
            OrderedAggregation.apply(
                delta, to: &global.parameters, optimizer: scenario.serverOptimizer,
                state: &serverState)
            for id in participants.map(\.clientID) {
                participations[scenario.tiers[clients[UInt32(id)]!.tierIndex].name, default: 0] += 1
            }
        case .abort:
            throw .roundFailed(
                round: round, updates: participants.count, needed: scenario.minimumUpdates)
        case .keepModel, .retry:
            options.log(
                "round \(round): \(participants.count) updates < minimumUpdates \(scenario.minimumUpdates): model unchanged"
            )
        }
        if scenario.isLowRank && scenario.shrinking.isEnabled
            && round % scenario.shrinking.period == 0
            && round <= (scenario.shrinking.until ?? scenario.rounds)
        {
            shrink()
        }
        if round % scenario.evaluation.period == 0 || round == scenario.rounds {
            evaluate()
        }
        metrics.wallSeconds = (ContinuousClock.now - roundStart).seconds
        metrics.cumulativeBytes = totals.up + totals.down
        metrics.cumulativeDenseEquivalentBytes = totals.dense
        do {
            try recorder.finishRound(metrics)
            try recorder.write(checkpoint().encoded(), named: CoordinatorCheckpoint.fileName)
        } catch {
            throw .recording(error)
        }
        completedRound = round
        options.onRound(metrics)
    }

    /// Selects, plans (virtual clock, deadline), sends TRAIN and collects the updates of one
    /// attempt at the current round.
    private func attemptRound(
        attempt: Int
    ) throws(CoordinatorError) -> [(contribution: ClientContribution, loss: Double)] {
        let selected = selectClients(attempt: attempt)
        metrics.selected += selected.map(Int.init)
        let (planned, dropped) = RoundLogic.invitations(
            selected: selected, clients: clients, scenario: scenario, global: global, round: round)
        metrics.droppedDeadline += dropped.map(Int.init)

        var expected: [UInt32: [Int]] = [:]
        for plan in planned {
            let task = Self.task(
                for: global.slice(budgets: plan.budgets), scenario: scenario, round: round,
                client: plan.client)
            do {
                try send(.train(task), to: plan.client)
                expected[plan.client] = plan.budgets
            } catch {
                options.log("round \(round): cannot reach client \(plan.client): \(error)")
                metrics.droppedTimeout.append(Int(plan.client))
            }
        }
        let contributions = try collectUpdates(expected: expected)
        let participants = contributions.map(\.contribution)
        metrics.participants += participants.map(\.clientID)
        let times = planned.filter { plan in
            participants.contains { $0.clientID == Int(plan.client) }
        }.map(\.time)
        metrics.virtualSeconds = scenario.roundSeconds(
            participants: times, anyDropped: !metrics.droppedDeadline.isEmpty)
        totals.virtual += metrics.virtualSeconds
        metrics.virtualTime = totals.virtual
        return contributions
    }

    /// The round's selection (see `RoundLogic.selection`).
    func selectClients(attempt: Int = 0) -> [UInt32] {
        RoundLogic.selection(
            clients: clients,
            excluding: { id in
                self.unresponsive.contains(id) || (self.cooldownUntil[id] ?? 0) > self.round
            }, scenario: scenario, round: round, attempt: attempt)
    }

    private func collectUpdates(
        expected: [UInt32: [Int]]
    ) throws(CoordinatorError) -> [(contribution: ClientContribution, loss: Double)] {
        var pending = expected
        var received: [(contribution: ClientContribution, loss: Double)] = []
        let deadline = ContinuousClock.now + options.roundTimeout
        while !pending.isEmpty {
            if options.shouldStop() { throw .stopped }
            let now = ContinuousClock.now
            if now > deadline {
                options.log(
                    "round \(round): no update from \(pending.keys.sorted().map(String.init).joined(separator: ", ")) within \(options.roundTimeout); dropped"
                )
                metrics.droppedTimeout += pending.keys.sorted().map(Int.init)
                for id in pending.keys { cooldownUntil[id] = round + Self.timeoutCooldownRounds }
                break
            }
            for id in options.lostClients() {
                unresponsive.insert(id)
                if pending.removeValue(forKey: id) != nil {
                    options.log("round \(round): client \(id) is gone; dropped from the round")
                    metrics.droppedTimeout.append(Int(id))
                }
            }
            if let update = try receiveAndHandle(
                timeout: min(deadline - now, .milliseconds(200)), pending: &pending)
            {
                received.append(update)
            }
        }
        return received.sorted { $0.contribution.clientID < $1.contribution.clientID }
    }

    // MARK: - Frames

    /// Receives at most one frame and handles it; returns an accepted update, if it was one.
    @discardableResult
    private func receiveAndHandle(
        timeout: Duration, pending: inout [UInt32: [Int]]
    ) throws(CoordinatorError) -> (contribution: ClientContribution, loss: Double)? {
        let frame: ReceivedFrame?
        do {
            frame = try transport.receive(timeout: timeout)
        } catch {
            if error.isPeerFault {
                metrics.rejected["malformed_envelope", default: 0] += 1
                rejectedTotals["malformed_envelope", default: 0] += 1
                return nil
            }
            throw .transport(error)
        }
        guard let frame else { return nil }
        // Anything from a registered peer proves it is reachable again.
        if let id = clients.values.first(where: { $0.peer == frame.peer })?.id {
            cooldownUntil[id] = nil
        }
        let bytes = frame.bytes.count
        let envelope: Envelope
        do {
            envelope = try WireCodec.decode(frame.bytes, maximumSize: options.maximumMessageSize)
        } catch {
            reject(
                "malformed", peer: frame.peer, bytes: bytes, message: "garbage",
                reply: ErrorReport(code: .malformed, message: "\(error)"))
            return nil
        }
        switch envelope.message {
        case .register(let registration):
            try handleRegistration(registration, from: frame.peer, bytes: bytes)
        case .update(let update):
            return try handleUpdate(
                update, envelope: envelope, peer: frame.peer, bytes: bytes, pending: &pending)
        case .heartbeat:
            recordLedger(
                client: clientID(of: frame.peer), direction: .up, message: "heartbeat", bytes: bytes
            )
        case .error(let report):
            recordLedger(
                client: clientID(of: frame.peer), direction: .up, message: "error", bytes: bytes)
            options.log("client \(envelope.sender) (\(frame.peer)) reported: \(report.message)")
        case .evaluation:
            recordLedger(
                client: clientID(of: frame.peer), direction: .up, message: "evaluation",
                bytes: bytes)
        case .registered, .train, .evaluate, .shutdown:
            reject(
                "wrong_type", peer: frame.peer, bytes: bytes,
                message: envelope.message.type.description,
                reply: ErrorReport(
                    code: .unexpected, message: "a client may not send \(envelope.message.type)"))
        }
        return nil
    }

    private func receiveAndHandle(timeout: Duration) throws(CoordinatorError) {
        var none: [UInt32: [Int]] = [:]
        try receiveAndHandle(timeout: timeout, pending: &none)
    }

    private func handleUpdate(
        _ update: TrainingUpdate, envelope: Envelope, peer: PeerID, bytes: Int,
        pending: inout [UInt32: [Int]]
    ) throws(CoordinatorError) -> (contribution: ClientContribution, loss: Double)? {
        let id = envelope.sender
        guard let client = clients[id], client.peer == peer else {
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
        guard let budgets = pending[id] else {
            reject(
                "not_selected_or_duplicate", peer: peer, bytes: bytes, message: "update",
                reply: ErrorReport(
                    code: .unexpected,
                    message: "no update expected from client \(id) in round \(round)"))
            return nil
        }
        if let problem = RoundLogic.problem(with: update, budgets: budgets, global: global) {
            // The client answered, wrongly: it leaves the round (no waiting for the timeout).
            pending[id] = nil
            metrics.droppedInvalid.append(Int(id))
            reject(
                problem.reason, peer: peer, bytes: bytes, message: "update",
                reply: ErrorReport(code: .shapeMismatch, message: problem.message))
            return nil
        }
        pending[id] = nil
        metrics.clientComputeSeconds += Double(update.computeSeconds)
        computeTotal += Double(update.computeSeconds)
        recordLedger(client: Int(id), direction: .up, message: "update", bytes: bytes)
        countDenseEquivalent(denseMessageBytes.update, client: Int(id))
        let samples = min(Int(update.sampleCount), client.sampleCount)
        let slice = ModelSlice(budgets: budgets, factors: update.factors, shared: update.shared)
        return (
            ClientContribution(clientID: Int(id), sampleCount: max(samples, 1), slice: slice),
            Double(update.trainingLoss)
        )
    }

    private func reject(
        _ reason: String, peer: PeerID, bytes: Int, message: String, reply: ErrorReport?
    ) {
        metrics.rejected[reason, default: 0] += 1
        rejectedTotals[reason, default: 0] += 1
        recordLedger(client: clientID(of: peer), direction: .up, message: message, bytes: bytes)
        options.log(
            "rejected \(message) from \(peer): \(reason)\(reply.map { " (\($0.message))" } ?? "")")
        if let reply {
            let frame = WireCodec.encode(.error(reply), round: UInt32(round), sender: 0)
            if (try? transport.send(frame, to: peer)) != nil {
                recordLedger(
                    client: clientID(of: peer), direction: .down, message: "error",
                    bytes: frame.count)
            }
        }
    }

    private func clientID(of peer: PeerID) -> Int {
        clients.values.first { $0.peer == peer }.map { Int($0.id) } ?? -1
    }

    private func send(_ message: Message, to id: UInt32) throws(CoordinatorError) {
        guard let client = clients[id] else { return }
        let frame = WireCodec.encode(message, round: UInt32(round), sender: 0)
        do {
            try transport.send(frame, to: client.peer)
        } catch {
            throw .transport(error)
        }
        recordLedger(
            client: Int(id), direction: .down, message: message.type.description, bytes: frame.count
        )
        if case .train = message { countDenseEquivalent(denseMessageBytes.train, client: Int(id)) }
    }

    private func recordLedger(
        client: Int, direction: LedgerEntry.Direction, message: String, bytes: Int
    ) {
        let tier =
            client >= 0
            ? clients[UInt32(client)].map { scenario.tiers[$0.tierIndex].name } ?? "-" : "-"
        recorder.record(
            LedgerEntry(
                round: round, client: client, tier: tier, direction: direction, message: message,
                bytes: bytes))
        switch direction {
        case .up:
            metrics.bytesUp += bytes
            totals.up += bytes
        case .down:
            metrics.bytesDown += bytes
            totals.down += bytes
        }
        tierBytes(client: client) { entry in
            if direction == .up { entry.up += bytes } else { entry.down += bytes }
        }
        // Control messages cost the same under dense FedAvg: they count at their size.
        if message != "train" && message != "update" { countDenseEquivalent(bytes, client: client) }
    }

    /// Adds what dense FedAvg would have moved for this message.
    private func countDenseEquivalent(_ bytes: Int, client: Int) {
        metrics.denseEquivalentBytes += bytes
        totals.dense += bytes
        tierBytes(client: client) { $0.denseEquivalent += bytes }
    }

    private func tierBytes(client: Int, _ update: (inout RoundMetrics.TierBytes) -> Void) {
        let tier =
            client >= 0
            ? clients[UInt32(client)].map { scenario.tiers[$0.tierIndex].name } ?? "-" : "-"
        update(&metrics.bytesByTier[tier, default: RoundMetrics.TierBytes()])
        update(&tierTotals[tier, default: RoundMetrics.TierBytes()])
    }

    // MARK: - Model

    /// The TRAIN task for a slice (the seed makes local training reproducible).
    static func task(
        for slice: ModelSlice, scenario: Scenario, round: Int, client: UInt32
    ) -> TrainingTask {
        let sampler = scenario.samplerOnWire
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
            selfDistillation: scenario.training.selfDistillation)
    }

    /// Server-side progressive shrinking (see `RoundLogic.shrink`).
    private func shrink() {
        for cut in RoundLogic.shrink(&global, serverState: &serverState, scenario: scenario) {
            options.log(
                "round \(round): shrank layer \(cut.layer) from \(cut.from) to \(cut.to) components"
            )
        }
    }

    /// Accuracy and loss of the global model at every tier's budget on the held-out set.
    private func evaluate() {
        var accuracy: [String: Double] = [:]
        var loss: [String: Double] = [:]
        let rankSets = scenario.tiers.indices.map { index in
            scenario.isLowRank ? budgets(tierIndex: index) : global.keptRanks
        }
        let results = global.evaluate(on: evaluationSet, rankSets: rankSets)
        for (tier, result) in zip(scenario.tiers, results) {
            accuracy[tier.name] = result.accuracy
            loss[tier.name] = result.loss
        }
        metrics.accuracyByTier = accuracy
        metrics.lossByTier = loss
        lastAccuracy = accuracy
    }

    // MARK: - End

    /// The state after the current round, for `--resume`.
    func checkpoint() -> CoordinatorCheckpoint {
        let statistics = transport.statistics
        let header = CoordinatorCheckpoint.Header(
            round: round, architecture: global.architecture, keptRanks: global.keptRanks,
            bytesUp: totals.up, bytesDown: totals.down, denseEquivalentBytes: totals.dense,
            virtualSeconds: totals.virtual,
            wallSeconds: earlier.wall + (ContinuousClock.now - started).seconds,
            clientComputeSeconds: computeTotal,
            transportBytesSent: earlier.sent + Int(statistics.bytesSent),
            transportBytesReceived: earlier.received + Int(statistics.bytesReceived),
            tierBytes: tierTotals,
            participations: participations, rejected: rejectedTotals, lateUpdates: lateTotal,
            lastAccuracy: lastAccuracy)
        return CoordinatorCheckpoint(
            header: header, parameters: global.parameters, serverState: serverState)
    }

    private func shutdownClients(reason: String) throws(CoordinatorError) {
        for id in clients.keys.sorted() {
            try? send(.shutdown(Shutdown(reason: reason)), to: id)
        }
        do {
            try recorder.flushLedger()
        } catch {
            throw .recording(error)
        }
    }

    /// Tells every client to stop (used when the run is interrupted).
    ///
    /// These frames belong to the unfinished next round: on `--resume` they are dropped from
    /// the ledger together with that round, as the checkpoint's totals do not count them.
    public func abandon(reason: String) {
        if round == completedRound { round += 1 }
        try? shutdownClients(reason: reason)
    }

    private func finish() throws(CoordinatorError) -> RunSummary {
        let metadata = [
            "dataset": scenario.dataset.name, "dataDirectory": scenario.dataDirectory,
            "model": scenario.modelKind.rawValue,
            "variant": scenario.isLowRank ? "lod" : "dense", "seed": "\(scenario.seed)",
            "scenario": scenario.name,
            "rounds": "\(scenario.rounds)",
        ]
        do {
            try recorder.write(
                ModelFile.encode(global, metadata: metadata), named: RunRecorder.finalModelFile)
        } catch {
            throw .recording(error)
        }
        let counts = scenario.clientsPerTier
        let tiers = scenario.tiers.enumerated().map { index, tier in
            let ranks = scenario.isLowRank ? budgets(tierIndex: index) : []
            let bytes = tierTotals[tier.name] ?? RoundMetrics.TierBytes()
            return RunSummary.TierSummary(
                tier: tier.name, rankFraction: tier.rankFraction, clients: counts[index],
                participations: participations[tier.name] ?? 0, bytes: bytes.up + bytes.down,
                denseEquivalentBytes: bytes.denseEquivalent, accuracy: lastAccuracy[tier.name],
                ranks: ranks,
                parameters: global.parameterCount(ranks: scenario.isLowRank ? ranks : []))
        }
        let statistics = transport.statistics
        let moved = Double(totals.up + totals.down)
        let savings: Double = totals.dense > 0 ? 1 - moved / Double(totals.dense) : 0
        let summary = RunSummary(
            scenario: scenario.name, strategy: scenario.model.strategy.rawValue, rounds: round,
            seed: scenario.seed,
            finalAccuracyByTier: lastAccuracy, bytesUp: totals.up, bytesDown: totals.down,
            denseEquivalentBytes: totals.dense,
            savingsRatio: savings,
            wallSeconds: earlier.wall + (ContinuousClock.now - started).seconds,
            virtualSeconds: totals.virtual,
            finalRanks: global.keptRanks, tiers: tiers, rejectedMessages: rejectedTotals,
            lateUpdates: lateTotal, clientComputeSeconds: computeTotal,
            transportBytesSent: earlier.sent + Int(statistics.bytesSent),
            transportBytesReceived: earlier.received + Int(statistics.bytesReceived),
            modelFile: RunRecorder.finalModelFile)
        do {
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
