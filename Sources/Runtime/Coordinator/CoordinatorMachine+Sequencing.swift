import Federation
import Fleet
import LowRank
import RunRecords
import Tensors

/// Sequencing: registration's end, rounds and their attempts, aggregation, the model's
/// growth, shrinking and averaging, and evaluation.
extension CoordinatorMachine {
    /// Moves the run on as far as the current state allows.
    mutating func progress() {
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
        case .collecting(var attempt):
            if attempt.pending.isEmpty {
                finishAttempt(attempt)
            } else if now > attempt.deadline {
                let silent = attempt.pending.keys.sorted()
                emit(
                    .log(
                        "round \(round): no update from \(silent.map(String.init).joined(separator: ", ")) within \(roundTimeout); dropped"
                    ))
                metrics.droppedTimeout += silent.map(Int.init)
                for id in silent { standing.timedOut(id, round: round) }
                attempt.pending = [:]
                finishAttempt(attempt)
            }
        case .awaitingClients(let deadline):
            if reachableClients >= scenario.minimumUpdates || now > deadline {
                startAttempt(number: 0, waited: true)
            }
        case .committing, .finished:
            break
        }
    }

    /// Registered clients that may be selected now.
    private var reachableClients: Int {
        var count = 0
        clients.forEach {
            if !standing.isExcluded($0.id, round: round, clients: clients) { count += 1 }
        }
        return count
    }

    /// Starts the next round, or ends the run after the last one.
    mutating func advance() {
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
        startAttempt(number: 0)
    }

    /// Selects, plans (virtual clock, deadline) and sends TRAIN for attempt `number`.
    ///
    /// When fewer clients are reachable than `minimumUpdates` (every device's link went down,
    /// say), the round first waits up to the round timeout for them to come back, instead of
    /// passing rounds nobody can train in.
    private mutating func startAttempt(number: Int, waited: Bool = false) {
        if !waited, number == 0, reachableClients < scenario.minimumUpdates {
            emit(
                .log(
                    "round \(round): \(reachableClients) clients reachable, minimumUpdates is \(scenario.minimumUpdates); waiting up to \(roundTimeout) for clients to come back"
                ))
            phase = .awaitingClients(deadline: now + roundTimeout)
            return
        }
        let (standing, clients, round) = (standing, clients, round)
        let selected = logic.selection(
            clients: clients,
            excluding: { standing.isExcluded($0, round: round, clients: clients) },
            round: round, attempt: number)
        metrics.selected += selected.map(Int.init)
        let (invited, dropped) = logic.invitations(
            selected: selected, clients: clients, global: global, round: round)
        metrics.droppedDeadline += dropped.map(Int.init)
        var attempt = RoundAttempt(number: number, invited: invited, deadline: now + roundTimeout)
        for invitation in invited where clients[invitation.client] != nil {
            attempt.pending[invitation.client] = invitation.budgets
        }
        trainedAt = [:]
        phase = .collecting(attempt)
        for invitation in invited {
            guard let client = clients[invitation.client] else { continue }
            send(.train(invitation.task), to: client, purpose: .train(invitation.client))
        }
        if attempt.pending.isEmpty { finishAttempt(attempt) }
    }

    /// The attempt's updates are in (or the rest timed out): retry, or finish the round.
    private mutating func finishAttempt(_ attempt: RoundAttempt) {
        let contributions = attempt.received.sorted {
            $0.contribution.clientID < $1.contribution.clientID
        }
        let participants = contributions.map(\.contribution)
        metrics.participants += participants.map(\.clientID)
        let times = attempt.invited.filter { plan in
            participants.contains { $0.clientID == Int(plan.client) }
        }.map(\.time)
        metrics.virtualSeconds = scenario.roundSeconds(
            participants: times, anyDropped: !metrics.droppedDeadline.isEmpty)
        totals.virtualSeconds += metrics.virtualSeconds
        metrics.virtualTime = totals.virtualSeconds
        // With roundFailurePolicy retry, a round that misses minimumUpdates is run again with a
        // new selection (at most twice more); skip keeps the model, abort stops the run.
        let outcome = logic.outcome(updates: contributions.count, attempt: attempt.number)
        if outcome == .retry {
            metrics.retries += 1
            emit(
                .log(
                    "round \(round): \(contributions.count) updates < minimumUpdates \(scenario.minimumUpdates); retrying with a new selection"
                ))
            startAttempt(number: attempt.number + 1)
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
            if let reason = Deployment.nonFiniteModel(global) {
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
            let reason = Deployment.nonFiniteEvaluation(
                accuracy: metrics.accuracyByTier, loss: metrics.lossByTier)
        {
            rollBack(to: before, reason: reason)
            aggregated = false
            finishModel()
        }
        if aggregated {
            for id in participants.map(\.clientID) {
                standing.contributors.insert(UInt32(id))
                let tier = scenario.tiers[clients[UInt32(id)]!.tierIndex].name
                totals.participations[tier, default: 0] += 1
            }
            logic.recordWidthCoverage(
                &totals.widthCoverage, architecture: global.architecture, round: round,
                tierIndices: participants.compactMap { clients[UInt32($0.clientID)]?.tierIndex })
        }
        metrics.wallSeconds = (now - roundStart).seconds
        metrics.cumulativeBytes = totals.bytesMoved
        metrics.cumulativeDenseEquivalentBytes = totals.denseEquivalentBytes
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
        let clients = clients
        let delta =
            scenario.model.strategy.isWidthSliced
            ? logic.widthPseudoGradient(
                global: global, contributions: participants, round: round, rule: rule,
                tierIndex: { clients[UInt32($0)]?.tierIndex })
            : OrderedAggregation.pseudoGradient(
                global: global, contributions: participants,
                coverageDamping: scenario.training.coverageDamping, rule: rule)
        let covered =
            scenario.training.rankAwareServer
            ? OrderedAggregation.coveredRows(global: global, contributions: participants)
            : nil
        OrderedAggregation.apply(
            delta, to: &global.parameters, optimizer: scenario.training.server,
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
        for opened in logic.openGrownBudgets(&global, serverState: &serverState, after: round) {
            averaged?.zeroOutputFactor(lowRankLayer: opened.layer, rows: opened.components)
            emit(
                .log(
                    "round \(round): budget growth opens components \(opened.components) of layer \(opened.layer)"
                ))
        }
        if scenario.isLowRank
            && scenario.shrinking.shrinks(atRound: round, lastRound: scenario.rounds)
        {
            for cut in logic.shrink(&global, serverState: &serverState) {
                averaged?.mask(lowRankLayer: cut.layer, toRank: cut.to)
                emit(
                    .log(
                        "round \(round): shrank layer \(cut.layer) from \(cut.from) to \(cut.to) components"
                    ))
            }
        }
        if scenario.evaluation.averageDecay > 0 {
            Deployment.average(
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
        // With batch normalisation, each tier's model with its own statistics.
        let calibrated = calibratedTierModels(of: model)
        let widthModels = calibrated == nil ? logic.deployedWidthModels(of: model) : nil
        let results =
            calibrated.map {
                BatchNormCalibration.evaluate($0, on: evaluationSet).map { ($0.accuracy, $0.loss) }
            }
            ?? widthModels.map {
                RoundLogic.evaluateRows($0, on: evaluationSet).map { ($0.accuracy, $0.loss) }
            }
            ?? model.evaluate(
                on: evaluationSet, rankSets: rankSets, threads: Self.evaluationThreads)
        var deployed = Array(tiers.indices)
        if let validationSet {
            let validation =
                calibrated.map { BatchNormCalibration.evaluate($0, on: validationSet) }
                ?? widthModels.map { RoundLogic.evaluateRows($0, on: validationSet) }
                ?? model.evaluateRows(
                    on: validationSet, rankSets: rankSets, threads: Self.evaluationThreads)
            metrics.validationAccuracyByTier = Dictionary(
                uniqueKeysWithValues: zip(tiers.map(\.name), validation.map(\.accuracy)))
            if scenario.evaluation.deploy == .bestValidated {
                let significance = scenario.evaluation.deploySignificance
                deployed =
                    significance > 0
                    ? Deployment.bestValidatedBudgets(
                        budgets: rankSets, validationCorrect: validation.map(\.correct),
                        significance: significance)
                    : Deployment.bestValidatedBudgets(
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

    /// The TRAIN task for a slice sent to a client of tier fraction `tierFraction` (the seed
    /// makes local training reproducible).
    static func task(
        for slice: ModelSlice, scenario: Scenario, round: Int, client: UInt32,
        tierFraction: Double = 1, freezeConvolutions: Bool = false
    ) -> TrainingTask {
        let sampler = scenario.training.sampler.onWire(tierFraction: tierFraction)
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
}
