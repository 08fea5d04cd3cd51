import Vocabulary

/// A model description written back as YAML, in the syntax `ModelDescriptionReader` reads:
/// `parse(emitted) == description` for every description.
extension ModelDescription {
    /// A preset's name; a preset's layers with another normalisation as
    /// `{preset: resnet8, normalization: batch}`; other layers as `{layers: [...]}`, one
    /// flow item per layer.
    var node: ScenarioNode {
        switch self {
        case .preset(let preset):
            return .text(preset.rawValue)
        case .layers(let layers):
            if let (preset, normalization) = presetForm {
                return normalization == .presetDefault
                    ? .text(preset.rawValue)
                    : .flow([
                        ("preset", .text(preset.rawValue)),
                        ("normalization", .text(normalization.rawValue)),
                    ])
            }
            return .block([("layers", .sequence(layers.map(\.node), isFlow: false))])
        }
    }

    /// How reports and logs name the model: the preset (`resnet8`), the preset and its
    /// normalisation (`resnet8 (batch norm)`), or `custom (N layers)`.
    public var summary: String {
        if let (preset, normalization) = presetForm {
            return normalization == .presetDefault
                ? preset.rawValue : "\(preset.rawValue) (\(normalization.rawValue) norm)"
        }
        return "custom (\(layers.count) layers)"
    }
}

extension LayerDescription {
    /// The layer as a description file writes it: a keyword, or a one-key flow mapping.
    var node: ScenarioNode {
        func layer(_ arguments: [(String, ScenarioNode)]) -> ScenarioNode {
            .flow([(keyword, .flow(arguments))])
        }
        func factored(_ flag: Bool?) -> [(String, ScenarioNode)] {
            flag.map { [("factored", .boolean($0))] } ?? []
        }
        switch self {
        case .convolution(let channels, let kernel, let stride, let padding, let flag):
            return layer(
                [("channels", .number(channels)), ("kernel", .number(kernel))]
                    + (stride != 1 ? [("stride", .number(stride))] : [])
                    + (padding != 0 ? [("padding", .number(padding))] : []) + factored(flag))
        case .dense(let outputs, let flag):
            return layer(
                [("outputs", outputs.map { .number($0) } ?? .text("classes"))] + factored(flag))
        case .groupNormalization(let groups):
            return layer([("groups", .number(groups))])
        case .averagePool(let size):
            return layer([("size", .number(size))])
        case .residual(let body, let shortcut):
            return layer([
                ("body", .sequence(body.map(\.node), isFlow: true)),
                ("shortcut", .sequence(shortcut.map(\.node), isFlow: true)),
            ])
        case .batchNormalization, .relu, .maxPool, .globalAveragePool, .flatten:
            return .text(keyword)
        }
    }
}
