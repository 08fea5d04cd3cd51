import Tensors

/// The shapes of one LoD layer's factor pair.
public struct FactorShape: Sendable, Hashable {
    /// Shape of `FactorPair.up`, normally `[k, outputs]`.
    public var up: [Int]
    /// Shape of `FactorPair.down`, normally `[k, inputs]`.
    public var down: [Int]

    public init(up: [Int], down: [Int]) {
        self.up = up
        self.down = down
    }

    /// The shapes of a layer with `outputs × inputs` weights truncated to `rank` components.
    public init(rank: Int, outputs: Int, inputs: Int) {
        self.init(up: [rank, outputs], down: [rank, inputs])
    }
}

/// The tensor shapes a message must carry: one ``FactorShape`` per LoD layer and one shape
/// per shared tensor.
public struct PayloadShapes: Sendable, Hashable {
    public var factors: [FactorShape]
    public var shared: [[Int]]

    public init(factors: [FactorShape], shared: [[Int]]) {
        self.factors = factors
        self.shared = shared
    }

    /// The shapes of tensors that were sent, which the reply must match (an `update`
    /// answers a `train` with the same shapes).
    public init(of factors: [FactorPair], shared: [Tensor]) {
        self.factors = factors.map { FactorShape(up: $0.up.shape, down: $0.down.shape) }
        self.shared = shared.map(\.shape)
    }
}

extension WireCodec {
    /// Checks decoded tensors against the shapes the receiver expects, in order: counts,
    /// then each tensor's shape, then (if `requireFinite`) that every element is finite.
    ///
    /// Throws the first problem found: ``WireError/factorCountMismatch(expected:got:)``,
    /// ``WireError/sharedCountMismatch(expected:got:)``,
    /// ``WireError/shapeMismatch(layer:expected:got:)`` or
    /// ``WireError/nonFiniteValue(layer:index:)``.
    public static func validate(
        factors: [FactorPair], shared: [Tensor], against expected: PayloadShapes,
        requireFinite: Bool = true
    ) throws(WireError) {
        guard factors.count == expected.factors.count else {
            throw .factorCountMismatch(expected: expected.factors.count, got: factors.count)
        }
        guard shared.count == expected.shared.count else {
            throw .sharedCountMismatch(expected: expected.shared.count, got: shared.count)
        }
        for (layer, (pair, shape)) in zip(factors, expected.factors).enumerated() {
            try check(pair.up, .up(layer: layer), shape.up, requireFinite)
            try check(pair.down, .down(layer: layer), shape.down, requireFinite)
        }
        for (index, (tensor, shape)) in zip(shared, expected.shared).enumerated() {
            try check(tensor, .shared(index: index), shape, requireFinite)
        }
    }

    private static func check(
        _ tensor: Tensor, _ slot: TensorSlot, _ shape: [Int], _ requireFinite: Bool
    ) throws(WireError) {
        guard tensor.shape == shape else {
            throw .shapeMismatch(layer: slot, expected: shape, got: tensor.shape)
        }
        guard requireFinite else { return }
        let firstNonFinite = tensor.scalars.withUnsafeBufferPointer { values -> Int? in
            // Branch-free scan; the index is searched for only if something was found.
            var allFinite = true
            for value in values { allFinite = allFinite && value.isFinite }
            return allFinite ? nil : values.firstIndex { !$0.isFinite }
        }
        if let index = firstNonFinite { throw .nonFiniteValue(layer: slot, index: index) }
    }
}
