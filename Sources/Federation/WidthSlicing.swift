import LowRank
import Tensors
import Vocabulary

/// The channel spaces of a dense architecture: the axes that width slicing cuts together.
///
/// Every hidden weight layer's output (a convolution's channels, a dense layer's units) is a
/// space; what follows it (activations, normalisations, poolings, a flatten) stays in that
/// space until the next weight layer. The input's channels and the output classes are never
/// sliced (`isFixed`). A residual block adds its body's output to its shortcut's, so the two
/// are one space: with an identity shortcut the block's input space is tied to its output,
/// with a projection shortcut the projection's output is tied to the body's.
///
/// A flatten turns `[H, W, C]` into `H·W·C` inputs with the channel innermost: a dense layer
/// after it keeps, of each of the `H·W` positions, the kept channels.
public struct ChannelSpaces: Sendable, Equatable {
    /// The architecture analysed (dense layers only).
    public let architecture: Architecture
    /// Channels (units) of each space.
    public let sizes: [Int]
    /// Whether a space is never sliced: the input's channels, the output classes, and
    /// any space tied to them.
    public let isFixed: [Bool]
    /// Per layer, the space of its input's channel axis.
    let inputSpace: [Int]
    /// Per layer, how many positions its input repeats the channel axis over: `H·W` for a
    /// dense layer after a flatten, 1 otherwise.
    let inputPositions: [Int]
    /// Per layer, the space of its output's channel axis.
    let outputSpace: [Int]

    /// Why width slicing cannot apply to an architecture.
    public enum Problem: Error, Equatable, CustomStringConvertible {
        /// The architecture has LoD layers (width slicing applies to dense models).
        case lowRankLayer(index: Int)
        /// The layer list is not consistent (`Architecture.inconsistency`).
        case inconsistent(String)

        public var description: String {
            switch self {
            case .lowRankLayer(let index):
                "layer \(index) is a LoD layer: width slicing applies to dense models"
            case .inconsistent(let reason): "the architecture is inconsistent: \(reason)"
            }
        }
    }

    /// Analyses a dense, consistent architecture.
    public init(_ architecture: Architecture) throws(Problem) {
        if let reason = architecture.inconsistency { throw .inconsistent(reason) }
        if let index = architecture.layers.firstIndex(where: \.isLowRank) {
            throw .lowRankLayer(index: index)
        }
        let shapes = architecture.activationShapes
        var parent: [Int] = [0]
        var sizes = [architecture.inputShape.last ?? 1]
        func find(_ space: Int) -> Int {
            var space = space
            while parent[space] != space { space = parent[space] }
            return space
        }
        func newSpace(size: Int) -> Int {
            parent.append(parent.count)
            sizes.append(size)
            return parent.count - 1
        }
        var (space, positions) = (0, 1)
        var blocks: [(input: (Int, Int), body: (Int, Int)?)] = []
        var (inputs, inputPositions, outputs) = ([Int](), [Int](), [Int]())
        for (index, layer) in architecture.layers.enumerated() {
            inputs.append(space)
            inputPositions.append(positions)
            switch layer {
            case .dense(_, let units):
                (space, positions) = (newSpace(size: units), 1)
            case .convolution(_, let channels):
                (space, positions) = (newSpace(size: channels), 1)
            case .flatten:
                let shape = shapes[index]
                if shape.count == 3 { positions *= shape[0] * shape[1] }
            case .globalAveragePool:
                positions = 1
            case .residualStart:
                blocks.append(((space, positions), nil))
            case .residualShortcut:
                blocks[blocks.count - 1].body = (space, positions)
                (space, positions) = blocks[blocks.count - 1].input
            case .residualEnd:
                let block = blocks.removeLast()
                let body = find(block.body!.0)
                let shortcut = find(space)
                if body != shortcut { parent[max(body, shortcut)] = min(body, shortcut) }
                space = min(body, shortcut)
            default:
                break
            }
            outputs.append(space)
        }
        // Renumber the roots 0, 1, … in order of first appearance.
        let fixedRoots = Set([find(0), find(space)])
        var number: [Int: Int] = [:]
        var (spaceSizes, fixed) = ([Int](), [Bool]())
        func canonical(_ space: Int) -> Int {
            let root = find(space)
            if let n = number[root] { return n }
            number[root] = spaceSizes.count
            spaceSizes.append(sizes[root])
            fixed.append(fixedRoots.contains(root))
            return spaceSizes.count - 1
        }
        _ = canonical(0)
        self.inputSpace = inputs.map(canonical)
        self.outputSpace = outputs.map(canonical)
        self.inputPositions = inputPositions
        self.architecture = architecture
        self.sizes = spaceSizes
        self.isFixed = fixed
    }

