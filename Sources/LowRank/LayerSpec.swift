import Tensors

/// One layer of a feed-forward network, as a description: shapes only, no weights.
///
/// Every layer works on a batch laid out row-major with the batch axis first; images are
/// NHWC. Parameters live in `Network.parameters`, in layer order:
/// - `dense`: weight `[outputs, inputs]`, bias `[outputs]`.
/// - `lowRankDense` (LoD): up `Uᵀ` `[maxRank, outputs]`, down `Vᵀ` `[maxRank, inputs]`, bias.
/// - `convolution`: kernel `[outputs, k·k·channels]` (patch order ky, kx, channel), bias.
/// - `lowRankConvolution` (LoD): up `[maxRank, outputs]`, down `[maxRank, k·k·channels]`, bias.
/// - `batchNormalization`, `groupNormalization`: scale γ `[channels]`, shift β `[channels]`.
///
/// Batch normalisation's running mean and variance are state, not parameters: they live in
/// `Network.state` (mean `[channels]`, variance `[channels]` per batch-norm layer, in layer
/// order), are never touched by the optimiser, and are not part of a model slice.
///
/// A residual block is written flat, so that parameters stay in one well-defined layer
/// order: `residualStart`, the body's layers, `residualShortcut`, the shortcut's layers
/// (none: the identity), `residualEnd` (the sum of the body's and the shortcut's outputs).
/// Blocks nest.
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
    /// Batch normalisation of each channel of `[height, width, channels]` images (Ioffe and
    /// Szegedy 2015): the batch's statistics in training, the running ones in evaluation.
    case batchNormalization(channels: Int)
    /// Group normalisation (Wu and He 2018): each sample's channels in `groups` groups, each
    /// normalised over its channels and positions; per-channel scale and shift.
    case groupNormalization(channels: Int, groups: Int)
    /// `size×size` average pooling with stride `size` (edges that do not fill a window dropped).
    case averagePool(height: Int, width: Int, channels: Int, size: Int)
    /// The mean of each channel over all positions: `[height, width, channels]` → `[channels]`.
    case globalAveragePool(height: Int, width: Int, channels: Int)
    /// Opens a residual block: remembers its input.
    case residualStart
    /// Ends a residual block's body: what follows (the shortcut) runs on the block's input.
    case residualShortcut
    /// Closes a residual block: the body's output plus the shortcut's.
    case residualEnd

    /// ε under the variance of both normalisations.
    public static let normalizationEpsilon: Float = 1e-5
    /// Weight of a batch's statistics in batch normalisation's running averages.
    public static let batchNormalizationMomentum: Float = 0.1

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

    /// Whether the layer is one of a residual block's three markers.
    public var isResidualMarker: Bool {
        switch self {
        case .residualStart, .residualShortcut, .residualEnd: true
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
        case .batchNormalization(let c), .groupNormalization(let c, _): [[c], [c]]
        default: []
        }
    }

    /// Shapes of the layer's state tensors (running statistics): batch normalisation's mean
    /// and variance.
    public var stateShapes: [[Int]] {
        switch self {
        case .batchNormalization(let c): [[c], [c]]
        default: []
        }
    }

    /// Per-sample output shape given the per-sample input shape.
    ///
    /// `residualShortcut` outputs its block's input, which only the whole layer list knows
    /// (`Architecture.activationShapes`); here it passes its input through.
    public func outputShape(inputShape: [Int]) -> [Int] {
        switch self {
        case .dense(_, let outputs), .lowRankDense(_, let outputs, _): [outputs]
        case .convolution(let g, let outputs), .lowRankConvolution(let g, let outputs, _):
            [g.outputHeight, g.outputWidth, outputs]
        case .relu, .batchNormalization, .groupNormalization: inputShape
        case .residualStart, .residualShortcut, .residualEnd: inputShape
        case .maxPool(let h, let w, let c): [h / 2, w / 2, c]
        case .averagePool(let h, let w, let c, let size):
            size >= 1 ? [h / size, w / size, c] : [0, 0, c]
        case .globalAveragePool(_, _, let c): [c]
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
        case .batchNormalization: "batchnorm"
        case .groupNormalization: "groupnorm"
        case .averagePool: "avgpool"
        case .globalAveragePool: "global-avgpool"
        case .residualStart: "residual"
        case .residualShortcut: "shortcut"
        case .residualEnd: "add"
        }
    }
}
