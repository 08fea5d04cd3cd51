import Fleet
import Testing
import Vocabulary

@Suite("Model descriptions in YAML, and the presets a scenario names")
struct ModelDescriptionParsingTests {
    /// The problems of a failed parse, as `keyPath: reason` lines.
    func problems(_ yaml: String) -> [String] {
        do {
            _ = try ModelDescription.parse(yaml: yaml)
            return []
        } catch {
            guard case .invalid(_, let problems) = error else { return ["\(error)"] }
            return problems.map(\.description)
        }
    }

    @Test("Every layer kind, nested residual blocks, presets with a normalisation")
    func reads() throws {
        let description = try ModelDescription.parse(
            yaml: """
                layers:
                  - conv: {channels: 8, kernel: 3, stride: 2, padding: 1, factored: false}
                  - groupnorm: 2
                  - relu
                  - residual:
                      body:
                        - conv: {channels: 8, kernel: 3, padding: 1}
                        - batchnorm
                      shortcut: [{conv: {channels: 8, kernel: 1}}]
                  - avgpool: 2
                  - maxpool
                  - global_avgpool
                  - flatten
                  - dense: {outputs: 16, factored: true}
                  - dense: classes
                """)
        #expect(
            description
                == .layers([
                    .convolution(channels: 8, kernel: 3, stride: 2, padding: 1, factored: false),
                    .groupNormalization(groups: 2), .relu,
                    .residual(
                        body: [
                            .convolution(
                                channels: 8, kernel: 3, stride: 1, padding: 1, factored: nil),
                            .batchNormalization,
                        ],
                        shortcut: [
                            .convolution(
                                channels: 8, kernel: 1, stride: 1, padding: 0, factored: nil)
                        ]),
                    .averagePool(size: 2), .maxPool, .globalAveragePool, .flatten,
                    .dense(outputs: 16, factored: true), .dense(outputs: nil, factored: nil),
                ]))
        #expect(try ModelDescription.parse(yaml: "resnet20") == .preset(.resnet20))
        #expect(
            try ModelDescription.parse(yaml: "{preset: resnet8, normalization: batch}")
                == .layers(ModelPreset.resnet8.layers(normalization: .batch)))
        #expect(
            try ModelDescription.parse(yaml: "{preset: resnet8, normalization: group}")
                == .preset(.resnet8))
    }

    @Test("Mistakes are named by key path, with the reason")
    func mistakes() {
        #expect(
            problems("layers: [{conv: {channels: 8, kernal: 3}}]") == [
                "model.layers[0].conv.kernal: unknown key: expected channels, kernel, stride, padding, factored"
            ])
        #expect(
            problems("layers: [{conv: {channels: 8}}]") == ["model.layers[0].conv.kernel: missing"])
        #expect(
            problems("layers: [{conv: {channels: 0, kernel: 3}}]").first?.hasPrefix(
                "model.layers[0].conv.channels: expected an integer") == true)
        #expect(
            problems("layers: [{conv: {channels: 4, kernel: 3, padding: 3}}]") == [
                "model.layers[0].conv.padding: must be below the kernel size 3, found 3"
            ])
        #expect(
            problems("layers: [softmax]").first?.hasPrefix(
                "model.layers[0]: unknown layer 'softmax'") == true)
        #expect(
            problems("layers: [{residual: {shortcut: []}}]") == [
                "model.layers[0].residual.body: a residual block needs a body"
            ])
        #expect(
            problems("layers: [{relu: 3}]").first?.hasPrefix(
                "model.layers[0].relu: takes no arguments") == true)
        #expect(problems("resnet99").first?.hasPrefix("model: unknown model 'resnet99'") == true)
        #expect(
            problems("{preset: cnn, normalization: layer}").first?.hasPrefix("model.normalization:")
                == true)
        #expect(
            problems("{preset: cnn, layers: [relu]}") == ["model: give preset or layers, not both"])
    }

    @Test("A scenario names any preset; VGG cannot take Fashion-MNIST's 28×28, and says why")
    func scenarioPresets() throws {
        let base = try shipped("smoke")
        for preset in [ModelPreset.cnn, .resnet8, .resnet20, .resnet18] {
            let scenario = try base.overriding([("model.architecture", preset.rawValue)])
            #expect(scenario.model.architecture == .preset(preset))
        }
        do {
            _ = try base.overriding([("model.architecture", "vgg11")])
            Issue.record("vgg11 on 28×28 was accepted")
        } catch {
            #expect(
                "\(error)".contains(
                    "model.architecture: vgg11 cannot take fashion-mnist's 28×28 images: layers[28] (maxpool): cannot pool 1×1 2×2"
                ), "\(error)")
        }
        #expect(
            ModelDescription.preset(.vgg19).spatialProblem(height: 32, width: 32) == nil)
    }
}