    /// The kept channels of every space at width fraction `fraction`: the first
    /// `⌈fraction · c⌉` of each sliced space (HeteroFL, FjORD), every channel of a fixed one.
    public func prefix(fraction: Double) -> [[Int]] {
        sizes.indices.map { s in
            Array(0..<(isFixed[s] ? sizes[s] : RankBudget.rank(fraction: fraction, of: sizes[s])))
        }
    }

    /// The kept channels of every space in a rolling window (FedRolex): `⌈fraction · c⌉`
    /// channels starting at `offset mod c`, wrapping past the last one, in increasing
    /// order; every channel of a fixed space.
    public func rollingWindow(fraction: Double, offset: Int) -> [[Int]] {
        sizes.indices.map { s in
            let c = sizes[s]
            guard !isFixed[s] else { return Array(0..<c) }
            let count = RankBudget.rank(fraction: fraction, of: c)
            let start = ((offset % c) + c) % c
            return (0..<count).map { (start + $0) % c }.sorted()
        }
    }

    /// Group normalisation over `kept` of a layer's `channels` channels in `groups` groups:
    /// the full layer's group size `g = channels / groups` is kept, so the sub-layer has
    /// `⌊kept / g⌋` groups (at least 1), lowered to the nearest count that divides `kept`.
    /// A prefix whose width is a multiple of `g` normalises exactly the full layer's first
    /// groups; a narrower one normalises its channels as one group.
    public static func groups(channels: Int, groups: Int, kept: Int) -> Int {
        let size = max(1, channels / max(groups, 1))
        var count = max(1, kept / size)
        while kept % count != 0 { count -= 1 }
        return count
    }

    /// The architecture with every space cut to `widths[s]` channels (the same layers).
    public func subArchitecture(widths: [Int]) -> Architecture {
        precondition(
            widths.count == sizes.count, "\(widths.count) widths for \(sizes.count) spaces")
        var layers: [LayerSpec] = []
        for (index, layer) in architecture.layers.enumerated() {
            let input = widths[inputSpace[index]]
            let output = widths[outputSpace[index]]
            switch layer {
            case .dense:
                layers.append(.dense(inputs: inputPositions[index] * input, outputs: output))
            case .convolution(var g, _):
                g.channels = input
                layers.append(.convolution(geometry: g, outputs: output))
            case .maxPool(let h, let w, _):
                layers.append(.maxPool(height: h, width: w, channels: input))
            case .averagePool(let h, let w, _, let size):
                layers.append(.averagePool(height: h, width: w, channels: input, size: size))
            case .globalAveragePool(let h, let w, _):
                layers.append(.globalAveragePool(height: h, width: w, channels: input))
            case .batchNormalization:
                layers.append(.batchNormalization(channels: input))
            case .groupNormalization(let c, let g):
                layers.append(
                    .groupNormalization(
                        channels: input, groups: Self.groups(channels: c, groups: g, kept: input)))
            default:
                layers.append(layer)
            }
        }
        var sub = architecture
        sub.layers = layers
        return sub
    }

    /// The widths of a sub-architecture whose parameters have `shapes` (a TRAIN message's
    /// dense tensors), or why they are not those of any width slice of this architecture.
    public func widths(parameterShapes shapes: [[Int]]) -> Result<[Int], WidthShapeError> {
        var widths = sizes
        var seen = isFixed
        let offsets = architecture.parameterOffsets
        guard shapes.count == architecture.parameterShapes.count else {
            return .failure(
                WidthShapeError(
                    reason: "\(shapes.count) tensors, the model has "
                        + "\(architecture.parameterShapes.count)"
                ))
        }
        for (index, layer) in architecture.layers.enumerated() where layer.isLinear {
            let space = outputSpace[index]
            guard let outputs = shapes[offsets[index]].first else { continue }
            guard outputs >= 1, outputs <= sizes[space] else {
                return .failure(
                    WidthShapeError(
                        reason: "layer \(index) has \(outputs) outputs, at most \(sizes[space])"))
            }
            if seen[space], widths[space] != outputs {
                return .failure(
                    WidthShapeError(
                        reason: "layer \(index) has \(outputs) outputs, its channel space "
                            + "\(widths[space])"
                    ))
            }
            (widths[space], seen[space]) = (outputs, true)
        }
        let expected = subArchitecture(widths: widths).parameterShapes
        guard expected == shapes else {
            return .failure(
                WidthShapeError(reason: "shapes \(shapes) differ from the slice's \(expected)"))
        }
        return .success(widths)
    }

