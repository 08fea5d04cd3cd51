/// What a scenario validator can know about a model description without building it: whether
/// its layers chain on a data set's samples, how many weights it holds, and whether it keeps
/// batch-normalisation statistics.
///
/// The shape rules are the ones the network builder applies (convolutions, poolings and
/// normalisations need images, dense layers flat samples, a residual block's body and
/// shortcut the same output shape, the model ends in the classes); a test checks that both
/// agree on the presets and on refused descriptions.
extension ModelDescription {
    /// The most weights (dense count, biases and normalisation parameters included) a
    /// description may hold: 2²⁸, a gigabyte of `Float`s, twenty times VGG-19's.
    public static let maximumParameterCount = 1 << 28

    /// Why the layers cannot take samples of `inputShape` into `classCount` classes (naming
    /// the layer as `layers[3].residual.body[1] (conv)`), or `nil` when they can.
    public func shapeProblem(inputShape: [Int], classCount: Int) -> String? {
        var walk = ShapeWalk(classCount: classCount)
        let output: [Int]
        switch walk.follow(layers, from: inputShape, path: "layers") {
        case .failure(let problem): return problem.text
        case .success(let shape): output = shape
        }
        guard output == [classCount] else {
            return
                "ends in shape \(output), not the \(classCount) classes (end with a dense layer)"
        }
        guard walk.parameters <= Self.maximumParameterCount else {
            return
                "holds \(walk.parameters) weights; a model may hold at most \(Self.maximumParameterCount)"
        }
        return nil
    }

    /// Whether some layer is batch normalisation (the model keeps running statistics).
    public var usesBatchNormalization: Bool { Self.containsBatchNormalization(layers) }

    private static func containsBatchNormalization(_ layers: [LayerDescription]) -> Bool {
        layers.contains { layer in
            switch layer {
            case .batchNormalization: true
            case .residual(let body, let shortcut):
                containsBatchNormalization(body) || containsBatchNormalization(shortcut)
            default: false
            }
        }
    }

    /// The preset and normalisation whose layers these are, if any: a description written as
    /// `{preset: resnet8, normalization: batch}` is its layer list, and this recovers the name.
    public var presetForm: (preset: ModelPreset, normalization: Normalization)? {
        switch self {
        case .preset(let preset): return (preset, .presetDefault)
        case .layers(let layers):
            for preset in ModelPreset.allCases {
                for normalization in Normalization.allCases
                where preset.layers(normalization: normalization) == layers {
                    return (preset, normalization)
                }
            }
            return nil
        }
    }
}

private struct ShapeProblem: Error {
    var text: String
}

/// Follows the per-sample shape through a layer list, counting weights.
private struct ShapeWalk {
    let classCount: Int
    var parameters = 0

    init(classCount: Int) { self.classCount = classCount }

    mutating func follow(
        _ layers: [LayerDescription], from input: [Int], path: String
    ) -> Result<[Int], ShapeProblem> {
        var shape = input
        for (index, layer) in layers.enumerated() {
            let here = "\(path)[\(index)] (\(layer.keyword))"
            func fail(_ reason: String) -> Result<[Int], ShapeProblem> {
                .failure(ShapeProblem(text: "\(here): \(reason)"))
            }
            let image: (h: Int, w: Int, c: Int)? =
                shape.count == 3 ? (shape[0], shape[1], shape[2]) : nil
            let needsImage = "needs images (height × width × channels), gets shape \(shape)"
            switch layer {
            case .convolution(let channels, let kernel, let stride, let padding, _):
                guard let (h, w, c) = image else { return fail(needsImage) }
                guard channels >= 1, kernel >= 1, stride >= 1, padding >= 0, padding < kernel
                else {
                    return fail(
                        "channels \(channels), kernel \(kernel), stride \(stride), padding \(padding): need channels, kernel, stride ≥ 1 and 0 ≤ padding < kernel"
                    )
                }
                guard h + 2 * padding >= kernel, w + 2 * padding >= kernel else {
                    return fail(
                        "a \(kernel)×\(kernel) kernel (padding \(padding)) does not fit \(h)×\(w)")
                }
                add(channels * (kernel * kernel * c + 1))
                shape = [
                    (h + 2 * padding - kernel) / stride + 1,
                    (w + 2 * padding - kernel) / stride + 1, channels,
                ]
            case .dense(let outputs, _):
                guard shape.count == 1 else {
                    return fail(
                        "needs flat samples, gets shape \(shape) (add a flatten before it)")
                }
                let outputs = outputs ?? classCount
                guard outputs >= 1 else { return fail("\(outputs) outputs") }
                add(outputs * (shape[0] + 1))
                shape = [outputs]
            case .batchNormalization:
                guard let (_, _, c) = image else { return fail(needsImage) }
                add(2 * c)
            case .groupNormalization(let groups):
                guard let (_, _, c) = image else { return fail(needsImage) }
                guard groups >= 1, c % groups == 0 else {
                    return fail("\(groups) groups do not divide \(c) channels")
                }
                add(2 * c)
            case .relu:
                break
            case .maxPool:
                guard let (h, w, c) = image else { return fail(needsImage) }
                guard h >= 2, w >= 2 else { return fail("cannot pool \(h)×\(w) images 2×2") }
                shape = [h / 2, w / 2, c]
            case .averagePool(let size):
                guard let (h, w, c) = image else { return fail(needsImage) }
                guard size >= 1, size <= min(h, w) else {
                    return fail("cannot pool \(h)×\(w) images \(size)×\(size)")
                }
                shape = [h / size, w / size, c]
            case .globalAveragePool:
                guard let (_, _, c) = image else { return fail(needsImage) }
                shape = [c]
            case .flatten:
                shape = [shape.reduce(1, *)]
            case .residual(let body, let shortcut):
                let bodyShape: [Int]
                switch follow(body, from: shape, path: "\(here).residual.body") {
                case .failure(let problem): return .failure(problem)
                case .success(let out): bodyShape = out
                }
                let shortcutShape: [Int]
                switch follow(shortcut, from: shape, path: "\(here).residual.shortcut") {
                case .failure(let problem): return .failure(problem)
                case .success(let out): shortcutShape = out
                }
                guard bodyShape == shortcutShape else {
                    return fail(
                        "the body gives shape \(bodyShape), the shortcut \(shortcutShape): they must match (a projection shortcut changes channels and stride)"
                    )
                }
                shape = bodyShape
            }
            if shape.reduce(1, { $0 &* max($1, 1) }) > ModelDescription.maximumParameterCount {
                return fail("gives \(shape) values per sample, too many")
            }
        }
        return .success(shape)
    }

    private mutating func add(_ count: Int) {
        parameters = min(parameters &+ count, Int.max / 2)
    }
}
