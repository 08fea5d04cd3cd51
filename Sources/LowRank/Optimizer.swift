import Tensors

/// Stochastic gradient descent with heavy-ball momentum and decoupled-from-nothing
/// (classic L2) weight decay: `v ← μ·v + (g + wd·w)`, `w ← w − η·v`.
public struct SGD: Sendable, Equatable {
    public var momentum: Float
    public var weightDecay: Float
    /// Momentum buffers, one per parameter tensor.
    public private(set) var velocities: [Tensor]

    public init(for parameters: [Tensor], momentum: Float = 0.9, weightDecay: Float = 1e-4) {
        self.momentum = momentum
        self.weightDecay = weightDecay
        velocities = parameters.map { Tensor(zeros: $0.shape) }
    }

    /// Applies one step with learning rate `learningRate · scales[i]` for tensor `i`.
    public mutating func update(
        _ parameters: inout [Tensor], along gradients: [Tensor], learningRate: Float,
        scales: [Float]? = nil
    ) {
        Self.step(
            &parameters, velocities: &velocities, along: gradients, learningRate: learningRate,
            momentum: momentum, weightDecay: weightDecay, scales: scales)
    }

    /// One step of the same rule on buffers the caller keeps (`velocities`, one per tensor):
    /// what ``update(_:along:learningRate:scales:)`` does with its own.
    public static func step(
        _ parameters: inout [Tensor], velocities: inout [Tensor], along gradients: [Tensor],
        learningRate: Float, momentum: Float, weightDecay: Float, scales: [Float]? = nil
    ) {
        precondition(
            parameters.count == gradients.count && parameters.count == velocities.count,
            "tensor counts differ")
        let (mu, decay) = (momentum, weightDecay)
        for i in parameters.indices {
            let rate = learningRate * (scales?[i] ?? 1)
            parameters[i].scalars.withUnsafeMutableBufferPointer { w in
                velocities[i].scalars.withUnsafeMutableBufferPointer { v in
                    gradients[i].scalars.withUnsafeBufferPointer { g in
                        for j in 0..<w.count {
                            let velocity = mu * v[j] + g[j] + decay * w[j]
                            v[j] = velocity
                            w[j] -= rate * velocity
                        }
                    }
                }
            }
        }
    }

    /// Zeroes the momentum of rows `from...` of tensor `index` (components cut by shrinking).
    public mutating func resetRows(ofTensor index: Int, from row: Int) {
        let width = velocities[index].shape.dropFirst().reduce(1, *)
        velocities[index].scalars.withUnsafeMutableBufferPointer { v in
            for j in (row * width)..<v.count { v[j] = 0 }
        }
    }
}
