import LowRank
import Testing
import Vocabulary

@Suite("The validator's shape check agrees with the network builder")
struct DescriptionShapeTests {
    static let inputs: [([Int], Int)] = [([28, 28, 1], 10), ([32, 32, 3], 100), ([60], 10)]

    /// Whether the builder accepts `description` on `input`.
    func builds(_ description: ModelDescription, _ input: [Int], _ classes: Int) -> Bool {
        (try? Architecture(
            description: description, inputShape: input, classCount: classes, lowRank: false))
            != nil
    }

    @Test("Every preset, with every normalisation, on images and on flat samples")
    func presets() {
        for preset in ModelPreset.allCases {
            for normalization in Normalization.allCases {
                let description = ModelDescription.layers(
                    preset.layers(normalization: normalization))
                for (input, classes) in Self.inputs {
                    let problem = description.shapeProblem(inputShape: input, classCount: classes)
                    #expect(
                        (problem == nil) == builds(description, input, classes),
                        "\(preset) \(normalization) on \(input): \(problem ?? "accepted")")
                }
            }
        }
    }

    @Test("Descriptions the builder refuses are refused, with the layer named")
    func refused() {
        let cases: [([LayerDescription], String)] = [
            ([.flatten, .dense(outputs: 7, factored: nil)], "ends in shape [7]"),
            ([.flatten, .batchNormalization, .dense(outputs: nil, factored: nil)], "layers[1]"),
            (
                [.groupNormalization(groups: 3), .flatten, .dense(outputs: nil, factored: nil)],
                "layers[0] (groupnorm): 3 groups do not divide 1 channels"
            ),
            ([.dense(outputs: nil, factored: nil)], "layers[0] (dense): needs flat samples"),
            (
                [
                    .residual(
                        body: [
                            .convolution(
                                channels: 2, kernel: 3, stride: 2, padding: 1, factored: nil)
                        ],
                        shortcut: []), .flatten, .dense(outputs: nil, factored: nil),
                ], "layers[0] (residual): the body gives shape [14, 14, 2]"
            ),
            ([.averagePool(size: 29), .flatten, .dense(outputs: nil, factored: nil)], "29×29"),
            (
                [
                    .flatten, .dense(outputs: 1 << 20, factored: nil),
                    .dense(outputs: nil, factored: nil),
                ], "holds"
            ),
        ]
        for (layers, expected) in cases {
            let description = ModelDescription.layers(layers)
            let problem = description.shapeProblem(inputShape: [28, 28, 1], classCount: 10)
            #expect(problem?.contains(expected) == true, "\(problem ?? "accepted")")
            if !expected.hasPrefix("holds") {
                #expect(!builds(description, [28, 28, 1], 10), "\(layers)")
            }
        }
    }
}
