import Fleet
import Testing
import Vocabulary

@Suite("A scenario's model.architecture: a preset, a preset with a normalisation, or layers")
struct ScenarioModelDescriptionTests {
    static let smallCNN =
        "{layers: [{conv: {channels: 4, kernel: 3, padding: 1}}, batchnorm, relu, maxpool, "
        + "flatten, {dense: 32}, relu, {dense: classes}]}"

    /// The problems of an override that fails, as `keyPath: reason` lines.
    func problems(_ assignments: [(String, String)]) throws -> [String] {
        let base = try shipped("smoke")
        do throws(ScenarioError) {
            _ = try base.overriding(assignments.map { ($0.0, $0.1) })
            return []
        } catch {
            guard case .invalid(_, let problems) = error else { return ["\(error)"] }
            return problems.map(\.description)
        }
    }

    @Test("An inline layer list is read, emitted as a layers block, and read back the same")
    func inlineLayers() throws {
        let scenario = try shipped("smoke").overriding([
            ("model.architecture", Self.smallCNN), ("evaluation.validationSamples", "200"),
        ])
        #expect(
            scenario.model.architecture
                == .layers([
                    .convolution(channels: 4, kernel: 3, stride: 1, padding: 1, factored: nil),
                    .batchNormalization, .relu, .maxPool, .flatten,
                    .dense(outputs: 32, factored: nil), .relu, .dense(outputs: nil, factored: nil),
                ]))
        let yaml = scenario.yaml()
        #expect(
            yaml.contains(
                """
                model:
                  architecture:
                    layers:
                      - {conv: {channels: 4, kernel: 3, padding: 1}}
                      - batchnorm
                      - relu
                      - maxpool
                      - flatten
                      - {dense: {outputs: 32}}
                      - relu
                      - {dense: {outputs: classes}}
                  strategy: orderedLoD
                """), "\(yaml)")
        #expect(try Scenario.parse(yaml: yaml) == scenario)
        #expect(scenario.model.architecture.summary == "custom (8 layers)")
        #expect(scenario.model.architecture.usesBatchNormalization)
    }

    @Test(
        "Every layer kind and flag survives emission; a preset's other normalisation keeps its name"
    )
    func roundTrips() throws {
        let everything =
            "[{conv: {channels: 8, kernel: 3, stride: 2, padding: 1, factored: false}}, "
            + "{groupnorm: 2}, relu, {residual: {body: [{conv: {channels: 8, kernel: 3, "
            + "padding: 1}}, batchnorm], shortcut: [{conv: {channels: 8, kernel: 1}}]}}, "
            + "{residual: {body: [relu]}}, {avgpool: 2}, maxpool, global_avgpool, flatten, "
            + "{dense: {outputs: 16, factored: true}}, {dense: classes}]"
        let base = try shipped("smoke")
        let scenario = try base.overriding([
            ("model.architecture", everything), ("evaluation.validationSamples", "200"),
        ])
        #expect(try Scenario.parse(yaml: scenario.yaml()) == scenario)
        let batch = try base.overriding([
            ("model.architecture", "{preset: resnet8, normalization: batch}"),
            ("evaluation.validationSamples", "200"),
        ])
        #expect(
            batch.model.architecture == .layers(ModelPreset.resnet8.layers(normalization: .batch)))
        #expect(batch.yaml().contains("  architecture: {preset: resnet8, normalization: batch}\n"))
        #expect(try Scenario.parse(yaml: batch.yaml()) == batch)
        #expect(batch.model.architecture.summary == "resnet8 (batch norm)")
        // The preset's own normalisation is the preset: emitted as its name, byte for byte.
        let group = try base.overriding([
            ("model.architecture", "{preset: resnet8, normalization: group}")
        ])
        #expect(group.model.architecture == .preset(.resnet8))
        #expect(group.yaml().contains("  architecture: resnet8\n"))
        #expect(try base.overriding([("model.architecture", "mlp")]).yaml() == base.yaml())
    }

    @Test("Errors name the key path inside the layer list, and shapes are checked on the data")
    func errors() throws {
        #expect(
            try problems([
                (
                    "model.architecture",
                    "{layers: [flatten, relu, relu, {conv: {channels: 4, kernel: x}}]}"
                )
            ]) == [
                "model.architecture.layers[3].conv.kernel: expected an integer in 1…1048576, found 'x'"
            ])
        #expect(
            try problems([("model.architecture", "[flatten, {dense: 7}]")]) == [
                "model.architecture: custom (2 layers) cannot take fashion-mnist samples of shape 28×28×1: ends in shape [7], not the 10 classes (end with a dense layer)"
            ])
        #expect(
            try problems([("model.architecture", "[flatten, {conv: {channels: 4, kernel: 3}}]")])
                == [
                    "model.architecture: custom (2 layers) cannot take fashion-mnist samples of shape 28×28×1: layers[1] (conv): needs images (height × width × channels), gets shape [784]"
                ])
        #expect(
            try problems([
                ("model.architecture", "[{residual: {body: [{conv: {channels: 4, kernel: 1}}]}}]")
            ]).first?.contains(
                "layers[0] (residual): the body gives shape [28, 28, 4], the shortcut [28, 28, 1]")
                == true)
        #expect(
            try problems([("model.architecture", "{preset: cnn, normalization: layer}")]).first?
                .hasPrefix("model.architecture.normalization: expected batch, group or none")
                == true)
        // A preset name is still a choice, with its suggestion.
        #expect(
            try problems([("model.architecture", "lenett")]).first?.contains(
                "did you mean 'lenet'?") == true)
        #expect(
            try problems([("model.architecture", Self.smallCNN)]) == [
                "evaluation.validationSamples: must be > 0 with batch normalisation in model.architecture: the coordinator recomputes each tier's statistics on these held-out training images"
            ])
        #expect(
            try problems([
                ("model.architecture", Self.smallCNN), ("evaluation.validationSamples", "200"),
                ("tiers[0].freezeConvolutions", "true"),
            ]) == [
                "tiers[0].freezeConvolutions: model.architecture is a layer description: frozen convolutions are supported for lenet only"
            ])
    }
}
