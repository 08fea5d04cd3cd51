import Tensors

/// One layer of a feed-forward network, as a description: shapes only, no weights.
///
/// Every layer works on a batch laid out row-major with the batch axis first; images are
/// NHWC. Parameters live in `Network.parameters`, in layer order:
/// - `dense`: weight `[outputs, inputs]`, bias `[outputs]`.
/// - `lowRankDense` (LoD): up `Uᵀ` `[maxRank, outputs]`, down `Vᵀ` `[maxRank, inputs]`, bias.
/// - `convolution`: kernel `[outputs, k·k·channels]` (patch order ky, kx, channel), bias.
/// - `lowRankConvolution` (LoD): up `[maxRank, outputs]`, down `[maxRank, k·k·channels]`, bias.
///
/// Factors are stored with components as rows so that a rank prefix (the first b
/// components) is a contiguous prefix of both tensors: truncating, shipping and averaging
/// a component needs no strided access.
public enum LayerSpec: Sendable, Equatable, Codable {
    case dense(inputs: Int, outputs: Int)
    case lowRankDense(inputs: Int, outputs: Int, maxRank: Int)
    case convolution(geometry: ConvolutionGeometry, outputs: Int)
    case lowRankConvolution(geometry: ConvolutionGeometry, outputs: Int, maxRank: Int)
    case relu
    /// 2×2 max pooling with stride 2 on `[height, width, channels]` images.
    case maxPool(height: Int, width: Int, channels: Int)
    case flatten

    /// Whether the layer is a LoD (low-rank ordered) layer.
    public var isLowRank: Bool {
        switch self {
        case .lowRankDense, .lowRankConvolution: true
        default: false
        }
    }

    /// Whether the layer holds a weight matrix (dense or factored).
    public var isLinear: Bool {
        switch self {
        case .dense, .lowRankDense, .convolution, .lowRankConvolution: true
        default: false
        }
    }

    /// `(outputs, inputs)` of the layer's weight matrix, for linear layers.
    public var matrixShape: (outputs: Int, inputs: Int)? {
        switch self {
        case .dense(let inputs, let outputs), .lowRankDense(let inputs, let outputs, _):
            (outputs, inputs)
        case .convolution(let g, let outputs), .lowRankConvolution(let g, let outputs, _):
            (outputs, g.patchSize)
        default: nil
        }
    }

    /// Full rank of a LoD layer: `min(outputs, inputs)` at construction.
    public var maxRank: Int? {
        switch self {
        case .lowRankDense(_, _, let r), .lowRankConvolution(_, _, let r): r
        default: nil
        }
    }

    /// Number of rows of the layer's matrix product per sample (output positions).
    public func positions(inputShape: [Int]) -> Int {
        switch self {
        case .convolution(let g, _), .lowRankConvolution(let g, _, _):
            g.outputHeight * g.outputWidth
        default: 1
        }
    }

    /// Shapes of the layer's parameter tensors.
    public var parameterShapes: [[Int]] {
        switch self {
        case .dense(let inputs, let outputs): [[outputs, inputs], [outputs]]
        case .lowRankDense(let inputs, let outputs, let r):
            [[r, outputs], [r, inputs], [outputs]]
        case .convolution(let g, let outputs): [[outputs, g.patchSize], [outputs]]
        case .lowRankConvolution(let g, let outputs, let r):
            [[r, outputs], [r, g.patchSize], [outputs]]
        default: []
        }
    }

    /// Per-sample output shape given the per-sample input shape.
    public func outputShape(inputShape: [Int]) -> [Int] {
        switch self {
        case .dense(_, let outputs), .lowRankDense(_, let outputs, _): [outputs]
        case .convolution(let g, let outputs), .lowRankConvolution(let g, let outputs, _):
            [g.outputHeight, g.outputWidth, outputs]
        case .relu: inputShape
        case .maxPool(let h, let w, let c): [h / 2, w / 2, c]
        case .flatten: [inputShape.reduce(1, *)]
        }
    }

    /// A short human name of the layer kind.
    public var kindName: String {
        switch self {
        case .dense: "dense"
        case .lowRankDense: "lod-dense"
        case .convolution: "conv"
        case .lowRankConvolution: "lod-conv"
        case .relu: "relu"
        case .maxPool: "maxpool"
        case .flatten: "flatten"
        }
    }
}

/// The models Maestro ships.
public enum ModelKind: String, Sendable, Codable, CaseIterable {
    /// Multi-layer perceptron 784-300-100-10.
    case mlp
    /// LeNet-5: conv 5×5→6 (pad 2), pool, conv 5×5→16, pool, fc 120, fc 84, fc 10.
    case lenet
    /// Multinomial logistic regression (a single linear layer), for FedProx Synthetic.
    case logistic

