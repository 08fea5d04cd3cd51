import Tensors
import Vocabulary

/// The shipped models: the presets of the shared vocabulary.
public typealias ModelKind = ModelPreset

/// Why a model description cannot be built on a data set's samples.
public struct ModelDescriptionError: Error, Equatable, CustomStringConvertible {
    /// Where: `layers[3]`, `layers[5].residual.body[1]`, or `model` for the whole.
    public var layer: String
    public var reason: String

    public init(layer: String, reason: String) {
        self.layer = layer
        self.reason = reason
    }

    public var description: String { "\(layer): \(reason)" }
}

extension ModelPreset {
    /// Why this model cannot take samples of `inputShape`, or `nil` when it can.
    public func problem(inputShape: [Int], classCount: Int = 10) -> String? {
        if self == .lenet, inputShape.count != 3 || inputShape.prefix(2).contains(where: { $0 < 5 })
        {
            return
                "lenet needs images (height × width × channels, at least 5 × 5); this data has samples of shape \(inputShape.map(String.init).joined(separator: " × ")) (use mlp or logistic)"
        }
        do {
            _ = try Architecture(
                name: rawValue, layers: layers(), inputShape: inputShape, classCount: classCount,
                lowRank: false, factoredMinimumWeights: 0)
            return nil
        } catch {
            let shape = inputShape.map(String.init).joined(separator: "x")
            return "\(rawValue) cannot take \(shape) samples: \(error)"
        }
    }
}

extension Architecture {
    /// The architecture a model description builds on samples of `inputShape`.
    public init(
        description: ModelDescription, inputShape: [Int], classCount: Int, lowRank: Bool,
        factoredMinimumWeights: Int = 0
    ) throws(ModelDescriptionError) {
        try self.init(
            name: description.name, layers: description.layers, inputShape: inputShape,
            classCount: classCount, lowRank: lowRank,
            factoredMinimumWeights: factoredMinimumWeights)
    }

    /// Lowers a layer description to layers with shapes, each taking the shape the one before
    /// gives. With `lowRank`, a linear map (dense, convolution, 1×1 shortcut) with at least
    /// `factoredMinimumWeights` weights is LoD-factored at full rank `min(outputs, inputs)`,
    /// unless the layer says `factored` itself.
    public init(
        name: String, layers description: [LayerDescription], inputShape: [Int], classCount: Int,
        lowRank: Bool, factoredMinimumWeights: Int
    ) throws(ModelDescriptionError) {
        guard !inputShape.isEmpty, inputShape.allSatisfy({ $0 >= 1 }), classCount >= 1 else {
            throw ModelDescriptionError(
                layer: "model", reason: "samples of shape \(inputShape) and \(classCount) classes")
        }
        var builder = Lowering(
            classCount: classCount, lowRank: lowRank, minimumWeights: factoredMinimumWeights)
        let output = try builder.lower(description, from: inputShape, path: "layers")
        guard output == [classCount] else {
            throw ModelDescriptionError(
                layer: "model",
                reason:
                    "ends in shape \(output), not the \(classCount) classes (end with a dense layer)"
            )
        }
        self.init(
            name: name, inputShape: inputShape, classCount: classCount, layers: builder.layers)
        if let problem = inconsistency {
            throw ModelDescriptionError(layer: "model", reason: problem)
        }
    }
}

/// Description → layers, keeping the running shape.
private struct Lowering {
    let classCount: Int
    let lowRank: Bool
    let minimumWeights: Int
    var layers: [LayerSpec] = []

    init(classCount: Int, lowRank: Bool, minimumWeights: Int) {
        self.classCount = classCount
        self.lowRank = lowRank
        self.minimumWeights = minimumWeights
    }