    /// Per parameter tensor of the architecture, the flat indices into it of the entries a
    /// slice keeping channels `kept[s]` of each space holds, in the sub-tensor's row-major
    /// order.
    ///
    /// A weight `[outputs, inputs]` keeps the rows of its kept outputs and the columns of
    /// its kept inputs: for a dense layer after a flatten, position by position the kept
    /// channels; for a convolution's patch (ky, kx, channel), kernel tap by tap the kept
    /// channels. Biases and normalisation parameters keep their channels' entries.
    public func parameterIndices(kept: [[Int]]) -> [[Int]] {
        precondition(kept.count == sizes.count, "\(kept.count) keep-sets for \(sizes.count)")
        var indices: [[Int]] = []
        for (index, layer) in architecture.layers.enumerated() {
            let input = kept[inputSpace[index]]
            let output = kept[outputSpace[index]]
            let inputChannels = sizes[inputSpace[index]]
            func matrix(columns: [Int], width: Int) -> [Int] {
                output.flatMap { row in columns.map { row * width + $0 } }
            }
            switch layer {
            case .dense(let inputs, _):
                let columns = (0..<inputPositions[index]).flatMap { p in
                    input.map { p * inputChannels + $0 }
                }
                indices += [matrix(columns: columns, width: inputs), output]
            case .convolution(let g, _):
                let columns = (0..<(g.kernelSize * g.kernelSize)).flatMap { tap in
                    input.map { tap * inputChannels + $0 }
                }
                indices += [matrix(columns: columns, width: g.patchSize), output]
            case .batchNormalization, .groupNormalization:
                indices += [input, input]
            default:
                break
            }
        }
        return indices
    }
}

/// Why a received set of dense tensors is not a width slice of the model.
public struct WidthShapeError: Error, Equatable, CustomStringConvertible {
    public let reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// One width slice of a dense model: which channels of every space it keeps, the
/// sub-architecture it makes and, per parameter tensor, where its entries come from.
///
/// The sub-model is an ordinary dense model: a client trains it as such. `gather` cuts it
/// out of the full parameters (what TRAIN carries); an update of the same shapes is summed
/// back into place by `WidthAggregation`.
public struct WidthPlan: Sendable, Equatable {
    public let spaces: ChannelSpaces
    /// Kept channels of each space (indices into the full space, increasing).
    public let kept: [[Int]]
    /// The sub-architecture: every space cut to its kept channels.
    public let subArchitecture: Architecture
    /// Per parameter tensor, the flat indices into the full tensor of the sub-tensor's entries.
    public let parameterIndices: [[Int]]

    /// The slice keeping `kept[s]` of each space of `spaces`.
    ///
    /// `groupsFrom`, when `spaces` are those of a slice (a client's model), are the full
    /// model's spaces: group normalisation then takes its group count from the full layer's
    /// group size (``ChannelSpaces/groups(channels:groups:kept:)``), as the server's slice of
    /// the same width does, rather than from the slice's own layer.
    public init(spaces: ChannelSpaces, kept: [[Int]], groupsFrom full: ChannelSpaces? = nil) {
        precondition(
            zip(kept, spaces.sizes).allSatisfy { set, size in
                !set.isEmpty && set.allSatisfy { $0 >= 0 && $0 < size }
            }, "keep-sets outside their spaces")
        self.spaces = spaces
        self.kept = kept
        let widths = kept.map(\.count)
        subArchitecture = (full ?? spaces).subArchitecture(widths: widths)
        precondition(
            subArchitecture.parameterShapes
                == spaces.subArchitecture(widths: widths).parameterShapes,
            "the full model's spaces do not match the slice's")
        parameterIndices = spaces.parameterIndices(kept: kept)
    }

    /// The prefix slice at width fraction `fraction` (HeteroFL, FjORD, a tier's deployed model).
    public static func prefix(_ spaces: ChannelSpaces, fraction: Double) -> WidthPlan {
        WidthPlan(spaces: spaces, kept: spaces.prefix(fraction: fraction))
    }

