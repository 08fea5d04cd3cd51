import LowRank
import Tensors
import TestSupport
import Testing

/// Loss `Σ logits ⊙ R` for a fixed random `R`, so ∂loss/∂logits = R.
private func projectionLoss(
    _ network: Network, input: [Float], batch: Int, ranks: [Int], projection: [Float]
) -> Double {
    let logits = network.forward(input, batch: batch, ranks: ranks).logits
    return zip(logits, projection).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
}

/// Checks every parameter gradient of `network` at `ranks` against central differences.
private func checkGradients(
    _ network: Network, ranks: [Int], batch: Int, seed: UInt64, step: Float = 1e-2
) {
    var generator = SeededGenerator(seed: seed)
    let inputCount = network.architecture.inputShape.reduce(1, *)
    let input = Tensor.randomNormal(shape: [batch * inputCount], using: &generator).scalars
    let outputCount = batch * network.architecture.activationShapes.last!.reduce(1, *)
    let projection = Tensor.randomNormal(shape: [outputCount], using: &generator).scalars
    let pass = network.forward(input, batch: batch, ranks: ranks)
    var gradients = network.parameters.map { Tensor(zeros: $0.shape) }
    network.backward(pass, outputGradient: projection, into: &gradients)
    for index in network.parameters.indices {
        let numeric = numericalGradient(at: network.parameters[index], step: step) { probe in
            var perturbed = network
            perturbed.parameters[index] = probe
            return projectionLoss(
                perturbed, input: input, batch: batch, ranks: ranks, projection: projection)
        }
        #expect(
            isClose(gradients[index], numeric, tolerance: Tolerance.gradient),
            "tensor \(index) \(network.parameters[index].shape) at ranks \(ranks): relative error \(relativeError(gradients[index], numeric))"
        )
    }
}

/// Checks each parameter gradient of `network` along one random direction: the central
/// difference of the loss along it against the gradient's dot product with it (two forward
/// passes per tensor, for layers too large to difference entry by entry).
private func checkDirectionalDerivatives(
    _ network: Network, ranks: [Int], batch: Int, seed: UInt64, step: Float = 1e-2
) {
    var generator = SeededGenerator(seed: seed)
    let inputCount = network.architecture.inputShape.reduce(1, *)
    let input = Tensor.randomNormal(shape: [batch * inputCount], using: &generator).scalars
    let outputCount = batch * network.architecture.classCount
    let projection = Tensor.randomNormal(shape: [outputCount], using: &generator).scalars
    let pass = network.forward(input, batch: batch, ranks: ranks)
    var gradients = network.parameters.map { Tensor(zeros: $0.shape) }
    network.backward(pass, outputGradient: projection, into: &gradients)
    for index in network.parameters.indices {
        let direction = Tensor.randomNormal(
            shape: network.parameters[index].shape, using: &generator)
        func loss(_ sign: Float) -> Double {
            var perturbed = network
            for i in direction.scalars.indices {
                perturbed.parameters[index].scalars[i] += sign * step * direction.scalars[i]
            }
            return projectionLoss(
                perturbed, input: input, batch: batch, ranks: ranks, projection: projection)
        }
        let numeric = (loss(1) - loss(-1)) / (2 * Double(step))
        let analytic = zip(gradients[index].scalars, direction.scalars).reduce(0.0) {
            $0 + Double($1.0) * Double($1.1)
        }
        #expect(
            abs(numeric - analytic) <= 2e-3 * max(1, abs(numeric)),
            "tensor \(index) \(network.parameters[index].shape): numeric \(numeric), analytic \(analytic)"
        )
    }
}

@Suite("Backward passes against central differences")
struct GradientCheckTests {
    @Test("Dense → ReLU → Dense")
    func dense() {
        var generator = SeededGenerator(seed: 1)
        let architecture = Architecture(
            name: "t", inputShape: [7], classCount: 3,
            layers: [
                .dense(inputs: 7, outputs: 5), .relu, .dense(inputs: 5, outputs: 3),
            ])
        let network = Network(architecture: architecture, using: &generator)
        checkGradients(network, ranks: [], batch: 4, seed: 2)
    }

    @Test(
        "LoDDense at every rank; components beyond the rank get zero gradient",
        arguments: [1, 3, 5])
    func lowRankDense(rank: Int) {
        var generator = SeededGenerator(seed: 3)
        let architecture = Architecture(
            name: "t", inputShape: [7], classCount: 3,
            layers: [
                .lowRankDense(inputs: 7, outputs: 5, maxRank: 5), .relu,
                .lowRankDense(inputs: 5, outputs: 3, maxRank: 3),
            ])
        let network = Network(architecture: architecture, using: &generator)
        checkGradients(network, ranks: [rank, min(rank, 3)], batch: 4, seed: 4)
    }

