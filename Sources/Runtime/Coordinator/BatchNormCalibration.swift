import Federation
import Fleet
import LowRank
import Tensors

/// Batch normalisation in the fleet: one set of running statistics per tier budget.
///
/// Clients train in batch-statistics mode and send parameters only (the wire has no place
/// for statistics). Before it evaluates or deploys a tier's model, the coordinator recomputes
/// every batch-norm layer's statistics on that model, at the tier's ranks (for a width
/// strategy, on the tier's slice: HeteroFL's static statistics, computed after training),
/// over its held-out calibration images: the `evaluation.validationSamples` training images
/// no client holds, all of them, in order, in batches of `batchSize`. The statistics are
/// then a function of the parameters and the data alone, so an evaluation is as
/// deterministic as the parameters are.
struct BatchNormCalibration {
    /// The coordinator's held-out training images (`nil`: none, and nothing is calibrated).
    let samples: TrainingSamples?

    /// The batch size calibration runs the images in (it only pools sums, so the statistics
    /// do not depend on it beyond rounding).
    static let batchSize = 128

    /// Whether `model` keeps batch-norm statistics and there are images to recompute them on.
    func applies(to model: Network) -> Bool { !model.state.isEmpty && samples != nil }

    /// `model` with its statistics recomputed at its kept ranks (or full width), or `model`
    /// itself when calibration does not apply.
    func calibrated(_ model: Network) -> Network {
        guard applies(to: model), let samples else { return model }
        return model.recalibrated(on: samples, batchSize: Self.batchSize)
    }

    /// Each model calibrated; equal models are calibrated once.
    func calibrated(_ models: [Network]) -> [Network] {
        var known: [(Network, Network)] = []
        return models.map { model in
            if let done = known.first(where: { $0.0 == model }) { return done.1 }
            let result = calibrated(model)
            known.append((model, result))
            return result
        }
    }

    /// `model` with LoD layer `l` cut (`Network.mask`) to `ranks[l]` components.
    static func cut(_ model: Network, toRanks ranks: [Int]) -> Network {
        var cut = model
        for (l, rank) in ranks.enumerated() where rank < cut.keptRanks[l] {
            cut.mask(lowRankLayer: l, toRank: rank)
        }
        return cut
    }

    /// Accuracy, loss and per-sample results of each model on `samples`, each at its own kept
    /// ranks; a model several tiers share is evaluated once.
    static func evaluate(
        _ models: [Network], on samples: TrainingSamples
    ) -> [(accuracy: Double, loss: Double, correct: [Bool])] {
        var known: [(Network, (accuracy: Double, loss: Double, correct: [Bool]))] = []
        return models.map { model in
            if let done = known.first(where: { $0.0 == model }) { return done.1 }
            let result = model.evaluateRows(on: samples, rankSets: [model.keptRanks])[0]
            known.append((model, result))
            return result
        }
    }
}

extension CoordinatorMachine {
    var calibration: BatchNormCalibration { BatchNormCalibration(samples: validationSet) }

    /// Each tier's deployed model with its own statistics, or `nil` when calibration does not
    /// apply (no batch normalisation, or no held-out images: then models evaluate with the
    /// state they have).
    ///
    /// A rank tier's model is `model` with every LoD layer cut to the tier's budget; a width
    /// tier's is its prefix slice (`RoundLogic.deployedWidthModels`).
    func calibratedTierModels(of model: Network) -> [Network]? {
        guard calibration.applies(to: model) else { return nil }
        let tiers =
            logic.deployedWidthModels(of: model)
            ?? scenario.tiers.indices.map { index in
                scenario.isLowRank
                    ? BatchNormCalibration.cut(model, toRanks: budgets(tierIndex: index)) : model
            }
        return calibration.calibrated(tiers)
    }

    /// Each tier's deployed model file, `final-TIER.maestro`, with batch normalisation.
    ///
    /// The tier's model (cut to its budget or slice) with its own statistics; `nil` otherwise: every tier deploys a cut of the final model file, which carries no
    /// statistics.
    func tierModelFiles() -> [(name: String, bytes: [UInt8])]? {
        guard let models = calibratedTierModels(of: deployedModel) else { return nil }
        return zip(scenario.tiers, models).map { tier, model in
            var metadata = modelMetadata
            metadata["tier"] = tier.name
            return ("final-\(tier.name).maestro", ModelFile.encode(model, metadata: metadata))
        }
    }
}