    /// Why this model cannot take samples of `inputShape`, or `nil` when it can.
    public func problem(inputShape: [Int]) -> String? {
        switch self {
        case .lenet where inputShape.count != 3 || inputShape.prefix(2).contains(where: { $0 < 5 }):
            "lenet needs images (height × width × channels, at least 5 × 5); this data has samples of shape \(inputShape.map(String.init).joined(separator: " × ")) (use mlp or logistic)"
        default: nil
        }
    }
}

/// A feed-forward architecture: the per-sample input shape and the layer list.
public struct Architecture: Sendable, Equatable, Codable {
    public var name: String
    public var inputShape: [Int]
    public var classCount: Int
    public var layers: [LayerSpec]

    public init(name: String, inputShape: [Int], classCount: Int, layers: [LayerSpec]) {
        self.name = name
        self.inputShape = inputShape
        self.classCount = classCount
        self.layers = layers
    }

    /// One of the shipped models, dense or with its weight layers factored (LoD).
    ///
    /// With `lowRank`, a weight layer with fewer than `factoredMinimumWeights` weights stays
    /// dense (0: every weight layer is factored).
    public static func make(
        _ kind: ModelKind, lowRank: Bool, inputShape: [Int] = [28, 28, 1], classCount: Int = 10,
        factoredMinimumWeights: Int = 0
    ) -> Architecture {
        func linear(_ inputs: Int, _ outputs: Int) -> LayerSpec {
            lowRank && inputs * outputs >= factoredMinimumWeights
                ? .lowRankDense(inputs: inputs, outputs: outputs, maxRank: min(inputs, outputs))
                : .dense(inputs: inputs, outputs: outputs)
        }
        func convolution(_ g: ConvolutionGeometry, _ outputs: Int) -> LayerSpec {
            lowRank && g.patchSize * outputs >= factoredMinimumWeights
                ? .lowRankConvolution(
                    geometry: g, outputs: outputs, maxRank: min(outputs, g.patchSize))
                : .convolution(geometry: g, outputs: outputs)
        }
        let inputCount = inputShape.reduce(1, *)
        switch kind {
        case .mlp:
            return Architecture(
                name: "mlp", inputShape: inputShape, classCount: classCount,
                layers: [
                    .flatten, linear(inputCount, 300), .relu, linear(300, 100), .relu,
                    linear(100, classCount),
                ])
        case .logistic:
            return Architecture(
                name: "logistic", inputShape: inputShape, classCount: classCount,
                layers: [.flatten, linear(inputCount, classCount)])
        case .lenet:
            precondition(inputShape.count == 3, "LeNet takes HWC images, got \(inputShape)")
            let (h, w, c) = (inputShape[0], inputShape[1], inputShape[2])
            let g1 = ConvolutionGeometry(
                height: h, width: w, channels: c, kernelSize: 5, padding: 2)
            let (h1, w1) = (g1.outputHeight / 2, g1.outputWidth / 2)
            let g2 = ConvolutionGeometry(
                height: h1, width: w1, channels: 6, kernelSize: 5, padding: 0)
            let (h2, w2) = (g2.outputHeight / 2, g2.outputWidth / 2)
            return Architecture(
                name: "lenet", inputShape: inputShape, classCount: classCount,
                layers: [
                    convolution(g1, 6), .relu,
                    .maxPool(height: g1.outputHeight, width: g1.outputWidth, channels: 6),
                    convolution(g2, 16), .relu,
                    .maxPool(height: g2.outputHeight, width: g2.outputWidth, channels: 16),
                    .flatten, linear(h2 * w2 * 16, 120), .relu, linear(120, 84), .relu,
                    linear(84, classCount),
                ])
        }
    }

    /// Per-sample input shape of every layer, plus the output shape at the end.
    public var activationShapes: [[Int]] {
        var shapes = [inputShape]
        for layer in layers { shapes.append(layer.outputShape(inputShape: shapes.last!)) }
        return shapes
    }

    /// Indices (into `layers`) of the LoD layers, in order.
    public var lowRankLayerIndices: [Int] { layers.indices.filter { layers[$0].isLowRank } }

    /// Indices of all weight layers (dense or LoD), in order.
    public var linearLayerIndices: [Int] { layers.indices.filter { layers[$0].isLinear } }

    /// How many leading layers end with the last convolution (dense or LoD): what a client
    /// that freezes the convolutions runs forward only. 0 without convolutions.
    public var layersThroughLastConvolution: Int {
        let last = layers.lastIndex {
            switch $0 {
            case .convolution, .lowRankConvolution: true
            default: false
            }
        }
        return last.map { $0 + 1 } ?? 0
    }

    /// Index of the first parameter tensor of a layer at or after `frozenLayers`: the
    /// tensors before it belong to frozen layers.
    public func firstTrainedTensor(frozenLayers: Int) -> Int {
        frozenLayers < layers.count
            ? parameterOffsets[max(frozenLayers, 0)] : parameterShapes.count
    }

