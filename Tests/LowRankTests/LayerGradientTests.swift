import Foundation
import LowRank
import Tensors
import TestSupport
import Testing

/// Loss `Σ logits ⊙ R` for a fixed random `R`, so ∂loss/∂logits = R.
private func projectionLoss(
    _ network: Network, input: [Float], batch: Int, ranks: [Int], projection: [Float],
    batchStatistics: Bool
) -> Double {
    let logits = network.forward(
        input, batch: batch, ranks: ranks, batchStatistics: batchStatistics
    ).logits
    return zip(logits, projection).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
}

/// Checks every parameter gradient against central differences, in training (batch
/// statistics) or evaluation mode.
private func checkGradients(
    _ network: Network, ranks: [Int], batch: Int, seed: UInt64, step: Float = 1e-3,
    batchStatistics: Bool = true
) {
    var generator = SeededGenerator(seed: seed)
    let inputCount = network.architecture.inputShape.reduce(1, *)
    let input = Tensor.randomNormal(shape: [batch * inputCount], using: &generator).scalars
    let outputCount = batch * network.architecture.classCount
    let projection = Tensor.randomNormal(shape: [outputCount], using: &generator).scalars
    let pass = network.forward(input, batch: batch, ranks: ranks, batchStatistics: batchStatistics)
    var gradients = network.parameters.map { Tensor(zeros: $0.shape) }
    network.backward(pass, outputGradient: projection, into: &gradients)
    for index in network.parameters.indices {
        let numeric = numericalGradient(at: network.parameters[index], step: step) { probe in
            var perturbed = network
            perturbed.parameters[index] = probe
            return projectionLoss(
                perturbed, input: input, batch: batch, ranks: ranks, projection: projection,
                batchStatistics: batchStatistics)
        }
        // A bias right before a batch normalisation has no effect, so its gradient is 0:
        // both sides within float noise of 0 agree.
        let noise: Float = 1e-3
        let bothZero =
            gradients[index].scalars.allSatisfy { abs($0) < noise }
            && numeric.scalars.allSatisfy { abs($0) < noise }
        #expect(
            bothZero || isClose(gradients[index], numeric, tolerance: Tolerance.gradient),
            "tensor \(index) \(network.parameters[index].shape) at ranks \(ranks): relative error \(relativeError(gradients[index], numeric))"
        )
    }
}

/// A convolution, LoD (at full rank `min(outputs, patch)`) or dense.
private func convolution(_ g: ConvolutionGeometry, _ outputs: Int, lowRank: Bool) -> LayerSpec {
    lowRank
        ? .lowRankConvolution(geometry: g, outputs: outputs, maxRank: min(outputs, g.patchSize))
        : .convolution(geometry: g, outputs: outputs)
}

/// A network with scales and shifts drawn away from the identity (so that their gradients
/// are not special) and running statistics away from (0, 1).
private func network(_ layers: [LayerSpec], input: [Int], classes: Int, seed: UInt64) -> Network {
    var generator = SeededGenerator(seed: seed)
    var network = Network(
        architecture: Architecture(
            name: "t", inputShape: input, classCount: classes, layers: layers),
        using: &generator)
    precondition(
        network.architecture.inconsistency == nil, "\(network.architecture.inconsistency!)")
    for (index, layer) in network.architecture.layers.enumerated() {
        switch layer {
        case .batchNormalization, .groupNormalization:
            let p = network.architecture.parameterOffsets[index]
            for i in p..<(p + 2) {
                network.parameters[i] = Tensor.randomUniform(
                    shape: network.parameters[i].shape, in: 0.5...1.5, using: &generator)
            }
        default: break
        }
    }
    for i in network.state.indices {
        network.state[i] = Tensor.randomUniform(
            shape: network.state[i].shape, in: 0.5...1.5, using: &generator)
    }
    return network
}

@Suite("Backward passes of strides, normalisations, pooling and residual blocks")
struct LayerGradientTests {
    @Test("Strided, padded convolution, dense and LoD at several ranks", arguments: [0, 1, 3, 6])
    func stride(rank: Int) {
        let g = ConvolutionGeometry(
            height: 7, width: 6, channels: 2, kernelSize: 3, padding: 1, stride: 2)
        let g2 = ConvolutionGeometry(
            height: 4, width: 3, channels: 6, kernelSize: 2, padding: 1, stride: 2)
        let lowRank = rank > 0
        let net = network(
            [
                convolution(g, 6, lowRank: lowRank), .relu, convolution(g2, 4, lowRank: lowRank),
                .flatten, .dense(inputs: 3 * 2 * 4, outputs: 3),
            ], input: [7, 6, 2], classes: 3, seed: 31)
        #expect(g.outputHeight == 4 && g.outputWidth == 3)
        let ranks = lowRank ? [rank, min(rank, 4)] : []
        checkGradients(net, ranks: ranks, batch: 2, seed: 32)
    }

