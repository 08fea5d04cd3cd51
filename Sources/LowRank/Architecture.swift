import Tensors
import Vocabulary

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
    /// dense (0: every weight layer is factored). The preset must fit `inputShape`
    /// (`ModelKind.problem(inputShape:)`); built from its description, see
    /// `init(description:…)`.
    public static func make(
        _ kind: ModelKind, lowRank: Bool, inputShape: [Int] = [28, 28, 1], classCount: Int = 10,
        factoredMinimumWeights: Int = 0, normalization: Normalization = .presetDefault
    ) -> Architecture {
        do {
            return try Architecture(
                name: kind.rawValue, layers: kind.layers(normalization: normalization),
                inputShape: inputShape, classCount: classCount, lowRank: lowRank,
                factoredMinimumWeights: factoredMinimumWeights)
        } catch {
            preconditionFailure("\(kind.rawValue) on \(inputShape): \(error)")
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