    /// Appends the layers of `description` and returns the shape after them.
    mutating func lower(
        _ description: [LayerDescription], from input: [Int], path: String
    ) throws(ModelDescriptionError) -> [Int] {
        var shape = input
        for (index, layer) in description.enumerated() {
            let here = "\(path)[\(index)]"
            func fail(_ reason: String) -> ModelDescriptionError {
                ModelDescriptionError(layer: "\(here) (\(layer.keyword))", reason: reason)
            }
            func image() throws(ModelDescriptionError) -> (h: Int, w: Int, c: Int) {
                guard shape.count == 3 else {
                    throw fail("needs images (height × width × channels), gets shape \(shape)")
                }
                return (shape[0], shape[1], shape[2])
            }
            switch layer {
            case .convolution(let channels, let kernel, let stride, let padding, let factored):
                let (h, w, c) = try image()
                guard channels >= 1, kernel >= 1, stride >= 1, padding >= 0, padding < kernel else {
                    throw fail(
                        "channels \(channels), kernel \(kernel), stride \(stride), padding \(padding): need channels, kernel, stride ≥ 1 and 0 ≤ padding < kernel"
                    )
                }
                let g = ConvolutionGeometry(
                    height: h, width: w, channels: c, kernelSize: kernel, padding: padding,
                    stride: stride)
                guard g.outputHeight >= 1, g.outputWidth >= 1 else {
                    throw fail(
                        "a \(kernel)×\(kernel) kernel (padding \(padding)) does not fit \(h)×\(w)")
                }
                layers.append(
                    isFactored(factored, weights: g.patchSize * channels)
                        ? .lowRankConvolution(
                            geometry: g, outputs: channels, maxRank: min(channels, g.patchSize))
                        : .convolution(geometry: g, outputs: channels))
            case .dense(let outputs, let factored):
                guard shape.count == 1 else {
                    throw fail("needs flat samples, gets shape \(shape) (add a flatten before it)")
                }
                let outputs = outputs ?? classCount
                guard outputs >= 1 else { throw fail("\(outputs) outputs") }
                let inputs = shape[0]
                layers.append(
                    isFactored(factored, weights: inputs * outputs)
                        ? .lowRankDense(
                            inputs: inputs, outputs: outputs, maxRank: min(inputs, outputs))
                        : .dense(inputs: inputs, outputs: outputs))
            case .batchNormalization:
                layers.append(.batchNormalization(channels: try image().c))
            case .groupNormalization(let groups):
                let c = try image().c
                guard groups >= 1, c % groups == 0 else {
                    throw fail("\(groups) groups do not divide \(c) channels")
                }
                layers.append(.groupNormalization(channels: c, groups: groups))
            case .relu:
                layers.append(.relu)
            case .maxPool:
                let (h, w, c) = try image()
                guard h >= 2, w >= 2 else { throw fail("cannot pool \(h)×\(w) images 2×2") }
                layers.append(.maxPool(height: h, width: w, channels: c))
            case .averagePool(let size):
                let (h, w, c) = try image()
                guard size >= 1, size <= min(h, w) else {
                    throw fail("cannot pool \(h)×\(w) images \(size)×\(size)")
                }
                layers.append(.averagePool(height: h, width: w, channels: c, size: size))
            case .globalAveragePool:
                let (h, w, c) = try image()
                layers.append(.globalAveragePool(height: h, width: w, channels: c))
            case .flatten:
                layers.append(.flatten)
            case .residual(let body, let shortcut):
                layers.append(.residualStart)
                let bodyShape = try lower(body, from: shape, path: "\(here).residual.body")
                layers.append(.residualShortcut)
                let shortcutShape = try lower(
                    shortcut, from: shape, path: "\(here).residual.shortcut")
                guard bodyShape == shortcutShape else {
                    throw fail(
                        "the body gives shape \(bodyShape), the shortcut \(shortcutShape): they must match (a projection shortcut changes channels and stride)"
                    )
                }
                layers.append(.residualEnd)
                shape = bodyShape
            }
            if case .residual = layer {
                continue  // `shape` is already the block's output.
            }
            shape = layers[layers.count - 1].outputShape(inputShape: shape)
        }
        return shape
    }

    private func isFactored(_ flag: Bool?, weights: Int) -> Bool {
        flag ?? (lowRank && weights >= minimumWeights)
    }
}
