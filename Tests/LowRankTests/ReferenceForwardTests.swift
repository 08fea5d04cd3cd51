import LowRank
import Tensors
import TestSupport
import Testing

/// The network's forward pass against plain loops on per-image (height, width, channel)
/// arrays: whatever layout the kernels use inside, a model computes what its weights mean
/// (convolution weights `[outputs, (ky, kx, c)]`, dense inputs in (h, w, c) order), so model
/// files and exported models keep their meaning.
@Suite("Forward pass against a plain-loop NHWC reference")
struct ReferenceForwardTests {
    /// One image through the layers, each by its definition.
    static func reference(_ network: Network, image: [Float]) -> [Float] {
        let architecture = network.architecture
        let offsets = architecture.parameterOffsets
        var shape = architecture.inputShape
        var x = image
        var lowRank = 0
        var saved: [(x: [Float], shape: [Int])] = []
        let stateOffsets = architecture.stateOffsets
        for (index, layer) in architecture.layers.enumerated() {
            let p = offsets[index]
            func weight(_ i: Int, _ j: Int, inputs: Int) -> Float {
                switch layer {
                case .lowRankDense(_, let outputs, _), .lowRankConvolution(_, let outputs, _):
                    // W = U_bᵀ V_b at the kept rank.
                    let (up, down) = (
                        network.parameters[p].scalars, network.parameters[p + 1].scalars
                    )
                    var sum: Float = 0
                    for r in 0..<network.keptRanks[lowRank] {
                        let u: Float = up[r * outputs + i]
                        sum += u * down[r * inputs + j]
                    }
                    return sum
                default: return network.parameters[p].scalars[i * inputs + j]
                }
            }
            let biasIndex = layer.isLowRank ? p + 2 : p + 1
            let bias = layer.parameterShapes.isEmpty ? [] : network.parameters[biasIndex].scalars
            switch layer {
            case .dense(let inputs, let outputs), .lowRankDense(let inputs, let outputs, _):
                x = (0..<outputs).map { i in
                    (0..<inputs).reduce(bias[i]) { $0 + weight(i, $1, inputs: inputs) * x[$1] }
                }
            case .convolution(let g, let outputs), .lowRankConvolution(let g, let outputs, _):
                var y: [Float] = []
                for oy in 0..<g.outputHeight {
                    for ox in 0..<g.outputWidth {
                        for o in 0..<outputs {
                            var sum = bias[o]
                            for ky in 0..<g.kernelSize {
                                for kx in 0..<g.kernelSize {
                                    let (iy, ix) = (
                                        oy * g.stride + ky - g.padding,
                                        ox * g.stride + kx - g.padding
                                    )
                                    guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else {
                                        continue
                                    }
                                    for c in 0..<g.channels {
                                        sum +=
                                            weight(
                                                o, (ky * g.kernelSize + kx) * g.channels + c,
                                                inputs: g.patchSize)
                                            * x[(iy * g.width + ix) * g.channels + c]
                                    }
                                }
                            }
                            y.append(sum)
                        }
                    }
                }
                x = y
            case .relu:
                x = x.map { max($0, 0) }
            case .maxPool(let h, let w, let c):
                var y: [Float] = []
                for oy in 0..<(h / 2) {
                    for ox in 0..<(w / 2) {
                        for ch in 0..<c {
                            y.append(
                                [(0, 0), (0, 1), (1, 0), (1, 1)].map {
                                    x[((2 * oy + $0.0) * w + 2 * ox + $0.1) * c + ch]
                                }.max()!)
                        }
                    }
                }
                x = y
            case .flatten:
                break
            case .batchNormalization(let c):
                // Evaluation: the running statistics.
                let (mean, variance) = (
                    network.state[stateOffsets[index]].scalars,
                    network.state[stateOffsets[index] + 1].scalars
                )
                x = x.indices.map { i in
                    let ch = i % c
                    let n = (x[i] - mean[ch]) / (variance[ch] + 1e-5).squareRoot()
                    return network.parameters[p].scalars[ch] * n
                        + network.parameters[p + 1].scalars[ch]
                }
            case .groupNormalization(let c, let groups):
                let perGroup = c / groups
                var y = x
                for g in 0..<groups {
                    let members = x.indices.filter { ($0 % c) / perGroup == g }
                    let mean = members.reduce(0.0) { $0 + Double(x[$1]) } / Double(members.count)
                    let variance =
                        members.reduce(0.0) { $0 + (Double(x[$1]) - mean) * (Double(x[$1]) - mean) }
                        / Double(members.count)
                    for i in members {
                        let n = Float((Double(x[i]) - mean) / (variance + 1e-5).squareRoot())
                        y[i] =
                            network.parameters[p].scalars[i % c] * n
                            + network.parameters[p + 1].scalars[i % c]
                    }
                }
                x = y
            case .averagePool(let h, let w, let c, let size):
                var y: [Float] = []
                for oy in 0..<(h / size) {
                    for ox in 0..<(w / size) {
                        for ch in 0..<c {
                            var total: Float = 0
                            for dy in 0..<size {
                                for dx in 0..<size {
                                    total += x[((oy * size + dy) * w + ox * size + dx) * c + ch]
                                }
                            }
                            y.append(total / Float(size * size))
                        }
                    }
                }
                x = y
            case .globalAveragePool(let h, let w, let c):
                x = (0..<c).map { ch in
                    (0..<(h * w)).reduce(Float(0)) { $0 + x[$1 * c + ch] } / Float(h * w)
                }
            case .residualStart:
                saved.append((x, shape))
            case .residualShortcut:
                let block = saved.removeLast()
                saved.append((x, shape))
                (x, shape) = block
                continue
            case .residualEnd:
                let body = saved.removeLast()
                x = zip(x, body.x).map { $0 + $1 }
            }
            if layer.isLowRank { lowRank += 1 }
            shape = layer.outputShape(inputShape: shape)
        }
        return x
    }