    @Test("Conv2D → ReLU → MaxPool → Flatten → Dense")
    func convolution() {
        checkGradients(smallConvolutionalNetwork(seed: 5), ranks: [], batch: 2, seed: 6, step: 1e-3)
    }

    @Test("LoDConv2D (k×k conv to b channels, then 1×1 conv) at every rank", arguments: [1, 2, 4])
    func lowRankConvolution(rank: Int) {
        var generator = SeededGenerator(seed: 7)
        let g = ConvolutionGeometry(height: 5, width: 5, channels: 2, kernelSize: 3, padding: 1)
        let g2 = ConvolutionGeometry(height: 5, width: 5, channels: 4, kernelSize: 3, padding: 0)
        let architecture = Architecture(
            name: "t", inputShape: [5, 5, 2], classCount: 3,
            layers: [
                .lowRankConvolution(geometry: g, outputs: 4, maxRank: 4), .relu,
                .lowRankConvolution(geometry: g2, outputs: 3, maxRank: 3), .flatten,
                .lowRankDense(inputs: 27, outputs: 3, maxRank: 3),
            ])
        let network = Network(architecture: architecture, using: &generator)
        checkGradients(
            network, ranks: [rank, min(rank, 3), min(rank, 3)], batch: 2, seed: 8, step: 1e-3)
    }

    @Test(
        "Convolutions with more filters than the direct kernel takes (im2col path), dense and LoD")
    func wideConvolution() {
        var generator = SeededGenerator(seed: 13)
        let g = ConvolutionGeometry(height: 5, width: 4, channels: 2, kernelSize: 3, padding: 1)
        let g2 = ConvolutionGeometry(height: 5, width: 4, channels: 8, kernelSize: 2, padding: 0)
        let architecture = Architecture(
            name: "t", inputShape: [5, 4, 2], classCount: 2,
            layers: [
                .convolution(geometry: g, outputs: 8), .relu,
                .lowRankConvolution(geometry: g2, outputs: 9, maxRank: 8), .flatten,
                .dense(inputs: 108, outputs: 2),
            ])
        let network = Network(architecture: architecture, using: &generator)
        checkGradients(network, ranks: [8], batch: 2, seed: 14, step: 1e-3)
    }

    @Test(
        "32 filters and more run in BLAS a chunk of images at a time: several chunks, dense and LoD"
    )
    func blasConvolution() {
        var generator = SeededGenerator(seed: 15)
        // 36 · 48 · 48 floats of patches per image: 3 images a chunk, so a batch of 4 takes
        // a chunk of 3 and one of 1. No ReLU: no kink for the differences to step over.
        let g = ConvolutionGeometry(height: 48, width: 48, channels: 4, kernelSize: 3, padding: 1)
        let g2 = ConvolutionGeometry(
            height: 48, width: 48, channels: 34, kernelSize: 3, padding: 1, stride: 2)
        let architecture = Architecture(
            name: "t", inputShape: [48, 48, 4], classCount: 2,
            layers: [
                .lowRankConvolution(geometry: g, outputs: 34, maxRank: 33),
                .convolution(geometry: g2, outputs: 32),
                .globalAveragePool(height: 24, width: 24, channels: 32),
                .dense(inputs: 32, outputs: 2),
            ])
        let network = Network(architecture: architecture, using: &generator)
        checkDirectionalDerivatives(network, ranks: [33], batch: 4, seed: 16)
    }

    @Test("A large patch matrix below the BLAS threshold is lowered in chunks too, LoD")
    func chunkedStreamingConvolution() {
        var generator = SeededGenerator(seed: 19)
        // 400 · 30 · 30 floats of patches per image, 24 images: 8.6 M floats, past the
        // threshold; 20 filters (rank 20: above the direct kernel's 16, below BLAS's 32) on
        // rows 30 wide run in the streaming kernels.
        let g1 = ConvolutionGeometry(height: 30, width: 30, channels: 1, kernelSize: 1, padding: 0)
        let g = ConvolutionGeometry(height: 30, width: 30, channels: 16, kernelSize: 5, padding: 2)
        let architecture = Architecture(
            name: "t", inputShape: [30, 30, 1], classCount: 2,
            layers: [
                .convolution(geometry: g1, outputs: 16),
                .lowRankConvolution(geometry: g, outputs: 24, maxRank: 24),
                .globalAveragePool(height: 30, width: 30, channels: 24),
                .dense(inputs: 24, outputs: 2),
            ])
        let network = Network(architecture: architecture, using: &generator)
        checkDirectionalDerivatives(network, ranks: [20], batch: 24, seed: 20)
    }

