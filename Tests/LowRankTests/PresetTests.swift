import LowRank
import Tensors
import TestSupport
import Testing
import Vocabulary

@Suite("Presets built from their descriptions")
struct PresetTests {
    @Test("LeNet and the MLP build exactly the layers they always had (pinned models rely on it)")
    func unchangedPresets() {
        let g1 = ConvolutionGeometry(height: 28, width: 28, channels: 1, kernelSize: 5, padding: 2)
        let g2 = ConvolutionGeometry(height: 14, width: 14, channels: 6, kernelSize: 5, padding: 0)
        #expect(
            Architecture.make(.lenet, lowRank: true, factoredMinimumWeights: 1_000).layers == [
                .convolution(geometry: g1, outputs: 6), .relu,
                .maxPool(height: 28, width: 28, channels: 6),
                .lowRankConvolution(geometry: g2, outputs: 16, maxRank: 16), .relu,
                .maxPool(height: 10, width: 10, channels: 16), .flatten,
                .lowRankDense(inputs: 400, outputs: 120, maxRank: 120), .relu,
                .lowRankDense(inputs: 120, outputs: 84, maxRank: 84), .relu,
                .dense(inputs: 84, outputs: 10),
            ])
        #expect(
            Architecture.make(.mlp, lowRank: false, inputShape: [60], classCount: 10).layers == [
                .flatten, .dense(inputs: 60, outputs: 300), .relu,
                .dense(inputs: 300, outputs: 100), .relu, .dense(inputs: 100, outputs: 10),
            ])
        #expect(
            Architecture.make(.logistic, lowRank: true, inputShape: [60]).layers == [
                .flatten, .lowRankDense(inputs: 60, outputs: 10, maxRank: 10),
            ])
    }

    @Test("The CNN is the FedAvg CNN: 1,663,370 parameters on 28×28×1 and 10 classes")
    func cnn() {
        var generator = SeededGenerator(seed: 1)
        let dense = Network(architecture: .make(.cnn, lowRank: false), using: &generator)
        // conv 5·5·1·32 + 32, conv 5·5·32·64 + 64, fc 3136·512 + 512, fc 512·10 + 10.
        #expect(dense.parameterCount(ranks: []) == 832 + 51_264 + 1_606_144 + 5_130)
        #expect(dense.parameterCount(ranks: []) == 1_663_370)
        let lod = Architecture.make(.cnn, lowRank: true)
        #expect(lod.lowRankLayerIndices.count == 4)
    }

    @Test("ResNet-8 by hand, with group normalisation and projection shortcuts")
    func resnet8() {
        var generator = SeededGenerator(seed: 2)
        let network = Network(architecture: .make(.resnet8, lowRank: false), using: &generator)
        // Stem 3·3·1·16 + 16, GN 2·16; block 16→16: 2 × (3·3·16·16 + 16 + GN 32);
        // block 16→32 (stride 2): 3·3·16·32 + 32 + 64, 3·3·32·32 + 32 + 64, 1×1 16·32 + 32
        // + 64; block 32→64 likewise; fc 64·10 + 10.
        let stem = 160 + 32
        let first = 2 * (2_304 + 16 + 32)
        let second = (4_608 + 32 + 64) + (9_216 + 32 + 64) + (512 + 32 + 64)
        let third = (18_432 + 64 + 128) + (36_864 + 64 + 128) + (2_048 + 64 + 128)
        #expect(network.parameterCount(ranks: []) == stem + first + second + third + 650)
        #expect(network.architecture.activationShapes.last == [10])
    }

    @Test("Every preset builds on the shape it is meant for; VGG refuses 28×28 in one line")
    func everyPreset() {
        for preset in ModelPreset.allCases {
            let input =
                preset == .logistic
                ? [60] : preset.rawValue.hasPrefix("vgg") ? [32, 32, 3] : [28, 28, 1]
            #expect(preset.problem(inputShape: input) == nil, "\(preset)")
            for lowRank in [false, true] {
                let architecture = Architecture.make(preset, lowRank: lowRank, inputShape: input)
                #expect(architecture.inconsistency == nil, "\(preset)")
            }
        }
        let problem = ModelPreset.vgg11.problem(inputShape: [28, 28, 1])
        #expect(problem?.contains("maxpool") == true, "\(problem ?? "")")
        #expect(problem?.contains("1×1") == true, "\(problem ?? "")")
        #expect(problem?.contains("\n") == false)
    }

    @Test("Normalisation choices: batch norm keeps running statistics, group norm none")
    func normalizations() {
        let batch = Architecture.make(.resnet20, lowRank: false, normalization: .batch)
        let group = Architecture.make(.resnet20, lowRank: false, normalization: .group)
        let none = Architecture.make(.resnet20, lowRank: false, normalization: .none)
        // 1 stem + 9 blocks × 2 + 2 projections = 21 normalisations.
        #expect(batch.stateShapes.count == 2 * 21)
        #expect(group.stateShapes.isEmpty)
        #expect(none.parameterShapes.count == group.parameterShapes.count - 2 * 21)
        #expect(Normalization.groupNormalizationGroups(channels: 16) == 4)
        #expect(Normalization.groupNormalizationGroups(channels: 512) == 32)
        #expect(Normalization.groupNormalizationGroups(channels: 6) == 1)
    }

    @Test("Descriptions: per-layer factoring, errors that name the layer and the reason")
    func descriptions() throws {
        let layers: [LayerDescription] = [
            .convolution(channels: 8, kernel: 3, stride: 2, padding: 1, factored: false),
            .relu,
            .residual(
                body: [.convolution(channels: 8, kernel: 3, stride: 1, padding: 1, factored: true)],
                shortcut: []),
            .globalAveragePool, .dense(outputs: nil, factored: nil),
        ]
        let architecture = try Architecture(
            name: "t", layers: layers, inputShape: [9, 9, 3], classCount: 4, lowRank: true,
            factoredMinimumWeights: 100)
        #expect(
            architecture.layers.map(\.kindName) == [
                "conv", "relu", "residual", "lod-conv", "shortcut", "add", "global-avgpool",
                "dense",
            ])
        #expect(architecture.activationShapes[1] == [5, 5, 8])
        let bad: [LayerDescription] = [
            .residual(
                body: [.convolution(channels: 4, kernel: 3, stride: 1, padding: 1, factored: nil)],
                shortcut: []),
            .flatten, .dense(outputs: nil, factored: nil),
        ]
        #expect(throws: ModelDescriptionError.self) {
            try Architecture(
                name: "t", layers: bad, inputShape: [5, 5, 2], classCount: 3, lowRank: false,
                factoredMinimumWeights: 0)
        }
        do {
            _ = try Architecture(
                name: "t", layers: [.dense(outputs: 5, factored: nil)], inputShape: [4, 4, 1],
                classCount: 5, lowRank: false, factoredMinimumWeights: 0)
            Issue.record("a dense layer on images was accepted")
        } catch {
            #expect(error.layer == "layers[0] (dense)")
            #expect(error.reason.contains("flatten"))
        }
    }
}