    @Test(
        "Batch normalisation with the batch's statistics and with the running ones",
        arguments: [true, false])
    func batchNormalization(batchStatistics: Bool) {
        let g = ConvolutionGeometry(height: 5, width: 4, channels: 2, kernelSize: 3, padding: 1)
        let net = network(
            [
                .convolution(geometry: g, outputs: 3), .batchNormalization(channels: 3), .relu,
                .flatten, .dense(inputs: 60, outputs: 3),
            ], input: [5, 4, 2], classes: 3, seed: 33)
        checkGradients(net, ranks: [], batch: 3, seed: 34, batchStatistics: batchStatistics)
    }

    @Test("Group normalisation, LoD convolution before it", arguments: [1, 2, 4])
    func groupNormalization(groups: Int) {
        let g = ConvolutionGeometry(height: 4, width: 4, channels: 2, kernelSize: 3, padding: 1)
        let net = network(
            [
                .lowRankConvolution(geometry: g, outputs: 4, maxRank: 4),
                .groupNormalization(channels: 4, groups: groups), .relu, .flatten,
                .dense(inputs: 64, outputs: 2),
            ], input: [4, 4, 2], classes: 2, seed: 35)
        checkGradients(net, ranks: [3], batch: 2, seed: 36)
    }

    @Test("Average pooling (with an odd edge dropped) and global average pooling")
    func pooling() {
        let g = ConvolutionGeometry(height: 5, width: 6, channels: 1, kernelSize: 3, padding: 1)
        let net = network(
            [
                .convolution(geometry: g, outputs: 3),
                .averagePool(height: 5, width: 6, channels: 3, size: 2), .relu,
                .globalAveragePool(height: 2, width: 3, channels: 3),
                .dense(inputs: 3, outputs: 2),
            ], input: [5, 6, 1], classes: 2, seed: 37)
        checkGradients(net, ranks: [], batch: 2, seed: 38)
    }

    @Test(
        "Residual blocks: identity and projection (1×1, stride 2) shortcuts, dense and LoD",
        arguments: [0, 1, 2, 8])
    func residual(rank: Int) {
        let lowRank = rank > 0
        let stem = ConvolutionGeometry(height: 6, width: 5, channels: 2, kernelSize: 3, padding: 1)
        let body = ConvolutionGeometry(height: 6, width: 5, channels: 4, kernelSize: 3, padding: 1)
        let down = ConvolutionGeometry(
            height: 6, width: 5, channels: 4, kernelSize: 3, padding: 1, stride: 2)
        let second = ConvolutionGeometry(
            height: 3, width: 3, channels: 8, kernelSize: 3, padding: 1)
        let projection = ConvolutionGeometry(
            height: 6, width: 5, channels: 4, kernelSize: 1, padding: 0, stride: 2)
        // A batch norm right after a LoD convolution at rank 1 or 2 makes each output
        // channel's scale irrelevant, so those factors' gradients are float noise: the low
        // ranks are checked with group norm there instead.
        let exact = rank == 0 || rank == 8
        func normalization(_ c: Int) -> LayerSpec {
            exact ? .batchNormalization(channels: c) : .groupNormalization(channels: c, groups: 1)
        }
        let net = network(
            [
                convolution(stem, 4, lowRank: lowRank), normalization(4), .relu,
                // Identity shortcut.
                .residualStart, convolution(body, 4, lowRank: lowRank),
                .groupNormalization(channels: 4, groups: 2), .relu,
                convolution(body, 4, lowRank: lowRank), .residualShortcut, .residualEnd, .relu,
                // Projection shortcut: stride 2, 4 → 8 channels.
                .residualStart, convolution(down, 8, lowRank: lowRank),
                normalization(8), .relu, convolution(second, 8, lowRank: lowRank),
                .residualShortcut, convolution(projection, 8, lowRank: lowRank),
                normalization(8), .residualEnd, .relu,
                .globalAveragePool(height: 3, width: 3, channels: 8),
                .dense(inputs: 8, outputs: 3),
            ], input: [6, 5, 2], classes: 3, seed: 39)
        let ranks = net.keptRanks.map { min($0, rank) }
        checkGradients(net, ranks: ranks, batch: 2, seed: 40)
    }