    /// Index of the first parameter tensor of each layer in `Network.parameters`.
    public var parameterOffsets: [Int] {
        var offsets: [Int] = []
        var next = 0
        for layer in layers {
            offsets.append(next)
            next += layer.parameterShapes.count
        }
        return offsets
    }

    /// Shapes of all parameter tensors, in order.
    public var parameterShapes: [[Int]] { layers.flatMap(\.parameterShapes) }

    /// A display name for each weight layer: `conv1`, `conv2`, `fc1`, … in order.
    public var linearLayerNames: [Int: String] {
        var names: [Int: String] = [:]
        var (convolutions, fullyConnected) = (0, 0)
        for (index, layer) in layers.enumerated() {
            switch layer {
            case .convolution, .lowRankConvolution:
                convolutions += 1
                names[index] = "conv\(convolutions)"
            case .dense, .lowRankDense:
                fullyConnected += 1
                names[index] = "fc\(fullyConnected)"
            default: break
            }
        }
        return names
    }
}

extension Architecture {
    /// Why this architecture cannot run, or `nil` when every layer fits the one before it.
    ///
    /// Architectures built in code are valid by construction; this guards ones read from
    /// files, so that a forged header is refused instead of trapping in `forward`.
    /// Floats in all parameters together, or `nil` when the count (or its bytes) would not
    /// fit in an `Int`: a crafted file's shapes are counted before anything trusts them.
    public var checkedParameterFloatCount: Int? {
        var total = 0
        for shape in parameterShapes {
            var count = 1
            for extent in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: extent)
                guard !overflow, extent >= 0 else { return nil }
                count = product
            }
            let (sum, overflow) = total.addingReportingOverflow(count)
            guard !overflow else { return nil }
            total = sum
        }
        return total <= Int.max / 16 ? total : nil
    }

    public var inconsistency: String? {
        let limit = 1 << 24
        guard classCount >= 1, classCount < limit else { return "class count \(classCount)" }
        // A crafted description (a peer's) must not trap: the product is checked step by
        // step, and no layer may hold more weights than a frame could ever carry.
        var inputs = 1
        for extent in inputShape {
            let (product, overflow) = inputs.multipliedReportingOverflow(by: extent)
            guard extent >= 1, extent < limit, !overflow, product < limit else {
                return "input shape \(inputShape)"
            }
            inputs = product
        }
        guard !inputShape.isEmpty, inputShape.count <= 3 else {
            return "input shape \(inputShape)"
        }
        var shape = inputShape
        for (index, layer) in layers.enumerated() {
            let problem: String? = {
                // Every activation stays below `limit` elements (checked, so that a crafted
                // geometry cannot overflow the products that follow).
                var elements = 1
                for extent in shape {
                    let (product, overflow) = elements.multipliedReportingOverflow(by: extent)
                    guard extent >= 1, !overflow, product < limit else {
                        return "an activation of shape \(shape)"
                    }
                    elements = product
                }
                switch layer {
                case .dense(let inputs, let outputs), .lowRankDense(let inputs, let outputs, _):
                    guard shape == [inputs] else { return "takes [\(inputs)], gets \(shape)" }
                    guard outputs >= 1 && outputs < limit else { return "\(outputs) outputs" }
                case .convolution(let g, let outputs), .lowRankConvolution(let g, let outputs, _):
                    guard shape == [g.height, g.width, g.channels] else {
                        return "takes \([g.height, g.width, g.channels]), gets \(shape)"
                    }
                    guard g.kernelSize >= 1, g.kernelSize < 64, g.padding >= 0,
                        g.padding < g.kernelSize,
                        g.outputHeight >= 1, g.outputWidth >= 1, outputs >= 1, outputs < limit
                    else { return "bad geometry \(g) with \(outputs) outputs" }
                case .maxPool(let h, let w, let c):
                    guard shape == [h, w, c], h >= 2, w >= 2 else {
                        return "pools \([h, w, c]), gets \(shape)"
                    }
                case .relu, .flatten:
                    break
                }
                if let rank = layer.maxRank, let (outputs, inputs) = layer.matrixShape,
                    rank < 0 || rank > min(outputs, inputs)
                {
                    return "rank \(rank) outside 0…\(min(outputs, inputs))"
                }
                return nil
            }()
            if let problem { return "layer \(index) (\(layer.kindName)): \(problem)" }
            shape = layer.outputShape(inputShape: shape)
        }
        guard let floats = checkedParameterFloatCount, floats <= 1 << 30 else {
            return "more than 2^30 weights"
        }
        guard shape == [classCount] else {
            return "the network outputs \(shape), not [\(classCount)] classes"
        }
        return nil
    }
}
