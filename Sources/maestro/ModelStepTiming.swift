import LowRank
import Tensors

/// Training-step timing of the larger presets, for `maestro bench`: `cnn` on Fashion-MNIST's
/// 28×28×1, `resnet20` and `resnet18` on CIFAR's 32×32×3 (the shapes their papers train on),
/// 10 classes, dense and LoD at rank fractions 1/8, 1/4, 1/2 and 1 (a LoD model at fraction
/// p is the exported prefix a tier-p client trains; every linear map factored).
///
/// The bench calls `steps(batch:isSelected:time:)` with its own step timer (one thread,
/// median of repeated forward + backward + update steps), and appends the results to its
/// training-step table.
enum ModelStepTiming {
    static let models: [(ModelKind, [Int])] = [
        (.cnn, [28, 28, 1]), (.resnet20, [32, 32, 3]), (.resnet18, [32, 32, 3]),
    ]
    static let fractions = [0.125, 0.25, 0.5, 1.0]

    /// Model, variant, rank fraction and input shape of every case, dense first.
    static var cases: [(model: ModelKind, variant: String, fraction: Double, input: [Int])] {
        models.flatMap { model, input in
            [(model, "dense", 1.0, input)] + fractions.map { (model, "lod", $0, input) }
        }
    }

    /// The network a case times.
    static func network(
        _ model: ModelKind, variant: String, fraction: Double, input: [Int],
        generator: inout SeededGenerator
    ) -> Network {
        let architecture = Architecture.make(
            model, lowRank: variant == "lod", inputShape: input, classCount: 10)
        let full = Network(architecture: architecture, using: &generator)
        return fraction < 1 ? full.exported(ranks: full.ranks(atFraction: fraction)) : full
    }

    /// Times every selected case with `time` (seconds per training step of a network).
    static func steps(
        batch: Int, isSelected: (ModelKind, String, Double) -> Bool = { _, _, _ in true },
        generator: inout SeededGenerator, time: (Network, inout SeededGenerator) -> Double
    ) -> [BenchResults.Step] {
        cases.filter { isSelected($0.model, $0.variant, $0.fraction) }.map { c in
            let network = Self.network(
                c.model, variant: c.variant, fraction: c.fraction, input: c.input,
                generator: &generator)
            let seconds = time(network, &generator)
            let flops = network.trainingStepFLOPs(batch: batch)
            return BenchResults.Step(
                model: c.model.rawValue, variant: c.variant,
                rankFraction: c.variant == "dense" ? nil : c.fraction, batch: batch,
                seconds: seconds, gflops: flops / seconds / 1e9, ranks: network.keptRanks,
                parameters: network.parameterCount(ranks: network.keptRanks))
        }
    }
}

extension BenchSuite {
    /// The larger presets' training steps (``ModelStepTiming``) that `cases` selects, appended
    /// to the training-step table, timed like the suite's own cases.
    func measureModelSteps(
        _ cases: BenchCaseOptions, into results: inout BenchResults,
        generator: inout SeededGenerator
    ) {
        results.trainingSteps += ModelStepTiming.steps(
            batch: batchSize,
            isSelected: { cases.isSelected(model: $0, variant: $1, fraction: $2) },
            generator: &generator
        ) { network, generator in stepTime(network, generator: &generator) }
    }
}
