import Tensors

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
        case .lenet where inputShape.count != 3 || inputShape.contains { $0 < 5 }:
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
    ///
    /// A `residualShortcut` outputs its block's input shape. (On an unbalanced list, which
    /// `inconsistency` refuses, a marker without its block passes its input through.)
    public var activationShapes: [[Int]] {
        var shapes = [inputShape]
        var blockInputs: [[Int]] = []
        for layer in layers {
            let input = shapes.last!
            switch layer {
            case .residualStart:
                blockInputs.append(input)
                shapes.append(input)
            case .residualShortcut:
                shapes.append(blockInputs.last ?? input)
            case .residualEnd:
                _ = blockInputs.popLast()
                shapes.append(input)
            default:
                shapes.append(layer.outputShape(inputShape: input))
            }
        }
        return shapes
    }

    /// For each layer, how many residual blocks enclose it (a block's markers count as inside
    /// it): a layer list may be cut at a depth-0 layer without splitting a block.
    public var residualDepths: [Int] {
        var depth = 0
        return layers.map { layer in
            if case .residualStart = layer { depth += 1 }
            defer { if case .residualEnd = layer { depth -= 1 } }
            return depth
        }
    }

    /// For a residual marker at `index`, the index of its block's `residualStart` and of its
    /// `residualShortcut` (`nil` for other layers or an unbalanced list).
    public func residualBlock(containing index: Int) -> (start: Int, shortcut: Int)? {
        guard layers.indices.contains(index), layers[index].isResidualMarker else { return nil }
        var open: [(start: Int, shortcut: Int?)] = []
        for (i, layer) in layers.enumerated() {
            switch layer {
            case .residualStart: open.append((i, nil))
            case .residualShortcut:
                guard !open.isEmpty else { return nil }
                open[open.count - 1].shortcut = i
            case .residualEnd:
                guard let block = open.popLast() else { return nil }
                if i == index || block.start == index || block.shortcut == index {
                    return block.shortcut.map { (block.start, $0) }
                }
            default: break
            }
        }
        return nil
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

    /// Shapes of all state tensors (batch normalisation's running statistics), in order.
    public var stateShapes: [[Int]] { layers.flatMap(\.stateShapes) }

    /// Index of the first state tensor of each layer in `Network.state`.
    public var stateOffsets: [Int] {
        var offsets: [Int] = []
        var next = 0
        for layer in layers {
            offsets.append(next)
            next += layer.stateShapes.count
        }
        return offsets
    }

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
    public var checkedParameterFloatCount: Int? { Self.checkedFloatCount(parameterShapes) }

    /// Floats in all state tensors together (`checkedParameterFloatCount`'s guard).
    public var checkedStateFloatCount: Int? { Self.checkedFloatCount(stateShapes) }

    private static func checkedFloatCount(_ shapes: [[Int]]) -> Int? {
        var total = 0
        for shape in shapes {
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
        // Per open residual block: its input shape and its body's output shape (once known).
        var blocks: [(input: [Int], body: [Int]?)] = []
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
                        g.padding < g.kernelSize, g.stride >= 1, g.stride < 64,
                        g.outputHeight >= 1, g.outputWidth >= 1, outputs >= 1, outputs < limit
                    else { return "bad geometry \(g) with \(outputs) outputs" }
                case .maxPool(let h, let w, let c):
                    guard shape == [h, w, c], h >= 2, w >= 2 else {
                        return "pools \([h, w, c]), gets \(shape)"
                    }
                case .batchNormalization(let c), .groupNormalization(let c, _):
                    guard shape.count == 3, shape[2] == c else {
                        return "normalises images of \(c) channels, gets \(shape)"
                    }
                    if case .groupNormalization(_, let groups) = layer,
                        groups < 1 || c % groups != 0
                    {
                        return "\(groups) groups do not divide \(c) channels"
                    }
                case .averagePool(let h, let w, let c, let size):
                    guard shape == [h, w, c], size >= 1, size <= min(h, w) else {
                        return "pools \([h, w, c]) by \(size), gets \(shape)"
                    }
                case .globalAveragePool(let h, let w, let c):
                    guard shape == [h, w, c] else { return "pools \([h, w, c]), gets \(shape)" }
                case .residualStart:
                    guard blocks.count < 64 else { return "residual blocks nested too deep" }
                    blocks.append((shape, nil))
                case .residualShortcut:
                    guard let block = blocks.last, block.body == nil else {
                        return "a shortcut outside a residual block's body"
                    }
                    blocks[blocks.count - 1].body = shape
                case .residualEnd:
                    guard let block = blocks.popLast(), let body = block.body else {
                        return "a residual block closed without its shortcut marker"
                    }
                    guard body == shape else {
                        return "adds a body output \(body) to a shortcut output \(shape)"
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
            if case .residualShortcut = layer, let input = blocks.last?.input {
                shape = input
            } else {
                shape = layer.outputShape(inputShape: shape)
            }
        }
        guard blocks.isEmpty else { return "a residual block is never closed" }
        guard let floats = checkedParameterFloatCount, floats <= 1 << 30 else {
            return "more than 2^30 weights"
        }
        guard shape == [classCount] else {
            return "the network outputs \(shape), not [\(classCount)] classes"
        }
        return nil
    }
}
