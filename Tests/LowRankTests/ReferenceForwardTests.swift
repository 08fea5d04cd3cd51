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
                                    let (iy, ix) = (oy + ky - g.padding, ox + kx - g.padding)
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
}
