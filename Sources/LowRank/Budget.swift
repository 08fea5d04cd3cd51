import Tensors

extension Network {
    /// Cuts LoD layer `l` to its first `rank` components: the rest are zeroed and frozen.
    public mutating func mask(lowRankLayer l: Int, toRank rank: Int) {
        precondition(rank >= 0 && rank <= keptRanks[l], "mask to \(rank) of kept \(keptRanks[l])")
        let p = parameterOffset(ofLayer: architecture.lowRankLayerIndices[l])
        for tensor in [p, p + 1] {
            let width = parameters[tensor].columns
            parameters[tensor].scalars.withUnsafeMutableBufferPointer { f in
                for j in (rank * width)..<f.count { f[j] = 0 }
            }
        }
        keptRanks[l] = rank
    }

    /// Zeroes the output factor (the `Uᵀ` rows) of components `rows` of the `l`-th LoD layer:
    /// they then add nothing to the layer's output, yet still get gradients through their
    /// input factor, as a newly opened component should (budget growth).
    public mutating func zeroOutputFactor(lowRankLayer l: Int, rows: Range<Int>) {
        precondition(
            rows.lowerBound >= 0 && rows.upperBound <= keptRanks[l],
            "rows \(rows) of kept \(keptRanks[l])")
        let p = parameterOffset(ofLayer: architecture.lowRankLayerIndices[l])
        let width = parameters[p].columns
        parameters[p].scalars.withUnsafeMutableBufferPointer { f in
            for j in (rows.lowerBound * width)..<(rows.upperBound * width) { f[j] = 0 }
        }
    }

    /// Parameters a model exported at `ranks` holds (a LoD layer counts as dense where
    /// `(m+n)·k ≥ m·n`), normalisations' scales and shifts included; running statistics,
    /// which are not trained, are not.
    public func parameterCount(ranks: [Int]) -> Int {
        architecture.parameterCount(ranks: ranks)
    }

    /// Multiply-accumulates per sample of a model exported at `ranks`.
    public func macs(ranks: [Int]) -> Int {
        architecture.macs(ranks: ranks)
    }

    /// A physically smaller network holding only the first `ranks[l]` components of each
    /// LoD layer; a layer where that is not smaller than its dense matrix becomes dense.
    public func exported(ranks: [Int]) -> Network {
        precondition(
            ranks.count == keptRanks.count && zip(ranks, keptRanks).allSatisfy { $0 <= $1 },
            "export ranks \(ranks) vs kept \(keptRanks)")
        var layers: [LayerSpec] = []
        var newParameters: [Tensor] = []
        var newRanks: [Int] = []
        var l = 0
        let offsets = architecture.parameterOffsets
        for (index, layer) in architecture.layers.enumerated() {
            let p = offsets[index]
            guard layer.isLowRank, let (outputs, inputs) = layer.matrixShape else {
                layers.append(layer)
                newParameters += parameters[p..<(p + layer.parameterShapes.count)]
                continue
            }
            let k = ranks[l]
            l += 1
            let up = parameters[p].prefix(rows: k)
            let down = parameters[p + 1].prefix(rows: k)
            if k * (outputs + inputs) >= outputs * inputs {
                // W = Uᵀᵀ·Vᵀ = upᵀ · down, [outputs, inputs].
                newParameters += [
                    matmul(up, down, lhsTransposition: .transposed), parameters[p + 2],
                ]
                switch layer {
                case .lowRankDense: layers.append(.dense(inputs: inputs, outputs: outputs))
                case .lowRankConvolution(let g, _, _):
                    layers.append(.convolution(geometry: g, outputs: outputs))
                default: preconditionFailure("not a LoD layer")
                }
            } else {
                newParameters += [up, down, parameters[p + 2]]
                newRanks.append(k)
                switch layer {
                case .lowRankDense:
                    layers.append(.lowRankDense(inputs: inputs, outputs: outputs, maxRank: k))
                case .lowRankConvolution(let g, _, _):
                    layers.append(.lowRankConvolution(geometry: g, outputs: outputs, maxRank: k))
                default: preconditionFailure("not a LoD layer")
                }
            }
        }
        var architecture = architecture
        architecture.layers = layers
        return Network(
            architecture: architecture, parameters: newParameters, keptRanks: newRanks,
            state: state)
    }

    /// Accuracy and mean loss over a sample set with LoD layers at `ranks`, in batches.
    public func evaluate(
        on samples: TrainingSamples, ranks: [Int]? = nil, batchSize: Int = 32
    ) -> (accuracy: Double, loss: Double) {
        evaluate(on: samples, rankSets: [ranks ?? keptRanks], batchSize: batchSize)[0]
    }

