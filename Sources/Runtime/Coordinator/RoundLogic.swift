import Federation
import Fleet
import LowRank
import Tensors
import Vocabulary

/// The pure decisions of a round under one scenario, apart from the coordinator's sockets,
/// clock and files: which clients are selected and invited, how the server's model grows and
/// shrinks, and what a round that missed its minimum does next. Unit-tested without a
/// transport. (Checks of one update are `UpdateCheck`; what tiers deploy is `Deployment`.)
struct RoundLogic {
    /// Attempts a `retry` round gets beyond the first.
    static let maximumRetries = 2

    let scenario: Scenario

    /// One invited client: its virtual round time, the per-layer budgets it trains and the
    /// TRAIN task it is sent (built once, for both the time of its download and the send).
    struct Invitation: Equatable {
        let client: UInt32
        let time: ClientRoundTime
        let budgets: [Int]
        let task: TrainingTask
    }

    /// The clients invited to attempt `attempt` of round `round`.
    ///
    /// Each registered client, in ID order, is online with its tier's availability (one
    /// seeded draw per client, so the stream does not depend on who is `excluded`); excluded
    /// clients are then left out, and `⌈clientsPerRound · overSelection⌉` of the rest are
    /// drawn uniformly. Depends only on the seed, the round, the attempt and the fleet.
    ///
    /// - Complexity: one generator step per registered client (its availability draw, in a
    ///   loop with no allocation but the online list), then O(selected): the draw of `target`
    ///   clients is the first `target` steps of a Fisher–Yates shuffle of the online list.
    func selection(
        clients: ClientTable, excluding excluded: (UInt32) -> Bool, round: Int, attempt: Int
    ) -> [UInt32] {
        var generator = SeededGenerator.derived(
            seed: scenario.seed,
            stream: RandomStream.selection &+ UInt64(round) &+ UInt64(attempt) << 32)
        let availability = scenario.tiers.map(\.availability)
        var online: [UInt32] = []
        online.reserveCapacity(clients.count)
        clients.forEach { client in
            if generator.nextUnitInterval() < availability[client.tierIndex], !excluded(client.id) {
                online.append(client.id)
            }
        }
        let target = min(
            online.count,
            Int((Double(scenario.clientsPerRound) * scenario.overSelection).rounded(.up)))
        return online.drawingPrefix(target, using: &generator).sorted()
    }

    /// Server-side progressive shrinking: each LoD layer large enough to matter (as in
    /// central training) keeps the components whose suffix norm passes the scenario's
    /// relative threshold; the cut components are masked and their optimiser state reset.
    /// Returns the layers cut, with their kept ranks before and after.
    func shrink(
        _ global: inout Network, serverState: inout ServerOptimizerState
    ) -> [(layer: Int, from: Int, to: Int)] {
        var cuts: [(layer: Int, from: Int, to: Int)] = []
        let layout = ParameterLayout(global.architecture)
        for (l, layerIndex) in global.architecture.lowRankLayerIndices.enumerated() {
            guard let (outputs, inputs) = global.architecture.layers[layerIndex].matrixShape,
                outputs * inputs >= TrainingConfiguration().shrinkMinimumEntries
            else { continue }
            let (up, down) = layout.factorIndices[l]
            let kept = global.keptRanks[l]
            let newRank = GroupLasso.keptRank(
                up: global.parameters[up], down: global.parameters[down], kept: kept,
                threshold: scenario.shrinking.threshold, relative: true)
            guard newRank < kept else { continue }
            global.mask(lowRankLayer: l, toRank: newRank)
            serverState.resetRows(ofTensor: up, from: newRank)
            serverState.resetRows(ofTensor: down, from: newRank)
            cuts.append((l, kept, newRank))
        }
        return cuts
    }

    /// Per-layer budgets at rank fraction `fraction` (a tier's, in a round: see
    /// `Scenario.rankFraction(of:round:)`) of the global model's kept ranks: `⌈p · r_l⌉`,
    /// none for the dense baseline.
    static func budgets(fraction: Double, keptRanks: [Int], lowRank: Bool) -> [Int] {
        lowRank ? keptRanks.map { RankBudget.rank(fraction: fraction, of: $0) } : []
    }

    /// Per-layer budgets of tier `tierIndex` at `keptRanks` in round `round` (capped while
    /// budgets grow; round 1 before the first round).
    func budgets(tierIndex: Int, keptRanks: [Int], round: Int) -> [Int] {
        Self.budgets(
            fraction: scenario.rankFraction(of: scenario.tiers[tierIndex], round: max(round, 1)),
            keptRanks: keptRanks, lowRank: true)
    }

    /// Budget growth after round `round`: when the next round's cap is larger, the components
    /// it opens (between the two caps' ranks of each LoD layer) get a zero output factor and
    /// fresh server optimiser state, so the model computes the same function as before and
    /// the new components start learning from there. Returns the layers opened, with the
    /// ranges of components.
    func openGrownBudgets(
        _ global: inout Network, serverState: inout ServerOptimizerState, after round: Int
    ) -> [(layer: Int, components: Range<Int>)] {
        guard scenario.isLowRank, let growth = scenario.training.budgetGrowth else { return [] }
        let (now, next) = (growth.cap(atRound: round), growth.cap(atRound: round + 1))
        guard next > now else { return [] }
        let layout = ParameterLayout(global.architecture)
        var opened: [(layer: Int, components: Range<Int>)] = []
        for l in 0..<global.lowRankLayerCount {
            let kept = global.keptRanks[l]
            let from = RankBudget.rank(fraction: now, of: kept)
            let to = RankBudget.rank(fraction: next, of: kept)
            guard to > from else { continue }
            global.zeroOutputFactor(lowRankLayer: l, rows: from..<to)
            let (up, down) = layout.factorIndices[l]
            serverState.resetRows(ofTensor: up, from: from)
            serverState.resetRows(ofTensor: down, from: from)
            opened.append((l, from..<to))
        }
        return opened
    }

