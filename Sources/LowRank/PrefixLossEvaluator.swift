/// Mean losses of many rank sets on fixed samples, remembering activations between calls.
///
/// The activation at the input of a LoD layer depends only on the ranks of the LoD layers
/// before it. The evaluator keeps, per batch, each evaluated set's activation at every such
/// point (keyed by those ranks), up to `byteLimit` bytes per call, and a set whose ranks agree
/// with an earlier one's up to a point runs only the layers after it. A greedy search's step
/// tries one cut per layer of the previous step's choice: a cut in a late layer then runs that
/// layer on, and so do the other cuts whose earlier ranks did not change. Keys used in a call
/// are kept for the next; older ones are dropped. Losses are identical to
/// `Network.evaluate(on:ranks:batchSize:)` of each set, however much is remembered.
public struct PrefixLossEvaluator: Sendable {
    /// A point (layer index) and the ranks of the LoD layers before it.
    public struct Key: Hashable, Sendable {
        var layer: Int
        var ranks: [Int]
    }

    /// Per key, per batch number, the activation.
    public typealias Activations = [Key: [Int: [Float]]]

    /// What one range of batches gives: per batch, each set's summed loss; and the activations
    /// it computed or reused.
    public struct Part: Sendable {
        public var sums: [[Double]]
        public var kept: Activations
    }

    public let network: Network
    public let samples: TrainingSamples
    public let batchSize: Int
    public let byteLimit: Int
    /// Layers where a run may start: 0, and each LoD layer's first layer outside residual blocks.
    let points: [Int]
    /// Per point, the number of LoD layers before it.
    let lowRankBefore: [Int]
    private var remembered: Activations = [:]

    public init(
        network: Network, samples: TrainingSamples, batchSize: Int = 32,
        byteLimit: Int = 1 << 30
    ) {
        self.network = network
        self.samples = samples
        self.batchSize = batchSize
        self.byteLimit = byteLimit
        let architecture = network.architecture
        let depths = architecture.residualDepths
        var points = Set([0])
        for index in architecture.lowRankLayerIndices {
            var point = index
            // Never start inside a residual block: its second half would miss the block's input.
            while point > 0, depths[point] > 0 { point -= 1 }
            points.insert(point)
        }
        self.points = points.sorted()
        lowRankBefore = self.points.map { architecture.layers[..<$0].count(where: \.isLowRank) }
    }

    /// Number of batches of `batchSize` samples.
    public var batchCount: Int { (samples.count + batchSize - 1) / batchSize }

    /// The mean loss of each of `rankSets`, the batches in one range.
    ///
    /// `map` runs the given work on each batch range and returns the parts in the ranges'
    /// order (it may run them on several threads).
    public mutating func losses(
        of rankSets: [[Int]],
        map: (_ ranges: [Range<Int>], _ work: @Sendable (Range<Int>) -> Part) -> [Part]
    ) -> [Double] {
        let ranges = Self.split(batchCount, into: 1)
        return losses(of: rankSets, ranges: ranges, map: map)
    }

    /// `losses(of:map:)` with the batches cut into `chunks` ranges of about equal size.
    public mutating func losses(
        of rankSets: [[Int]], chunks: Int,
        map: (_ ranges: [Range<Int>], _ work: @Sendable (Range<Int>) -> Part) -> [Part]
    ) -> [Double] {
        losses(of: rankSets, ranges: Self.split(batchCount, into: chunks), map: map)
    }

    private mutating func losses(
        of rankSets: [[Int]], ranges: [Range<Int>],
        map: (_ ranges: [Range<Int>], _ work: @Sendable (Range<Int>) -> Part) -> [Part]
    ) -> [Double] {
        precondition(
            rankSets.allSatisfy { ranks in
                ranks.count == network.keptRanks.count
                    && zip(ranks, network.keptRanks).allSatisfy { $0 >= 0 && $0 <= $1 }
            }, "rank sets \(rankSets) vs kept ranks \(network.keptRanks)")
        let evaluator = self
        let limit = byteLimit / max(ranges.count, 1)
        let parts = map(ranges) { range in
            evaluator.part(rankSets: rankSets, batches: range, byteLimit: limit)
        }
        var kept: Activations = [:]
        for part in parts {
            for (key, batches) in part.kept {
                kept[key, default: [:]].merge(batches) { first, _ in first }
            }
        }
        remembered = kept
        return Network.meanLosses(
            parts.flatMap(\.sums), sampleCount: samples.count, setCount: rankSets.count)
    }

    /// Splits `count` batches into `chunks` consecutive ranges of about equal size.
    static func split(_ count: Int, into chunks: Int) -> [Range<Int>] {
        let chunks = max(1, min(chunks, count))
        return (0..<chunks).map { (count * $0 / chunks)..<(count * ($0 + 1) / chunks) }
    }

    /// The losses and activations of `batches`.
    func part(rankSets: [[Int]], batches: Range<Int>, byteLimit: Int) -> Part {
        let layerCount = network.architecture.layers.count
        var kept: Activations = [:]
        var bytes = 0
        var noRecording: ForwardPass? = nil
        let sums = batches.map { batch in
            let start = batch * batchSize
            let (x, y) = samples.batch(start..<min(start + batchSize, samples.count))
            return rankSets.map { ranks in
                // The deepest point this set's ranks reach with a known activation.
                var from = 0
                var activation: [Float]? = nil
                for p in points.indices.dropFirst().reversed() {
                    let key = Key(layer: points[p], ranks: Array(ranks[..<lowRankBefore[p]]))
                    if let known = kept[key]?[batch] ?? remembered[key]?[batch] {
                        kept[key, default: [:]][batch] = known
                        (from, activation) = (p, known)
                        break
                    }
                }
                var x = activation ?? network.networkInput(x, batch: y.count)
                for p in (from + 1)..<points.count {
                    x = network.run(
                        layers: points[p - 1]..<points[p], x, batch: y.count, ranks: ranks,
                        recording: &noRecording)
                    if bytes + x.count * 4 <= byteLimit {
                        let key = Key(layer: points[p], ranks: Array(ranks[..<lowRankBefore[p]]))
                        if kept[key]?[batch] == nil {
                            kept[key, default: [:]][batch] = x
                            bytes += x.count * 4
                        }
                    }
                }
                let logits = network.run(
                    layers: points[points.count - 1]..<layerCount, x, batch: y.count,
                    ranks: ranks, recording: &noRecording)
                let result = SoftmaxCrossEntropy.lossAndGradient(
                    logits: logits, labels: y, classCount: network.architecture.classCount)
                return result.loss * Double(y.count)
            }
        }
        return Part(sums: sums, kept: kept)
    }
}