    /// The sub-model's parameters cut out of the full model's `parameters`.
    public func gather(_ parameters: [Tensor]) -> [Tensor] {
        let shapes = subArchitecture.parameterShapes
        return zip(parameterIndices, zip(parameters, shapes)).map { indices, pair in
            let (full, shape) = pair
            return full.scalars.withUnsafeBufferPointer { values in
                Tensor(shape: shape, scalars: indices.map { values[$0] })
            }
        }
    }

    /// Writes a sub-model's parameters (the plan's sub-shapes) back into their places in the
    /// full model's `parameters`; the entries the plan does not hold keep their values.
    public func scatter(_ tensors: [Tensor], into parameters: inout [Tensor]) {
        precondition(
            tensors.map(\.shape) == subArchitecture.parameterShapes,
            "slice shapes \(tensors.map(\.shape)) vs \(subArchitecture.parameterShapes)")
        for (t, indices) in parameterIndices.enumerated() {
            tensors[t].scalars.withUnsafeBufferPointer { x in
                parameters[t].scalars.withUnsafeMutableBufferPointer { full in
                    for (j, target) in indices.enumerated() { full[target] = x[j] }
                }
            }
        }
    }

    /// The sub-model of `network` (a dense network of the plan's full architecture).
    public func gather(_ network: Network) -> Network {
        precondition(network.architecture == spaces.architecture, "another architecture")
        var state: [Tensor]? = nil
        if !network.state.isEmpty {
            // Batch normalisation's running statistics follow their channels.
            var gathered: [Tensor] = []
            var next = 0
            for (index, layer) in spaces.architecture.layers.enumerated() {
                guard case .batchNormalization = layer else { continue }
                let channels = kept[spaces.inputSpace[index]]
                for _ in 0..<2 {
                    let full = network.state[next]
                    gathered.append(
                        Tensor(shape: [channels.count], scalars: channels.map { full.scalars[$0] }))
                    next += 1
                }
            }
            state = gathered
        }
        return Network(
            architecture: subArchitecture, parameters: gather(network.parameters), keptRanks: [],
            state: state)
    }

    /// Floats the sub-model holds.
    public var scalarCount: Int { parameterIndices.reduce(0) { $0 + $1.count } }
}

/// Averages width slices over the clients that hold each weight (HeteroFL's rule).
///
/// Each entry of the full model is the mean, weighted by sample count, of the values of
/// the clients whose slice holds it; an entry no client held keeps its value (zero
/// pseudo-gradient). Sums run in double precision in the order slices are added (client-ID
/// order in a round), so the result does not depend on the order updates arrived in.
public struct WidthAggregation: Sendable {
    private var sums: [[Double]]
    private var weights: [[Double]]

    public init(parameterShapes: [[Int]]) {
        sums = parameterShapes.map { [Double](repeating: 0, count: $0.reduce(1, *)) }
        weights = sums
    }

    /// Adds one client's trained sub-model (`tensors`, in the plan's sub-shapes) with weight
    /// `weight` (its sample count).
    public mutating func add(_ tensors: [Tensor], plan: WidthPlan, weight: Double) {
        precondition(
            tensors.map(\.shape) == plan.subArchitecture.parameterShapes,
            "slice shapes \(tensors.map(\.shape)) vs \(plan.subArchitecture.parameterShapes)")
        for (t, indices) in plan.parameterIndices.enumerated() {
            tensors[t].scalars.withUnsafeBufferPointer { x in
                for (j, target) in indices.enumerated() {
                    sums[t][target] += weight * Double(x[j])
                    weights[t][target] += weight
                }
            }
        }
    }

    /// How many entries of each tensor some added slice held.
    public var coveredCounts: [Int] { weights.map { $0.reduce(0) { $0 + ($1 > 0 ? 1 : 0) } } }

    /// The pseudo-gradient `Δ = global − aggregate` (0 where no slice held the entry).
    public func pseudoGradient(global: [Tensor]) -> [Tensor] {
        global.indices.map { t in
            global[t].scalars.withUnsafeBufferPointer { g in
                var delta = [Float](repeating: 0, count: g.count)
                for j in 0..<g.count where weights[t][j] > 0 {
                    delta[j] = Float(Double(g[j]) - sums[t][j] / weights[t][j])
                }
                return Tensor(shape: global[t].shape, scalars: delta)
            }
        }
    }
}