    /// Plans the selected clients' round on the virtual clock.
    ///
    /// Each client's time is the FLOPs of its local training at its budget over its tier's
    /// GFLOP/s plus both transfers of its slice. Clients that would miss the deadline are
    /// dropped before anything is sent (FedAvg semantics); of the rest, the first
    /// `clientsPerRound` to finish are invited (over-selection), ties broken by client ID.
    func invitations(
        selected: [UInt32], clients: ClientTable, global: Network, round: Int
    ) -> (invited: [Invitation], dropped: [UInt32]) {
        var planned: [Invitation] = []
        var dropped: [UInt32] = []
        // Width slices, one per tier (the same for all of a tier's clients in a round).
        var widthSlices: [Int: (slice: ModelSlice, stepFLOPs: Double)] = [:]
        for id in selected {
            guard let client = clients[id] else { continue }
            let tier = scenario.tiers[client.tierIndex]
            let fraction = scenario.rankFraction(of: tier, round: round)
            let budgets = Self.budgets(
                fraction: fraction, keptRanks: global.keptRanks, lowRank: scenario.isLowRank)
            if scenario.model.strategy.isWidthSliced, widthSlices[client.tierIndex] == nil {
                widthSlices[client.tierIndex] = widthSlice(
                    tierIndex: client.tierIndex, round: round, global: global)
            }
            let width = widthSlices[client.tierIndex]
            let slice = width?.slice ?? global.slice(budgets: budgets)
            var task = CoordinatorMachine.task(
                for: slice, scenario: scenario, round: round, client: id, tierFraction: fraction,
                freezeConvolutions: scenario.isLowRank && tier.freezeConvolutions)
            if let fractions = widthDropoutFractions(tierIndex: client.tierIndex) {
                (task.sampler, task.samplerFractions, task.widthDropout) = (
                    .unsampled, fractions, true
                )
                task.distillation = scenario.training.widthDistillation.map {
                    TrainingTask.Distillation(
                        weight: Float($0.weight), temperature: Float($0.temperature))
                }
            }
            let frozen = scenario.frozenLayers(of: tier, architecture: global.architecture)
            let returned = frozen > 0 ? global.slice(budgets: budgets, frozenLayers: frozen) : slice
            let uploadBytes = WireCodec.encodedSize(
                of: .update(
                    TrainingUpdate(
                        factors: returned.factors, shared: returned.shared, sampleCount: 0,
                        trainingLoss: 0, computeSeconds: 0)))
            let batchSize = scenario.training.batchSize
            let steps =
                scenario.training.localEpochs * ((client.sampleCount + batchSize - 1) / batchSize)
            let flops =
                Double(steps)
                * (width?.stepFLOPs
                    ?? global.trainingStepFLOPs(
                        batch: batchSize, ranks: budgets.isEmpty ? nil : budgets,
                        frozenLayers: frozen))
            let time = ClientRoundTime(
                tier: tier, trainingFLOPs: flops,
                downloadBytes: WireCodec.encodedSize(of: .train(task)), uploadBytes: uploadBytes,
                gflops: client.capability(tier: tier))
            if scenario.meetsDeadline(time) {
                planned.append(Invitation(client: id, time: time, budgets: budgets, task: task))
            } else {
                dropped.append(id)
            }
        }
        planned.sort { ($0.time.totalSeconds, $0.client) < ($1.time.totalSeconds, $1.client) }
        let keep = min(planned.count, scenario.clientsPerRound)
        return (Array(planned.prefix(keep)), dropped + planned.dropFirst(keep).map(\.client))
    }

    /// What a round does after an attempt that collected `updates` updates.
    enum Outcome: Equatable {
        /// Enough updates: aggregate them.
        case aggregate
        /// Too few, policy `retry` with attempts left: select again.
        case retry
        /// Too few: the global model stays as it is (policy `skip`, or `retry` exhausted).
        case keepModel
        /// Too few, policy `abort`: the run stops with an error.
        case abort
    }

    /// The outcome of attempt `attempt` (0-based) of a round under the scenario's
    /// `minimumUpdates` and `roundFailurePolicy`.
    func outcome(updates: Int, attempt: Int) -> Outcome {
        Self.outcome(
            updates: updates, attempt: attempt, minimumUpdates: scenario.minimumUpdates,
            policy: scenario.roundFailurePolicy)
    }

    /// The outcome of attempt `attempt` (0-based) of a round.
    static func outcome(
        updates: Int, attempt: Int, minimumUpdates: Int, policy: Scenario.RoundFailurePolicy
    ) -> Outcome {
        if updates >= max(minimumUpdates, 1) { return .aggregate }
        switch policy {
        case .retry: return attempt < maximumRetries ? .retry : .keepModel
        case .skip: return .keepModel
        case .abort: return .abort
        }
    }
}