    /// Accuracy and mean loss at each of several budgets, in one sweep over the samples.
    ///
    /// The layers before the first LoD layer whose rank differs between the sets (all the
    /// dense convolutions of a partly factored LeNet, say) run once per batch; only the rest
    /// runs once per distinct set. Results are identical to evaluating each set on its own,
    /// and identical for any number of `threads` (see `evaluateRows`).
    public func evaluate(
        on samples: TrainingSamples, rankSets: [[Int]], batchSize: Int = 32, threads: Int = 1
    ) -> [(accuracy: Double, loss: Double)] {
        evaluateRows(on: samples, rankSets: rankSets, batchSize: batchSize, threads: threads).map {
            ($0.accuracy, $0.loss)
        }
    }

    /// `evaluate(on:rankSets:)`, with whether each sample was classified right at each set.
    ///
    /// With `threads` above 1, contiguous runs of batches are evaluated on that many threads
    /// at once; each batch is computed exactly as on one thread and the batches' results are
    /// combined in batch order, so the figures are bit for bit those of one thread.
    public func evaluateRows(
        on samples: TrainingSamples, rankSets: [[Int]], batchSize: Int = 32, threads: Int = 1
    ) -> [(accuracy: Double, loss: Double, correct: [Bool])] {
        precondition(
            rankSets.allSatisfy { ranks in
                ranks.count == keptRanks.count
                    && zip(ranks, keptRanks).allSatisfy { $0 >= 0 && $0 <= $1 }
            }, "rank sets \(rankSets) vs kept ranks \(keptRanks)")
        let distinct = Array(Set(rankSets))
        let lowRank = architecture.lowRankLayerIndices
        let firstDiffering =
            keptRanks.indices.first { l in Set(distinct.map { $0[l] }).count > 1 }
        var split = firstDiffering.map { lowRank[$0] } ?? architecture.layers.count
        // Never cut inside a residual block: its second half would miss the block's input.
        let depths = architecture.residualDepths
        while split > 0, split < depths.count, depths[split] > 0 { split -= 1 }
        let sharedLayers = 0..<split
        let batches = stride(from: 0, to: samples.count, by: max(batchSize, 1)).map {
            $0..<min($0 + max(batchSize, 1), samples.count)
        }
        // Per batch and distinct set: the batch's loss sum and its rows' verdicts.
        let results = mapInParallel(batches.count, threads: threads) { index in
            var noRecording: ForwardPass? = nil
            let (x, y) = samples.batch(batches[index])
            let shared = run(
                layers: sharedLayers, networkInput(x, batch: y.count), batch: y.count,
                ranks: distinct[0], recording: &noRecording)
            return distinct.map { ranks in
                let logits = run(
                    layers: sharedLayers.upperBound..<architecture.layers.count, shared,
                    batch: y.count, ranks: ranks, recording: &noRecording)
                let result = SoftmaxCrossEntropy.lossAndGradient(
                    logits: logits, labels: y, classCount: architecture.classCount)
                return (
                    loss: result.loss * Double(y.count),
                    correct: SoftmaxCrossEntropy.correctRows(
                        logits: logits, labels: y, classCount: architecture.classCount)
                )
            }
        }
        var correct = [[Bool]](repeating: [], count: distinct.count)
        for set in correct.indices { correct[set].reserveCapacity(samples.count) }
        var lossSum = [Double](repeating: 0, count: distinct.count)
        for batch in results {
            for (set, result) in batch.enumerated() {
                lossSum[set] += result.loss
                correct[set] += result.correct
            }
        }
        let count = Double(max(samples.count, 1))
        return rankSets.map { ranks in
            let set = distinct.firstIndex(of: ranks)!
            return (
                Double(correct[set].count { $0 }) / count, lossSum[set] / count, correct[set]
            )
        }
    }

    /// The mean loss over `samples` at each of `rankSets`, each set running the layers before
    /// its first LoD layer whose rank differs from `base`'s on `base`'s activations, computed
    /// once per batch.
    ///
    /// Trying one cut per layer (a greedy search's step) then costs, per cut, only the layers
    /// from the cut on. Results are identical to `evaluate(on:ranks:batchSize:)` of each set.
    public func losses(
        on samples: TrainingSamples, rankSets: [[Int]], sharingWith base: [Int],
        batchSize: Int = 32
    ) -> [Double] {
        let batches = (samples.count + batchSize - 1) / batchSize
        return Self.meanLosses(
            batchLosses(
                on: samples, rankSets: rankSets, sharingWith: base, batches: 0..<batches,
                batchSize: batchSize),
            sampleCount: samples.count, setCount: rankSets.count)
    }