    @Test("Batch statistics by hand: means, variances, output and the running update")
    func batchStatisticsByHand() {
        // Two channels, batch 2, 1×2 images: channel 0 sees 1, 3, 5, 7 and channel 1 sees
        // 2, 2, 2, 2 (per image NHWC: [c0, c1] per position).
        let architecture = Architecture(
            name: "t", inputShape: [1, 2, 2], classCount: 4,
            layers: [.batchNormalization(channels: 2), .flatten])
        var net = Network(
            architecture: architecture,
            parameters: [
                Tensor(shape: [2], scalars: [2, 1]), Tensor(shape: [2], scalars: [0.5, -1]),
            ], keptRanks: [])
        let input: [Float] = [1, 2, 3, 2, 5, 2, 7, 2]
        let pass = net.forward(input, batch: 2)
        // Channel 0: mean 4, variance (9 + 1 + 1 + 9) / 4 = 5; channel 1: mean 2, variance 0.
        #expect(pass.statistics[0] == [4, 2, 5, 0])
        let d = (5 + LayerSpec.normalizationEpsilon).squareRoot()
        let e = LayerSpec.normalizationEpsilon.squareRoot()
        let expected: [Float] = [
            2 * (1 - 4) / d + 0.5, 1 * 0 / e - 1, 2 * (3 - 4) / d + 0.5, -1,
            2 * (5 - 4) / d + 0.5, -1, 2 * (7 - 4) / d + 0.5, -1,
        ]
        #expect(
            isClose(
                Tensor(shape: [8], scalars: pass.logits), Tensor(shape: [8], scalars: expected),
                tolerance: 1e-6))
        // Running: 0.9 · (0, 1) + 0.1 · (mean, unbiased variance 5 · 4/3).
        net.updateRunningStatistics(from: pass)
        #expect(abs(net.state[0].scalars[0] - 0.4) < 1e-6)
        #expect(abs(net.state[0].scalars[1] - 0.2) < 1e-6)
        #expect(abs(net.state[1].scalars[0] - (0.9 + 0.1 * 20 / 3)) < 1e-6)
        #expect(abs(net.state[1].scalars[1] - 0.9) < 1e-6)
        // Evaluation uses the running statistics.
        let evaluated = net.forward(input, batch: 2, batchStatistics: false).logits
        let mean = net.state[0].scalars[0]
        let deviation = (net.state[1].scalars[0] + LayerSpec.normalizationEpsilon).squareRoot()
        #expect(abs(evaluated[0] - (2 * (1 - mean) / deviation + 0.5)) < 1e-5)
        // Recalibrated over the same four positions: mean 4, unbiased variance 20/3.
        let samples = TrainingSamples(features: input, labels: [0, 1], featureCount: 4)
        let recalibrated = net.recalibrated(on: samples, batchSize: 1)
        #expect(abs(recalibrated.state[0].scalars[0] - 4) < 1e-5)
        #expect(abs(recalibrated.state[1].scalars[0] - 20 / 3) < 1e-4)
        #expect(recalibrated.state[1].scalars[1] == 0)
        #expect(recalibrated.parameters == net.parameters)
    }
}

@Suite("Residual models: determinism and model files")
struct ResidualModelTests {
    static func smallResidualNetwork(seed: UInt64) -> Network {
        let stem = ConvolutionGeometry(height: 6, width: 6, channels: 1, kernelSize: 3, padding: 1)
        let down = ConvolutionGeometry(
            height: 6, width: 6, channels: 4, kernelSize: 3, padding: 1, stride: 2)
        let body = ConvolutionGeometry(height: 3, width: 3, channels: 6, kernelSize: 3, padding: 1)
        let projection = ConvolutionGeometry(
            height: 6, width: 6, channels: 4, kernelSize: 1, padding: 0, stride: 2)
        var generator = SeededGenerator(seed: seed)
        return Network(
            architecture: Architecture(
                name: "t", inputShape: [6, 6, 1], classCount: 3,
                layers: [
                    .lowRankConvolution(geometry: stem, outputs: 4, maxRank: 4),
                    .batchNormalization(channels: 4), .relu,
                    .residualStart, .lowRankConvolution(geometry: down, outputs: 6, maxRank: 6),
                    .groupNormalization(channels: 6, groups: 3), .relu,
                    .convolution(geometry: body, outputs: 6), .residualShortcut,
                    .convolution(geometry: projection, outputs: 6),
                    .batchNormalization(channels: 6), .residualEnd, .relu,
                    .averagePool(height: 3, width: 3, channels: 6, size: 1),
                    .maxPool(height: 3, width: 3, channels: 6),
                    .globalAveragePool(height: 1, width: 1, channels: 6), .flatten,
                    .dense(inputs: 6, outputs: 6), .relu,
                    .lowRankDense(inputs: 6, outputs: 3, maxRank: 3),
                ]),
            using: &generator)
    }

