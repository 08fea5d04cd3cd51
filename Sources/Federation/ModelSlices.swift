import LowRank
import Tensors

/// The part of a model one client holds: the first `budgets[l]` components of every LoD
/// layer's factors and every other parameter in full.
///
/// This is what a TRAIN message carries down and an UPDATE message carries back, and
/// what a client trains. `factors[l]` is `(up [k_l, outputs], down [k_l, inputs])`;
/// `shared` lists, in architecture order, the parameters that are not factors (biases of
/// LoD layers, weights and biases of dense layers).
public struct ModelSlice: Sendable, Equatable {
    public var budgets: [Int]
    public var factors: [FactorPair]
    public var shared: [Tensor]

    public init(budgets: [Int], factors: [FactorPair], shared: [Tensor]) {
        self.budgets = budgets
        self.factors = factors
        self.shared = shared
    }

    /// Number of float32 values the slice holds.
    public var scalarCount: Int {
        factors.reduce(0) { $0 + $1.up.count + $1.down.count } + shared.reduce(0) { $0 + $1.count }
    }

    /// Every tensor of the slice, factors first: the order they travel in.
    public var tensors: [Tensor] { factors.flatMap { [$0.up, $0.down] } + shared }
}

/// Which parameter tensors of an architecture are LoD factors and which are shared.
public struct ParameterLayout: Sendable, Equatable {
    /// For each LoD layer, the indices of its `up` and `down` tensors in `parameters`.
    public let factorIndices: [(up: Int, down: Int)]
    /// Indices of every other parameter tensor, in order.
    public let sharedIndices: [Int]

    public init(_ architecture: Architecture) {
        var factors: [(Int, Int)] = []
        var shared: [Int] = []
        let offsets = architecture.parameterOffsets
        for (index, layer) in architecture.layers.enumerated() {
            let p = offsets[index]
            let count = layer.parameterShapes.count
            if layer.isLowRank {
                factors.append((p, p + 1))
                shared += (p + 2)..<(p + count)
            } else {
                shared += p..<(p + count)
            }
        }
        factorIndices = factors
        sharedIndices = shared
    }

    public static func == (lhs: ParameterLayout, rhs: ParameterLayout) -> Bool {
        lhs.sharedIndices == rhs.sharedIndices
            && lhs.factorIndices.map { [$0.up, $0.down] }
                == rhs.factorIndices.map { [$0.up, $0.down] }
    }
}

extension Network {
    /// The slice a client with per-layer `budgets` receives (each `≤ keptRanks[l]`).
    ///
    /// With `frozenLayers`, the parameters of the first that many layers come with no rows
    /// (factors `[0, width]` at budget 0, shared tensors `[0, …]`): what a client that ran
    /// them forward only sends back.
    public func slice(budgets: [Int], frozenLayers: Int = 0) -> ModelSlice {
        precondition(
            budgets.count == keptRanks.count
                && zip(budgets, keptRanks).allSatisfy { $0 >= 0 && $0 <= $1 },
            "budgets \(budgets) vs kept ranks \(keptRanks)")
        let layout = ParameterLayout(architecture)
        let firstTrained = architecture.firstTrainedTensor(frozenLayers: frozenLayers)
        var kept = budgets
        let factors = layout.factorIndices.enumerated().map { l, indices in
            if indices.up < firstTrained { kept[l] = 0 }
            return FactorPair(
                up: parameters[indices.up].prefix(rows: kept[l]),
                down: parameters[indices.down].prefix(rows: kept[l]))
        }
        return ModelSlice(
            budgets: kept, factors: factors,
            shared: layout.sharedIndices.map {
                $0 < firstTrained ? parameters[$0].withoutRows : parameters[$0]
            })
    }

    /// The expected tensor shapes of the slice at `budgets` (and `frozenLayers`), factors
    /// first (as on the wire).
    public func sliceShapes(budgets: [Int], frozenLayers: Int = 0) -> [[Int]] {
        let layout = ParameterLayout(architecture)
        let firstTrained = architecture.firstTrainedTensor(frozenLayers: frozenLayers)
        var shapes: [[Int]] = []
        for (indices, k) in zip(layout.factorIndices, budgets) {
            let rows = indices.up < firstTrained ? 0 : k
            shapes.append([rows, parameters[indices.up].columns])
            shapes.append([rows, parameters[indices.down].columns])
        }
        return shapes
            + layout.sharedIndices.map {
                let shape = parameters[$0].shape
                return $0 < firstTrained ? [0] + shape.dropFirst() : shape
            }
    }

    /// A physically truncated network built from a slice: what a client trains.
    ///
    /// `architecture` is the global architecture; LoD layers get `maxRank = budgets[l]`.
    public init(architecture: Architecture, slice: ModelSlice) {
        var layers: [LayerSpec] = []
        var l = 0
        for layer in architecture.layers {
            switch layer {
            case .lowRankDense(let inputs, let outputs, _):
                layers.append(
                    .lowRankDense(inputs: inputs, outputs: outputs, maxRank: slice.budgets[l]))
                l += 1
            case .lowRankConvolution(let g, let outputs, _):
                layers.append(
                    .lowRankConvolution(geometry: g, outputs: outputs, maxRank: slice.budgets[l]))
                l += 1
            default:
                layers.append(layer)
            }
        }
        var truncated = architecture
        truncated.layers = layers
        let layout = ParameterLayout(truncated)
        var parameters = [Tensor](
            repeating: Tensor(zeros: [0]), count: truncated.parameterShapes.count)
        for (indices, pair) in zip(layout.factorIndices, slice.factors) {
            parameters[indices.up] = pair.up
            parameters[indices.down] = pair.down
        }
        for (index, tensor) in zip(layout.sharedIndices, slice.shared) {
            parameters[index] = tensor
        }
        self.init(architecture: truncated, parameters: parameters, keptRanks: slice.budgets)
    }
}

extension Tensor {
    /// The tensor's shape with no rows (`[0, …]`): a frozen parameter in an update.
    var withoutRows: Tensor { Tensor(zeros: [0] + shape.dropFirst()) }
}
