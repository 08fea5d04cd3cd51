import LowRank
import Tensors
import Testing

/// How far one SGD step on a LoD layer's factors moves the product `U Vᵀ`, against the step a
/// dense layer with the same weight takes on the same batch.
@Suite("Factor step size: balanced factors step 2σ̄ times as far as a dense layer")
struct FactorStepTests {
    /// A He-initialised 64 → 64 LoD layer (SVD-factored), ReLU, and a dense 64 → 10 output.
    static func lowRankNetwork(seed: UInt64) -> Network {
        var generator = SeededGenerator(seed: seed)
        let architecture = Architecture(
            name: "t", inputShape: [64], classCount: 10,
            layers: [
                .lowRankDense(inputs: 64, outputs: 64, maxRank: 64), .relu,
                .dense(inputs: 64, outputs: 10),
            ])
        return Network(architecture: architecture, using: &generator)
    }

    /// `W = U Vᵀ` of the first layer, `[outputs, inputs]` (the factors are stored transposed).
    static func product(_ network: Network) -> Tensor {
        let (up, down) = (network.parameters[0], network.parameters[1])
        let (rank, outputs, inputs) = (up.shape[0], up.shape[1], down.shape[1])
        var weight = Tensor(zeros: [outputs, inputs])
        for o in 0..<outputs {
            for i in 0..<inputs {
                var sum: Float = 0
                for k in 0..<rank { sum += up[k, o] * down[k, i] }
                weight[o, i] = sum
            }
        }
        return weight
    }

    /// The dense network computing the same function.
    static func denseTwin(of network: Network) -> Network {
        let architecture = Architecture(
            name: "t", inputShape: [64], classCount: 10,
            layers: [.dense(inputs: 64, outputs: 64), .relu, .dense(inputs: 64, outputs: 10)])
        let p = network.parameters
        return Network(
            architecture: architecture, parameters: [product(network), p[2], p[3], p[4]],
            keptRanks: [])
    }

    static func norm(_ t: Tensor) -> Float {
        t.scalars.reduce(0) { $0 + $1 * $1 }.squareRoot()
    }

    /// `‖ΔW‖` of the first layer after one plain SGD step (no momentum, decay or sampling).
    static func firstLayerStep(_ network: Network, normalized: Bool) -> Float {
        var configuration = TrainingConfiguration()
        configuration.sampler = .unsampled
        configuration.momentum = 0
        configuration.weightDecay = 0
        configuration.normalizesFactorSteps = normalized
        var generator = SeededGenerator(seed: 7)
        let x = Tensor.randomNormal(shape: [32 * 64], using: &generator).scalars
        let y = (0..<32).map { _ in Int32(generator.next() % 10) }
        var trainer = Trainer(
            network: network, configuration: configuration, generator: SeededGenerator(seed: 8))
        let before = network.keptRanks.isEmpty ? network.parameters[0] : product(network)
        trainer.step(features: x, labels: y, learningRate: 1e-3)
        let after =
            network.keptRanks.isEmpty ? trainer.network.parameters[0] : product(trainer.network)
        var difference = after
        for i in difference.scalars.indices { difference.scalars[i] -= before.scalars[i] }
        return norm(difference)
    }

    @Test("The step scale is 1 / (2·mean singular value) of the initial weight")
    func scaleIsHalfTheInverseMeanSingularValue() throws {
        let network = Self.lowRankNetwork(seed: 1)
        let svd = try singularValueDecomposition(Self.product(network))
        let mean = svd.singularValues.reduce(0, +) / Float(svd.singularValues.count)
        let scales = Trainer.factorStepScales(of: network)
        #expect(scales.map(\.tensor) == [0, 1])
        for (_, scale) in scales {
            #expect(abs(scale * 2 * mean - 1) < 1e-3, "scale \(scale), mean σ \(mean)")
        }
    }

    @Test("Unnormalised, U Vᵀ moves 2.6 times as far as the dense weight; normalised, about as far")
    func normalizedFactorsStepLikeTheDenseLayer() {
        for seed: UInt64 in [1, 2, 3] {
            let network = Self.lowRankNetwork(seed: seed)
            let dense = Self.firstLayerStep(Self.denseTwin(of: network), normalized: false)
            let raw = Self.firstLayerStep(network, normalized: false)
            let normalized = Self.firstLayerStep(network, normalized: true)
            #expect(dense > 0)
            #expect(raw / dense > 2.2, "seed \(seed): unnormalised \(raw / dense)× the dense step")
            #expect(
                (0.8...1.25).contains(normalized / dense),
                "seed \(seed): normalised \(normalized / dense)× the dense step")
        }
    }

    /// The change of the first layer's factors (`Uᵀ` then `Vᵀ`) in one plain SGD step with
    /// group lasso `λ`, in the compression phase.
    static func factorStep(_ network: Network, lasso: Float, normalized: Bool) -> [Float] {
        var configuration = TrainingConfiguration()
        configuration.sampler = .unsampled
        configuration.momentum = 0
        configuration.weightDecay = 0
        configuration.groupLasso = lasso
        configuration.compressionPhase = 1
        configuration.normalizesFactorSteps = normalized
        var generator = SeededGenerator(seed: 7)
        let x = Tensor.randomNormal(shape: [32 * 64], using: &generator).scalars
        let y = (0..<32).map { _ in Int32(generator.next() % 10) }
        var trainer = Trainer(
            network: network, configuration: configuration, generator: SeededGenerator(seed: 8))
        trainer.step(features: x, labels: y, learningRate: 1e-2)
        return [0, 1].flatMap { tensor in
            zip(trainer.network.parameters[tensor].scalars, network.parameters[tensor].scalars)
                .map { $0 - $1 }
        }
    }

    @Test("Normalised or not, the group lasso moves the factors by −η·λ·∇HGL per step")
    func lassoPullIgnoresTheNormalisation() {
        let (rate, lasso): (Float, Float) = (1e-2, 0.05)
        for seed: UInt64 in [1, 2] {
            let network = Self.lowRankNetwork(seed: seed)
            // −η·λ·∇HGL of each factor, from the penalty's own gradient.
            var expected: [Float] = []
            for tensor in [0, 1] {
                var gradient = Tensor(zeros: network.parameters[tensor].shape)
                GroupLasso.addGradient(
                    of: network.parameters[tensor], kept: network.keptRanks[0], strength: lasso,
                    to: &gradient)
                expected += gradient.scalars.map { -rate * $0 }
            }
            let scale = Trainer.factorStepScales(of: network)[0].scale
            #expect(scale < 0.5, "seed \(seed): step scale \(scale)")
            for normalized in [false, true] {
                let with = Self.factorStep(network, lasso: lasso, normalized: normalized)
                let without = Self.factorStep(network, lasso: 0, normalized: normalized)
                let pull = zip(with, without).map { $0 - $1 }
                var (error, size): (Float, Float) = (0, 0)
                for (p, e) in zip(pull, expected) {
                    error += (p - e) * (p - e)
                    size += e * e
                }
                #expect(
                    error.squareRoot() < 1e-2 * size.squareRoot(),
                    "seed \(seed), normalised \(normalized): pull off by \(error.squareRoot())"
                )
            }
        }
    }
}