    static func trained(seed: UInt64) -> Network {
        var generator = SeededGenerator(seed: 99)
        let samples = TrainingSamples(
            features: Tensor.randomNormal(shape: [40 * 36], using: &generator).scalars,
            labels: (0..<40).map { Int32($0 % 3) }, featureCount: 36)
        var configuration = TrainingConfiguration()
        configuration.epochs = 2
        configuration.batchSize = 8
        var trainer = Trainer(
            network: smallResidualNetwork(seed: seed), configuration: configuration,
            generator: SeededGenerator(seed: seed))
        for _ in 0..<2 { _ = trainer.trainEpoch(on: samples) }
        return trainer.network
    }

    @Test("Same seed, same bytes; the running statistics move with training")
    func determinism() {
        let a = ModelFile.encode(Self.trained(seed: 5))
        let b = ModelFile.encode(Self.trained(seed: 5))
        #expect(a == b)
        let c = ModelFile.encode(Self.trained(seed: 6))
        #expect(a != c)
        let network = Self.trained(seed: 5)
        #expect(network.state != network.architecture.initialState)
    }

    @Test("A pass that writes into a previous pass's buffers gives the same bits")
    func reusedBuffers() {
        let network = Self.trained(seed: 8)
        var generator = SeededGenerator(seed: 12)
        let (first, second) = (
            Tensor.randomNormal(shape: [4 * 36], using: &generator).scalars,
            Tensor.randomNormal(shape: [4 * 36], using: &generator).scalars
        )
        let fresh = network.forward(second, batch: 4)
        for ranks in [network.keptRanks, network.keptRanks.map { max(1, $0 / 2) }] {
            var previous: ForwardPass? = network.forward(first, batch: 4, ranks: ranks)
            let reused = network.forward(second, batch: 4, reusing: &previous)
            #expect(previous == nil)
            #expect(reused.activations == fresh.activations, "previous ranks \(ranks)")
            #expect(reused.statistics == fresh.statistics)
            var (a, b) = (
                network.parameters.map { Tensor(zeros: $0.shape) },
                network.parameters.map { Tensor(zeros: $0.shape) }
            )
            let dy = [Float](repeating: 0.25, count: fresh.logits.count)
            network.backward(fresh, outputGradient: dy, into: &a)
            network.backward(reused, outputGradient: dy, into: &b)
            #expect(a == b)
        }
    }

    @Test("A model file round-trips every layer type, state included")
    func modelFileRoundTrip() throws {
        let network = Self.trained(seed: 7)
        let bytes = ModelFile.encode(network, metadata: ["k": "v"])
        let (decoded, metadata) = try ModelFile.decode(bytes)
        #expect(decoded == network)
        #expect(metadata == ["k": "v"])
        #expect(ModelFile.encode(decoded, metadata: ["k": "v"]) == bytes)
        // Every kind of layer is in the file.
        let kinds = Set(decoded.architecture.layers.map(\.kindName))
        #expect(kinds.count == 14)
        // A corrupted variance is refused.
        var file = network
        file.state[1].scalars[0] = -1
        #expect(throws: ModelFile.Error.self) { try ModelFile.decode(ModelFile.encode(file)) }
    }

    @Test("Stride 1 is left out of the encoded geometry; stride 2 is kept")
    func strideEncoding() throws {
        let plain = ConvolutionGeometry(height: 5, width: 5, channels: 1, kernelSize: 3, padding: 1)
        let text = String(decoding: try JSONEncoder().encode(plain), as: UTF8.self)
        #expect(!text.contains("stride"))
        var strided = plain
        strided.stride = 2
        let back = try JSONDecoder().decode(
            ConvolutionGeometry.self, from: JSONEncoder().encode(strided))
        #expect(back == strided && back.outputHeight == 3)
    }

    @Test("Unbalanced residual blocks and mismatched sums are refused, naming the layer")
    func inconsistentBlocks() {
        let g = ConvolutionGeometry(height: 4, width: 4, channels: 1, kernelSize: 3, padding: 1)
        func problem(_ layers: [LayerSpec]) -> String? {
            Architecture(name: "t", inputShape: [4, 4, 1], classCount: 16, layers: layers)
                .inconsistency
        }
        #expect(problem([.residualStart, .residualEnd, .flatten])?.contains("layer 1") == true)
        #expect(problem([.residualShortcut, .flatten])?.contains("layer 0") == true)
        #expect(problem([.residualStart, .flatten])?.contains("never closed") == true)
        #expect(
            problem([
                .residualStart, .convolution(geometry: g, outputs: 2), .residualShortcut,
                .residualEnd, .flatten,
            ])?.contains("layer 3") == true)
        #expect(
            problem([.groupNormalization(channels: 1, groups: 2), .flatten])?.contains("groups")
                == true)
        #expect(problem([.residualStart, .residualShortcut, .residualEnd, .flatten]) == nil)
    }
}