    @Test(
        "Multi-channel input, convolutions, pooling, flatten and dense layers, dense and LoD",
        arguments: [false, true])
    func matches(lowRank: Bool) {
        var generator = SeededGenerator(seed: 21)
        let g1 = ConvolutionGeometry(height: 7, width: 6, channels: 3, kernelSize: 3, padding: 1)
        let g2 = ConvolutionGeometry(height: 3, width: 3, channels: 5, kernelSize: 2, padding: 0)
        let layers: [LayerSpec] =
            lowRank
            ? [
                .lowRankConvolution(geometry: g1, outputs: 5, maxRank: 4), .relu,
                .maxPool(height: 7, width: 6, channels: 5),
                .lowRankConvolution(geometry: g2, outputs: 4, maxRank: 3), .flatten,
                .lowRankDense(inputs: 16, outputs: 3, maxRank: 3),
            ]
            : [
                .convolution(geometry: g1, outputs: 5), .relu,
                .maxPool(height: 7, width: 6, channels: 5),
                .convolution(geometry: g2, outputs: 4), .flatten, .dense(inputs: 16, outputs: 3),
            ]
        var network = Network(
            architecture: Architecture(
                name: "t", inputShape: [7, 6, 3], classCount: 3, layers: layers),
            using: &generator)
        if lowRank { network.keptRanks = [3, 2, 3] }
        let batch = 3
        let images = Tensor.randomNormal(shape: [batch * 7 * 6 * 3], using: &generator).scalars
        let logits = network.forward(images, batch: batch).logits
        for n in 0..<batch {
            let expected = Self.reference(
                network, image: Array(images[(n * 126)..<((n + 1) * 126)]))
            let got = Array(logits[(n * 3)..<((n + 1) * 3)])
            #expect(
                isClose(
                    Tensor(shape: [3], scalars: got), Tensor(shape: [3], scalars: expected),
                    tolerance: 1e-5), "image \(n): \(got) vs \(expected)")
        }
    }

    @Test(
        "Strided convolutions, normalisations, average pooling and both kinds of residual block",
        arguments: [false, true])
    func residual(lowRank: Bool) {
        var generator = SeededGenerator(seed: 22)
        let stem = ConvolutionGeometry(height: 7, width: 6, channels: 2, kernelSize: 3, padding: 1)
        let down = ConvolutionGeometry(
            height: 7, width: 6, channels: 4, kernelSize: 3, padding: 1, stride: 2)
        let body = ConvolutionGeometry(height: 4, width: 3, channels: 6, kernelSize: 3, padding: 1)
        let projection = ConvolutionGeometry(
            height: 7, width: 6, channels: 4, kernelSize: 1, padding: 0, stride: 2)
        func conv(_ g: ConvolutionGeometry, _ outputs: Int) -> LayerSpec {
            lowRank
                ? .lowRankConvolution(
                    geometry: g, outputs: outputs, maxRank: min(outputs, g.patchSize))
                : .convolution(geometry: g, outputs: outputs)
        }
        let layers: [LayerSpec] = [
            conv(stem, 4), .groupNormalization(channels: 4, groups: 2), .relu,
            .residualStart, conv(down, 6), .batchNormalization(channels: 6), .relu, conv(body, 6),
            .residualShortcut, conv(projection, 6), .residualEnd, .relu,
            .residualStart, conv(body, 6), .residualShortcut, .residualEnd,
            .averagePool(height: 4, width: 3, channels: 6, size: 2),
            .residualStart, .batchNormalization(channels: 6), .residualShortcut, .residualEnd,
            .globalAveragePool(height: 2, width: 1, channels: 6), .dense(inputs: 6, outputs: 3),
        ]
        var network = Network(
            architecture: Architecture(
                name: "t", inputShape: [7, 6, 2], classCount: 3, layers: layers),
            using: &generator)
        #expect(network.architecture.inconsistency == nil)
        // Scales, shifts and running statistics away from the identity.
        for (index, shape) in network.architecture.parameterShapes.enumerated()
        where shape.count == 1 {
            network.parameters[index] = Tensor.randomUniform(
                shape: shape, in: 0.5...1.5, using: &generator)
        }
        for index in network.state.indices {
            network.state[index] = Tensor.randomUniform(
                shape: network.state[index].shape, in: 0.2...1.2, using: &generator)
        }
        let batch = 3
        let size = 7 * 6 * 2
        let images = Tensor.randomNormal(shape: [batch * size], using: &generator).scalars
        let logits = network.forward(images, batch: batch, batchStatistics: false).logits
        for n in 0..<batch {
            let expected = Self.reference(
                network, image: Array(images[(n * size)..<((n + 1) * size)]))
            let got = Array(logits[(n * 3)..<((n + 1) * 3)])
            #expect(
                isClose(
                    Tensor(shape: [3], scalars: got), Tensor(shape: [3], scalars: expected),
                    tolerance: 1e-4), "image \(n): \(got) vs \(expected)")
        }
        // Evaluating in batches (which may cut the network) gives the same predictions.
        let samples = TrainingSamples(
            features: images, labels: [0, 1, 2], featureCount: size)
        let ranks = network.keptRanks.map { max(1, $0 / 2) }
        let swept = network.evaluate(
            on: samples, rankSets: [network.keptRanks, ranks], batchSize: 2)
        let alone = network.evaluate(on: samples, ranks: ranks, batchSize: 2)
        #expect(swept[1].loss == alone.loss)
    }
}