    @Test("Up to 16 filters run direct on output rows a whole number of vectors wide")
    func directConvolutionFullVectors() {
        var generator = SeededGenerator(seed: 17)
        let g = ConvolutionGeometry(height: 5, width: 16, channels: 3, kernelSize: 3, padding: 1)
        let g2 = ConvolutionGeometry(height: 5, width: 16, channels: 4, kernelSize: 3, padding: 1)
        let architecture = Architecture(
            name: "t", inputShape: [5, 16, 3], classCount: 2,
            layers: [
                .convolution(geometry: g, outputs: 4),
                .lowRankConvolution(geometry: g2, outputs: 14, maxRank: 14),
                .globalAveragePool(height: 5, width: 16, channels: 14),
                .dense(inputs: 14, outputs: 2),
            ])
        let network = Network(architecture: architecture, using: &generator)
        checkGradients(network, ranks: [12], batch: 2, seed: 18, step: 1e-3)
    }

    @Test("Up to 16 filters run direct on 5×5 kernels over 8 or more channels, any row width")
    func directConvolutionWideKernels() {
        var generator = SeededGenerator(seed: 21)
        // Rows of 14 (cnn's second convolution): one whole vector and a tail of 6.
        let g = ConvolutionGeometry(height: 4, width: 14, channels: 2, kernelSize: 3, padding: 1)
        let g2 = ConvolutionGeometry(height: 4, width: 14, channels: 9, kernelSize: 5, padding: 2)
        let architecture = Architecture(
            name: "t", inputShape: [4, 14, 2], classCount: 2,
            layers: [
                .convolution(geometry: g, outputs: 9),
                .lowRankConvolution(geometry: g2, outputs: 16, maxRank: 16),
                .globalAveragePool(height: 4, width: 14, channels: 16),
                .dense(inputs: 16, outputs: 2),
            ])
        let network = Network(architecture: architecture, using: &generator)
        for rank in [3, 8, 16] {
            checkGradients(network, ranks: [rank], batch: 2, seed: 22, step: 1e-3)
        }
    }

    @Test("Softmax cross-entropy gradient")
    func crossEntropy() {
        var generator = SeededGenerator(seed: 9)
        let logits = Tensor.randomNormal(shape: [3, 4], using: &generator)
        let labels: [Int32] = [0, 3, 1]
        let analytic = SoftmaxCrossEntropy.lossAndGradient(
            logits: logits.scalars, labels: labels, classCount: 4
        ).gradient
        let numeric = numericalGradient(at: logits, step: 1e-3) {
            SoftmaxCrossEntropy.lossAndGradient(logits: $0.scalars, labels: labels, classCount: 4)
                .loss
        }
        #expect(
            isClose(
                Tensor(shape: [3, 4], scalars: analytic), numeric, tolerance: Tolerance.gradient))
        let targets = SoftmaxCrossEntropy.softmax(
            Tensor.randomNormal(shape: [12], using: &generator).scalars, classCount: 4)
        let soft = SoftmaxCrossEntropy.lossAndGradient(
            logits: logits.scalars, targets: targets, classCount: 4
        ).gradient
        let softNumeric = numericalGradient(at: logits, step: 1e-3) {
            SoftmaxCrossEntropy.lossAndGradient(logits: $0.scalars, targets: targets, classCount: 4)
                .loss
        }
        #expect(
            isClose(
                Tensor(shape: [3, 4], scalars: soft), softNumeric, tolerance: Tolerance.gradient))
    }

    @Test("Hierarchical group lasso gradient, and no NaN at zero components", arguments: [2, 5])
    func groupLasso(kept: Int) {
        var generator = SeededGenerator(seed: 10)
        var factor = Tensor.randomNormal(shape: [5, 3], using: &generator)
        var analytic = Tensor(zeros: factor.shape)
        GroupLasso.addGradient(of: factor, kept: kept, strength: 1, to: &analytic)
        let numeric = numericalGradient(at: factor, step: 1e-3) {
            GroupLasso.penalty($0, kept: kept)
        }
        #expect(isClose(analytic, numeric, tolerance: Tolerance.gradient))
        for j in 0..<3 { factor[4, j] = 0 }
        var guarded = Tensor(zeros: factor.shape)
        GroupLasso.addGradient(of: factor, kept: 5, strength: 1, to: &guarded)
        #expect(guarded.scalars.allSatisfy { $0.isFinite })
    }
}
