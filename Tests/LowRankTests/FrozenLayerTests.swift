import LowRank
import Tensors
import TestSupport
import Testing

/// conv (6×6×2 → 3 channels) → ReLU → pool → conv (3×3×3 → 4) → flatten → dense 4 → 2.
func smallConvolutionalNetwork(seed: UInt64) -> Network {
    var generator = SeededGenerator(seed: seed)
    let g = ConvolutionGeometry(height: 6, width: 6, channels: 2, kernelSize: 3, padding: 1)
    let g2 = ConvolutionGeometry(height: 3, width: 3, channels: 3, kernelSize: 3, padding: 0)
    let architecture = Architecture(
        name: "t", inputShape: [6, 6, 2], classCount: 2,
        layers: [
            .convolution(geometry: g, outputs: 3), .relu,
            .maxPool(height: 6, width: 6, channels: 3),
            .convolution(geometry: g2, outputs: 4), .flatten, .dense(inputs: 4, outputs: 2),
        ])
    return Network(architecture: architecture, using: &generator)
}

@Suite("Frozen convolutions: forward only, no gradient, no step")
struct FrozenLayerTests {
    @Test("The layers through the last convolution are the frozen prefix")
    func frozenPrefix() {
        let network = smallConvolutionalNetwork(seed: 1)
        #expect(network.architecture.layersThroughLastConvolution == 4)
        let lenet = Architecture.make(.lenet, lowRank: true, factoredMinimumWeights: 10_000)
        // conv1, ReLU, pool, conv2, ReLU, pool, flatten, fc1 …: frozen through conv2.
        #expect(lenet.layersThroughLastConvolution == 4)
        let mlp = Architecture.make(.mlp, lowRank: true)
        #expect(mlp.layersThroughLastConvolution == 0)
    }

    @Test("backward with frozen layers: their gradients stay zero, the others are the full pass's")
    func backwardSkipsFrozenLayers() {
        let network = smallConvolutionalNetwork(seed: 2)
        var generator = SeededGenerator(seed: 3)
        let input = Tensor.randomNormal(shape: [3 * 72], using: &generator).scalars
        let projection = Tensor.randomNormal(shape: [3 * 2], using: &generator).scalars
        let pass = network.forward(input, batch: 3)
        var full = network.parameters.map { Tensor(zeros: $0.shape) }
        network.backward(pass, outputGradient: projection, into: &full)
        var frozen = network.parameters.map { Tensor(zeros: $0.shape) }
        network.backward(pass, outputGradient: projection, into: &frozen, frozenLayers: 4)
        let firstTrained = network.architecture.parameterOffsets[4]
        #expect(firstTrained == 4)  // two tensors (weights, bias) per convolution
        for index in network.parameters.indices {
            if index < firstTrained {
                #expect(frozen[index].scalars.allSatisfy { $0 == 0 }, "tensor \(index)")
                #expect(full[index].scalars.contains { $0 != 0 }, "tensor \(index)")
            } else {
                #expect(frozen[index] == full[index], "tensor \(index)")
            }
        }
    }

    @Test("Training FLOPs: frozen layers count their forward pass only, by hand")
    func costModel() {
        let network = smallConvolutionalNetwork(seed: 4)
        // conv1: 36 positions × 3 × 18 MACs; conv2: 1 × 4 × 27; dense 2 × 4. Two FLOPs per MAC.
        // Trained: conv1 forward + weight gradient (no input gradient), the rest forward +
        // two gradients.
        let trained: Double = 2 * (1944 * 2 + 108 * 3 + 8 * 3)
        #expect(network.trainingStepFLOPs(batch: 1) == trained)
        // Frozen: both convolutions forward only; the dense layer, now the first trained
        // layer, computes no input gradient.
        let frozen: Double = 2 * (1944 + 108 + 8 * 2)
        #expect(network.trainingStepFLOPs(batch: 1, frozenLayers: 4) == frozen)
        #expect(
            network.trainingStepFLOPs(batch: 5, frozenLayers: 4)
                == 5 * network.trainingStepFLOPs(batch: 1, frozenLayers: 4))
    }

    @Test("A trainer with frozen layers never changes them, even under weight decay and momentum")
    func trainerKeepsFrozenLayers() {
        let network = smallConvolutionalNetwork(seed: 5)
        var generator = SeededGenerator(seed: 6)
        let features = Tensor.randomNormal(shape: [16 * 72], using: &generator).scalars
        let labels = (0..<16).map { Int32($0 % 2) }
        let samples = TrainingSamples(features: features, labels: labels, featureCount: 72)
        var configuration = TrainingConfiguration()
        configuration.epochs = 2
        configuration.batchSize = 4
        configuration.momentum = 0.9
        configuration.weightDecay = 1e-2
        configuration.sampler = .unsampled
        configuration.frozenLayers = 4
        var trainer = Trainer(
            network: network, configuration: configuration, generator: SeededGenerator(seed: 7))
        _ = trainer.trainEpoch(on: samples)
        _ = trainer.trainEpoch(on: samples)
        let trained = trainer.network.parameters
        for index in 0..<4 {
            #expect(trained[index] == network.parameters[index], "tensor \(index)")
        }
        for index in 4..<trained.count {
            #expect(trained[index] != network.parameters[index], "tensor \(index)")
        }
    }
}
