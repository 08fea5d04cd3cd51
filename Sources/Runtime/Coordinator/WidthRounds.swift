import Federation
import Fleet
import LowRank
import Tensors
import Vocabulary

/// The coordinator's side of the width strategies (`heteroFL`, `fjord`, `fedRolex`,
/// `smallModel`): which slice each tier is sent, how updates are summed back, and what each
/// tier deploys. The global model stays the full dense model; both ends derive a slice's
/// sub-architecture (the coordinator from scenario, tier and round, the client from the
/// shapes it receives), so TRAIN and UPDATE carry it as ordinary dense tensors.
extension RoundLogic {
    /// The slice a client of tier `tierIndex` trains in round `round`, or `nil` when the
    /// strategy does not slice widths.
    func widthPlan(tierIndex: Int, round: Int, architecture: Architecture) -> WidthPlan? {
        guard let spaces = scenario.channelSpaces(of: architecture) else { return nil }
        return scenario.widthPlan(spaces, tier: scenario.tiers[tierIndex], round: round)
    }

    /// What a client of tier `tierIndex` is sent in round `round` under a width strategy: the
    /// slice (dense tensors of the sub-architecture) and one training step's FLOPs per batch.
    func widthSlice(
        tierIndex: Int, round: Int, global: Network
    ) -> (slice: ModelSlice, stepFLOPs: Double)? {
        guard
            let plan = widthPlan(
                tierIndex: tierIndex, round: round, architecture: global.architecture)
        else { return nil }
        let sub = plan.gather(global)
        return (
            ModelSlice(budgets: [], factors: [], shared: sub.parameters),
            sub.trainingStepFLOPs(batch: scenario.training.batchSize)
        )
    }

    /// The widths TRAIN carries under `fjord` with its own sampler byte (`widthDropout`): the
    /// tiers' fractions up to the client's (fractions of the full model); `nil` for every
    /// other strategy.
    func widthDropoutFractions(tierIndex: Int) -> [Float]? {
        let fractions = scenario.orderedDropoutFractions(of: scenario.tiers[tierIndex])
        return fractions.isEmpty ? nil : fractions.map(Float.init)
    }

    /// The pseudo-gradient of a round's width slices: every weight averaged, weighted by
    /// sample count, over the clients (in client-ID order) whose slice held it; 0 for a weight
    /// no client held. Under a robust `rule`, each weight is instead the median or trimmed
    /// mean of the same clients' values (`WidthRobustAggregation`). `tierIndex` gives each
    /// contribution's tier.
    func widthPseudoGradient(
        global: Network, contributions: [ClientContribution], round: Int,
        rule: AggregationRule = .mean, tierIndex: (Int) -> Int?
    ) -> [Tensor] {
        var plans: [Int: WidthPlan] = [:]
        var slices: [WidthRobustAggregation.Slice] = []
        for contribution in contributions.sorted(by: { $0.clientID < $1.clientID }) {
            guard let tier = tierIndex(contribution.clientID) else { continue }
            if plans[tier] == nil {
                plans[tier] = widthPlan(
                    tierIndex: tier, round: round, architecture: global.architecture)
            }
            guard let plan = plans[tier] else { continue }
            slices.append(
                WidthRobustAggregation.Slice(
                    tensors: contribution.slice.shared, plan: plan,
                    weight: Double(contribution.sampleCount)))
        }
        guard rule == .mean else {
            return WidthRobustAggregation.pseudoGradient(
                global: global.parameters, slices: slices, rule: rule)
        }
        var aggregation = WidthAggregation(parameterShapes: global.architecture.parameterShapes)
        for slice in slices {
            aggregation.add(slice.tensors, plan: slice.plan, weight: slice.weight)
        }
        return aggregation.pseudoGradient(global: global.parameters)
    }

    /// Records in `coverage` the slices of an aggregated round `round` whose updates came from
    /// clients of tiers `tierIndices` (nothing when the strategy does not slice widths).
    func recordWidthCoverage(
        _ coverage: inout WidthCoverage?, architecture: Architecture, round: Int,
        tierIndices: [Int]
    ) {
        guard let spaces = scenario.channelSpaces(of: architecture) else { return }
        let kept = Set(tierIndices).sorted().map { tier in
            scenario.widthPlan(spaces, tier: scenario.tiers[tier], round: round).kept
        }
        var updated = coverage ?? WidthCoverage(spaces: spaces)
        updated.record(round: kept)
        coverage = updated
    }

    /// Each tier's deployed sub-model of `model` (the prefix at its width fraction), or `nil`
    /// when the strategy does not slice widths.
    func deployedWidthModels(of model: Network) -> [Network]? {
        guard let spaces = scenario.channelSpaces(of: model.architecture) else { return nil }
        var byFraction: [Double: Network] = [:]
        return scenario.tiers.map { tier in
            let fraction = scenario.widthFraction(of: tier)
            if let known = byFraction[fraction] { return known }
            let sub = scenario.deployedWidthPlan(spaces, tier: tier).gather(model)
            byFraction[fraction] = sub
            return sub
        }
    }

    /// Accuracy and loss (and per-sample results) of each tier's deployed width model on
    /// `samples`; a fraction shared by several tiers is evaluated once.
    static func evaluateRows(
        _ models: [Network], on samples: TrainingSamples
    ) -> [(accuracy: Double, loss: Double, correct: [Bool])] {
        var known: [(Architecture, (accuracy: Double, loss: Double, correct: [Bool]))] = []
        return models.map { model in
            if let result = known.first(where: { $0.0 == model.architecture }) { return result.1 }
            let result = model.evaluateRows(on: samples, rankSets: [[]])[0]
            known.append((model.architecture, result))
            return result
        }
    }
}