    /// Per batch of `batches`, the summed loss of its samples at each of `rankSets`.
    ///
    /// Batch `i` holds samples `i·batchSize ..< (i+1)·batchSize`; each is computed as
    /// ``losses(on:rankSets:sharingWith:batchSize:)`` does. Batch ranges are independent: a
    /// caller may compute them on several threads and add them up with ``meanLosses``.
    public func batchLosses(
        on samples: TrainingSamples, rankSets: [[Int]], sharingWith base: [Int],
        batches: Range<Int>, batchSize: Int = 32
    ) -> [[Double]] {
        precondition(
            ([base] + rankSets).allSatisfy { ranks in
                ranks.count == keptRanks.count
                    && zip(ranks, keptRanks).allSatisfy { $0 >= 0 && $0 <= $1 }
            }, "rank sets \(rankSets), base \(base) vs kept ranks \(keptRanks)")
        let lowRank = architecture.lowRankLayerIndices
        let depths = architecture.residualDepths
        let splits = rankSets.map { ranks in
            var split =
                ranks.indices.first { ranks[$0] != base[$0] }.map { lowRank[$0] }
                ?? architecture.layers.count
            // Never cut inside a residual block: its second half would miss the block's input.
            while split > 0, split < depths.count, depths[split] > 0 { split -= 1 }
            return split
        }
        let points = Set(splits).sorted()
        var noRecording: ForwardPass? = nil
        return batches.map { batch in
            let start = batch * batchSize
            let (x, y) = samples.batch(start..<min(start + batchSize, samples.count))
            // The base's activation at the input of each split point, layer range by range.
            var inputs: [Int: [Float]] = [:]
            var activation = networkInput(x, batch: y.count)
            var reached = 0
            for point in points {
                activation = run(
                    layers: reached..<point, activation, batch: y.count, ranks: base,
                    recording: &noRecording)
                inputs[point] = activation
                reached = point
            }
            return rankSets.indices.map { set in
                let logits = run(
                    layers: splits[set]..<architecture.layers.count, inputs[splits[set]]!,
                    batch: y.count, ranks: rankSets[set], recording: &noRecording)
                let result = SoftmaxCrossEntropy.lossAndGradient(
                    logits: logits, labels: y, classCount: architecture.classCount)
                return result.loss * Double(y.count)
            }
        }
    }

    /// Each set's mean loss from per-batch loss sums (``batchLosses``), added in batch order.
    public static func meanLosses(
        _ batchLosses: [[Double]], sampleCount: Int, setCount: Int
    ) -> [Double] {
        var lossSum = [Double](repeating: 0, count: setCount)
        for batch in batchLosses {
            for set in 0..<setCount { lossSum[set] += batch[set] }
        }
        let count = Double(max(sampleCount, 1))
        return lossSum.map { $0 / count }
    }

    /// A batch of samples (row-major, per-sample features as stored) in the layout the first
    /// layer reads: channel-major for images of several channels (see `ForwardPass`).
    func networkInput(_ x: [Float], batch: Int) -> [Float] {
        imageLayout(
            of: x, shape: architecture.activationShapes[0], batch: batch, toChannelMajor: true)
    }
}

extension Architecture {
    /// Parameters a model exported at `ranks` holds (a LoD layer counts as dense where
    /// `(m+n)·k ≥ m·n`), normalisations' scales and shifts included; running statistics,
    /// which are not trained, are not.
    public func parameterCount(ranks: [Int]) -> Int {
        cost(ranks: ranks, perPosition: false)
    }

    /// Multiply-accumulates per sample of a model exported at `ranks`.
    public func macs(ranks: [Int]) -> Int {
        cost(ranks: ranks, perPosition: true)
    }

    /// The parameters (`perPosition: false`) or multiply-accumulates per sample of layer
    /// `only` (every layer: `nil`) at `ranks`.
    public func cost(ranks: [Int], perPosition: Bool, only: Int? = nil) -> Int {
        var total = 0
        var l = 0
        let shapes = activationShapes
        for (index, layer) in layers.enumerated() {
            let counted = only == nil || only == index
            guard let (outputs, inputs) = layer.matrixShape else {
                // Normalisations' scales and shifts count as parameters (their few
                // operations per value are not multiply-accumulates of a product).
                if !perPosition && counted {
                    total += layer.parameterShapes.reduce(0) { $0 + $1[0] }
                }
                continue
            }
            let positions = perPosition ? layer.positions(inputShape: shapes[index]) : 1
            var matrix = outputs * inputs
            if layer.isLowRank {
                matrix = min(matrix, ranks[l] * (outputs + inputs))
                l += 1
            }
            if counted { total += positions * matrix + (perPosition ? 0 : outputs) }
        }
        return total
    }
}
