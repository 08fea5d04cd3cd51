import Tensors
import Vocabulary

/// How the weights of a new network are drawn.
public enum Initialization: String, Sendable, Codable, CaseIterable {
    /// He (Kaiming) normal: `N(0, 2/fan_in)`, the output layer with gain 1; zero biases.
    case he
    /// The common framework default: `U(±1/√fan_in)` weights and biases (Var = 1/(3·fan_in)).
    case uniform
}

/// How a LoD layer's factors are made from the initial dense weight.
public enum Factorization: String, Sendable, Codable, CaseIterable {
    /// SVD of the dense initial weight with `√σᵢ` on each side: `UᵀV = W` exactly.
    case svd
    /// Independent random factors scaled so that `Uᵀ V` has the dense initial variance.
    case random
}

/// A network's architecture with its weights and, for LoD layers, the kept rank.
///
/// `keptRanks[l]` is the number of leading components of the `l`-th LoD layer that are
/// alive after progressive shrinking; components beyond it are masked (zeroed and frozen)
/// during training and dropped at export.
///
/// `state` holds what is not trained by gradient: batch normalisation's running mean and
/// variance (`Architecture.stateShapes`), which evaluation normalises with.
public struct Network: Sendable, Equatable {
    public private(set) var architecture: Architecture
    public var parameters: [Tensor]
    public var keptRanks: [Int]
    public var state: [Tensor]

    /// Wraps existing weights; shapes must match the architecture. Without `state`, running
    /// statistics start at mean 0 and variance 1.
    public init(
        architecture: Architecture, parameters: [Tensor], keptRanks: [Int], state: [Tensor]? = nil
    ) {
        let shapes = architecture.parameterShapes
        precondition(
            parameters.map(\.shape) == shapes, "parameters \(parameters.map(\.shape)) vs \(shapes)")
        let state = state ?? architecture.initialState
        precondition(
            state.map(\.shape) == architecture.stateShapes,
            "state \(state.map(\.shape)) vs \(architecture.stateShapes)")
        self.state = state
        let maxRanks = architecture.lowRankLayerIndices.map { architecture.layers[$0].maxRank! }
        precondition(
            keptRanks.count == maxRanks.count
                && zip(keptRanks, maxRanks).allSatisfy { $0 >= 0 && $0 <= $1 },
            "kept ranks \(keptRanks) vs max ranks \(maxRanks)")
        self.architecture = architecture
        self.parameters = parameters
        self.keptRanks = keptRanks
    }

    /// A freshly initialised network. LoD layers are factored from a dense initial weight.
    public init(
        architecture: Architecture, initialization: Initialization = .he,
        factorization: Factorization = .svd, using generator: inout some RandomNumberGenerator
    ) {
        var parameters: [Tensor] = []
        let lastLinear = architecture.linearLayerIndices.last
        for (index, layer) in architecture.layers.enumerated() {
            guard let (outputs, inputs) = layer.matrixShape else {
                // Normalisations start as the identity, scale 1 and shift 0: no draws.
                let shapes = layer.parameterShapes
                if shapes.count == 2 {
                    parameters += [
                        Tensor(repeating: 1, shape: shapes[0]), Tensor(zeros: shapes[1]),
                    ]
                }
                continue
            }
            let gain: Float = index == lastLinear ? 1 : 2
            let dense: Tensor
            var bias = Tensor(zeros: [outputs])
            switch initialization {
            case .he:
                dense = Tensor.randomNormal(
                    shape: [outputs, inputs],
                    standardDeviation: (gain / Float(inputs)).squareRoot(),
                    using: &generator)
            case .uniform:
                let bound = 1 / Float(inputs).squareRoot()
                dense = Tensor.randomUniform(
                    shape: [outputs, inputs], in: -bound...bound, using: &generator)
                bias = Tensor.randomUniform(shape: [outputs], in: -bound...bound, using: &generator)
            }
            guard let rank = layer.maxRank else {
                parameters += [dense, bias]
                continue
            }
            let (up, down) = Network.factor(
                dense, rank: rank, factorization: factorization, using: &generator)
            parameters += [up, down, bias]
        }
        let keptRanks = architecture.lowRankLayerIndices.map { architecture.layers[$0].maxRank! }
        self.init(architecture: architecture, parameters: parameters, keptRanks: keptRanks)
    }

    /// LoD factors `(Uᵀ [r, out], Vᵀ [r, in])` of a dense weight `[out, in]`.
    static func factor(
        _ weight: Tensor, rank: Int, factorization: Factorization,
        using generator: inout some RandomNumberGenerator
    ) -> (up: Tensor, down: Tensor) {
        let (outputs, inputs) = (weight.rows, weight.columns)
        switch factorization {
        case .svd:
            // Weights drawn from a normal or uniform law are finite: the SVD cannot fail.
            guard let svd = try? singularValueDecomposition(weight) else {
                preconditionFailure("SVD of a finite initial weight failed")
            }
            var up = Tensor(zeros: [rank, outputs])
            var down = Tensor(zeros: [rank, inputs])
            for i in 0..<rank {
                let scale = svd.singularValues[i].squareRoot()
                for o in 0..<outputs { up[i, o] = svd.u[o, i] * scale }
                for j in 0..<inputs { down[i, j] = svd.vt[i, j] * scale }
            }
            return (up, down)
        case .random:
            // Var(Σᵢ uᵢvᵢ) = r·σ⁴ = Var(W) ⇒ σ² = std(W)/√r.
            var variance = 0.0
            for v in weight.scalars { variance += Double(v) * Double(v) }
            variance /= Double(max(weight.count, 1))
            let deviation = Float((variance.squareRoot() / Double(rank).squareRoot()).squareRoot())
            return (
                Tensor.randomNormal(
                    shape: [rank, outputs], standardDeviation: deviation, using: &generator),
                Tensor.randomNormal(
                    shape: [rank, inputs], standardDeviation: deviation, using: &generator)
            )
        }
    }

    /// Number of LoD layers.
    public var lowRankLayerCount: Int { keptRanks.count }

    /// Current maximal rank of each LoD layer (rows of its factors).
    public var maxRanks: [Int] {
        architecture.lowRankLayerIndices.map { architecture.layers[$0].maxRank! }
    }

    /// Per-layer ranks `ceil(p · kept)` (at least 1 where anything is kept) for a rank fraction `p`.
    public func ranks(atFraction fraction: Double) -> [Int] {
        keptRanks.map { RankBudget.rank(fraction: fraction, of: $0) }
    }

    /// Index of the first parameter tensor of layer `layerIndex`.
    public func parameterOffset(ofLayer layerIndex: Int) -> Int {
        architecture.parameterOffsets[layerIndex]
    }
}

extension Architecture {
    /// Running statistics before any batch: per batch-norm layer, mean 0 and variance 1.
    public var initialState: [Tensor] {
        layers.flatMap { layer in
            let shapes = layer.stateShapes
            return shapes.count == 2
                ? [Tensor(zeros: shapes[0]), Tensor(repeating: 1, shape: shapes[1])] : []
        }
    }
}
