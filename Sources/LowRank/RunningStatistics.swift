import Tensors

/// Batch normalisation's running statistics: how training keeps them, and how they are
/// recomputed for one rank budget.
///
/// A nested (LoD) model runs at many ranks, and the statistics of a layer's input depend on
/// the ranks of the layers before it; running averages kept while training samples ranks
/// mix them all. `recalibrated(on:ranks:batchSize:)` recomputes them at one budget, as the
/// paper does after shrinking: evaluate (or deploy) a budget with its own statistics.
extension Network {
    /// Folds the batch statistics a training pass used into the running averages:
    /// `r ← (1 − m)·r + m·s`, with `m = LayerSpec.batchNormalizationMomentum` and the
    /// variance made unbiased (`·L/(L − 1)` for `L` values per channel). A pass that used
    /// the running statistics, or a network without batch normalisation, changes nothing.
    public mutating func updateRunningStatistics(from pass: ForwardPass) {
        guard pass.usesBatchStatistics, !state.isEmpty else { return }
        let momentum = LayerSpec.batchNormalizationMomentum
        let offsets = architecture.stateOffsets
        let shapes = architecture.activationShapes
        for (index, layer) in architecture.layers.enumerated() {
            guard case .batchNormalization(let c) = layer else { continue }
            let statistics = pass.statistics[index]
            guard statistics.count == 2 * c else { continue }
            let length = pass.batch * shapes[index].reduce(1, *) / c
            let correction = length > 1 ? Float(length) / Float(length - 1) : 1
            let s = offsets[index]
            for ci in 0..<c {
                state[s].scalars[ci] =
                    (1 - momentum) * state[s].scalars[ci] + momentum * statistics[ci]
                state[s + 1].scalars[ci] =
                    (1 - momentum) * state[s + 1].scalars[ci]
                    + momentum * statistics[c + ci] * correction
            }
        }
    }

    /// This network with every batch-norm layer's running statistics recomputed at `ranks`
    /// over `samples`: each layer's mean and unbiased variance over all samples (pooled from
    /// batches of `batchSize`, in order), the statistics of the layers before it already
    /// recalibrated. Parameters are unchanged; without batch normalisation, so is the state.
    public func recalibrated(
        on samples: TrainingSamples, ranks: [Int]? = nil, batchSize: Int = 128
    ) -> Network {
        guard !state.isEmpty, samples.count > 0 else { return self }
        let ranks = ranks ?? keptRanks
        var network = self
        let offsets = architecture.stateOffsets
        let shapes = architecture.activationShapes
        // Layer by layer: a layer's statistics are measured with those before it fixed.
        for (index, layer) in architecture.layers.enumerated() {
            guard case .batchNormalization(let c) = layer else { continue }
            var (sums, squares) = (
                [Double](repeating: 0, count: c), [Double](repeating: 0, count: c)
            )
            var values = 0
            var start = 0
            while start < samples.count {
                let (x, y) = samples.batch(start..<min(start + batchSize, samples.count))
                // The layers before this one, in evaluation mode: their statistics are final.
                var noRecording: ForwardPass? = nil
                let input = network.run(
                    layers: 0..<index,
                    imageLayout(of: x, shape: shapes[0], batch: y.count, toChannelMajor: true),
                    batch: y.count, ranks: ranks, recording: &noRecording)
                let length = y.count * shapes[index].reduce(1, *) / c
                input.withUnsafeBufferPointer { xp in
                    for ci in 0..<c {
                        for i in (ci * length)..<((ci + 1) * length) {
                            sums[ci] += Double(xp[i])
                            squares[ci] += Double(xp[i]) * Double(xp[i])
                        }
                    }
                }
                values += length
                start += batchSize
            }
            let s = offsets[index]
            for ci in 0..<c {
                let mean = sums[ci] / Double(values)
                let variance =
                    max(squares[ci] - Double(values) * mean * mean, 0) / Double(max(values - 1, 1))
                network.state[s].scalars[ci] = Float(mean)
                network.state[s + 1].scalars[ci] = Float(variance)
            }
        }
        return network
    }
}
