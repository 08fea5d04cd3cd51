import LowRank
import Tensors
import Testing

@Suite("Per-layer rank selection for a budget")
struct RankSelectionTests {
    func network() -> Network {
        var generator = SeededGenerator(seed: 7)
        return Network(architecture: .make(.mlp, lowRank: true), using: &generator)
    }

    @Test(
        "Greedy ranks fit every budget, keep at least one component per layer, and equal the kept ranks at the full cost"
    )
    func fitsBudgets() throws {
        let network = network()
        for measure in CostMeasure.allCases {
            let full = network.cost(ranks: network.keptRanks, measure: measure)
            #expect(network.greedyRanks(budget: full, measure: measure) == network.keptRanks)
            for share in [0.05, 0.1, 0.3, 0.6, 0.9] {
                let budget = Int(Double(full) * share)
                let ranks = try #require(network.greedyRanks(budget: budget, measure: measure))
                #expect(network.cost(ranks: ranks, measure: measure) <= budget)
                #expect(
                    ranks.allSatisfy { $0 >= 1 }
                        && zip(ranks, network.keptRanks).allSatisfy { $0 <= $1 })
                let uniform = try #require(network.uniformRanks(budget: budget, measure: measure))
                #expect(network.cost(ranks: uniform.ranks, measure: measure) <= budget)
            }
            let minimum = network.cost(ranks: network.keptRanks.map { _ in 1 }, measure: measure)
            #expect(network.greedyRanks(budget: minimum - 1, measure: measure) == nil)
            #expect(network.uniformRanks(budget: minimum - 1, measure: measure) == nil)
        }
    }

    @Test("The uniform choice is the largest fraction that fits: the next one up does not")
    func uniformIsLargest() throws {
        let network = network()
        let full = network.macs(ranks: network.keptRanks)
        let budget = full / 4
        let uniform = try #require(network.uniformRanks(budget: budget, measure: .macs))
        let larger = network.keptRanks.enumerated().map { l, kept in
            Double(min(kept, uniform.ranks[l] + 1)) / Double(kept)
        }.filter { $0 > uniform.fraction }.min()!
        #expect(network.macs(ranks: network.ranks(atFraction: larger)) > budget)
    }

    @Test(
        "Greedy cuts where importance per cost is lowest: a layer whose tail is near zero goes first"
    )
    func cutsUnimportantFirst() throws {
        var network = network()
        // Make layer 0's components beyond the tenth negligible, layer 1's all strong.
        let l0 = network.parameterOffset(ofLayer: network.architecture.lowRankLayerIndices[0])
        let width = network.parameters[l0].columns
        network.parameters[l0].scalars.withUnsafeMutableBufferPointer { up in
            for j in (10 * width)..<up.count { up[j] *= 1e-4 }
        }
        let energies = network.componentEnergies(lowRankLayer: 0)
        #expect(energies[11] < 1e-6 * energies[0])
        // Remove a little: the greedy choice takes it from layer 0's weak tail only.
        let full = network.macs(ranks: network.keptRanks)
        let ranks = try #require(network.greedyRanks(budget: full * 2 / 3, measure: .macs))
        #expect(ranks[0] >= 10 && ranks[0] < network.keptRanks[0], "\(ranks)")
        #expect(Array(ranks.dropFirst()) == Array(network.keptRanks.dropFirst()), "\(ranks)")
    }

    /// Three-channel 6×6 images through two LoD convolutions and two LoD dense layers.
    static func convolutionalNetwork(seed: UInt64) -> Network {
        var generator = SeededGenerator(seed: seed)
        let g1 = ConvolutionGeometry(height: 6, width: 6, channels: 3, kernelSize: 3, padding: 1)
        let g2 = ConvolutionGeometry(height: 3, width: 3, channels: 8, kernelSize: 3, padding: 1)
        let architecture = Architecture(
            name: "t", inputShape: [6, 6, 3], classCount: 4,
            layers: [
                .lowRankConvolution(geometry: g1, outputs: 8, maxRank: 8), .relu,
                .maxPool(height: 6, width: 6, channels: 8),
                .lowRankConvolution(geometry: g2, outputs: 12, maxRank: 12), .relu, .flatten,
                .lowRankDense(inputs: 108, outputs: 16, maxRank: 16), .relu,
                .lowRankDense(inputs: 16, outputs: 4, maxRank: 4),
            ])
        return Network(architecture: architecture, using: &generator)
    }

    static func samples(
        count: Int, featureCount: Int, classes: Int, seed: UInt64
    ) -> TrainingSamples {
        var generator = SeededGenerator(seed: seed)
        return TrainingSamples(
            features: Tensor.randomNormal(shape: [count * featureCount], using: &generator).scalars,
            labels: (0..<count).map { _ in Int32(generator.next() % UInt64(classes)) },
            featureCount: featureCount)
    }

    /// The greedy path as first written: the whole path, one damage evaluation at a time.
    static func referenceGreedyPath(
        _ network: Network, measure: CostMeasure, damage: ([Int]) -> Double
    ) -> [(ranks: [Int], cost: Int)] {
        var ranks = network.keptRanks
        var current = network.cost(ranks: ranks, measure: measure)
        var currentDamage = damage(ranks)
        var path = [(ranks, current)]
        while true {
            var best: (ranks: [Int], score: Double, cost: Int, damage: Double)?
            for l in ranks.indices where ranks[l] > 1 {
                var candidate = ranks
                let step = max(1, ranks[l] / 50)
                candidate[l] = max(1, ranks[l] - step)
                var after = network.cost(ranks: candidate, measure: measure)
                while after == current && candidate[l] > 1 {
                    candidate[l] -= 1
                    after = network.cost(ranks: candidate, measure: measure)
                }
                let saved = current - after
                guard saved > 0 else { continue }
                let harm = damage(candidate)
                let score = (harm - currentDamage) / Double(saved)
                if best == nil || score < best!.score {
                    best = (candidate, score, after, harm)
                }
            }
            guard let best else { return path }
            ranks = best.ranks
            current = best.cost
            currentDamage = best.damage
            path.append((ranks, current))
        }
    }

    @Test("Evaluation reads multi-channel images in the layout forward gives the layers")
    func evaluationMatchesForward() {
        let network = Self.convolutionalNetwork(seed: 3)
        let samples = Self.samples(count: 40, featureCount: 108, classes: 4, seed: 4)
        let pass = network.forward(samples.features, batch: 40, batchStatistics: false)
        let loss = SoftmaxCrossEntropy.lossAndGradient(
            logits: pass.logits, labels: samples.labels, classCount: 4
        ).loss
        let evaluated = network.evaluate(on: samples, batchSize: 40)
        #expect(
            abs(evaluated.loss - loss) < 1e-6 * max(1, abs(loss)), "\(evaluated.loss) vs \(loss)")
    }

    @Test("Shared-prefix losses equal each rank set's own evaluation, bit for bit")
    func sharedLossesAreExact() {
        var generator = SeededGenerator(seed: 9)
        let networks = [
            Self.convolutionalNetwork(seed: 5),
            Network(
                architecture: .make(.resnet8, lowRank: true, inputShape: [8, 8, 3], classCount: 4),
                using: &generator),
        ]
        for network in networks {
            let featureCount = network.architecture.inputShape.reduce(1, *)
            let samples = Self.samples(count: 45, featureCount: featureCount, classes: 4, seed: 6)
            let base = network.keptRanks.map { max(1, $0 - 1) }
            var sets = [base, network.keptRanks]
            for l in base.indices where base[l] > 1 {
                var cut = base
                cut[l] = base[l] / 2
                sets.append(cut)
            }
            let shared = network.losses(on: samples, rankSets: sets, sharingWith: base)
            let alone = sets.map { network.evaluate(on: samples, ranks: $0).loss }
            #expect(shared == alone, "\(network.architecture.name): \(shared) vs \(alone)")
        }
    }

    @Test("The batched, stopping greedy path is the first written one, point for point")
    func fastGreedyPathEqualsReference() throws {
        let network = Self.convolutionalNetwork(seed: 1)
        let samples = Self.samples(count: 64, featureCount: 108, classes: 4, seed: 2)
        for measure in CostMeasure.allCases {
            let reference = Self.referenceGreedyPath(network, measure: measure) {
                network.evaluate(on: samples, ranks: $0).loss
            }
            let fast = network.greedyPath(measure: measure, stoppingAt: nil) { base, sets in
                network.losses(on: samples, rankSets: sets, sharingWith: base)
            }
            #expect(reference.count > 10)
            #expect(fast.map(\.ranks) == reference.map(\.ranks))
            #expect(fast.map(\.cost) == reference.map(\.cost))
            // Remembering activations between steps, in one or three batch ranges, with room
            // for everything or for a few activations only.
            for (chunks, byteLimit) in [(1, 1 << 30), (3, 1 << 30), (3, 20_000)] {
                var evaluator = PrefixLossEvaluator(
                    network: network, samples: samples, byteLimit: byteLimit)
                let remembering = network.greedyPath(measure: measure, stoppingAt: nil) {
                    _, sets in
                    evaluator.losses(of: sets, chunks: chunks) { ranges, work in
                        ranges.map(work)
                    }
                }
                #expect(
                    remembering.map(\.ranks) == reference.map(\.ranks),
                    "\(measure), \(chunks) ranges, \(byteLimit) bytes")
            }
            let full = network.cost(ranks: network.keptRanks, measure: measure)
            for share in [1.0, 0.8, 0.5, 0.3, 0.1] {
                let budget = Int(Double(full) * share)
                let stopped = network.greedyPath(measure: measure, stoppingAt: budget) {
                    base, sets in network.losses(on: samples, rankSets: sets, sharingWith: base)
                }
                #expect(stopped.last!.cost <= budget || stopped.count == reference.count)
                #expect(
                    Network.ranks(on: stopped, budget: budget)
                        == Network.ranks(on: reference, budget: budget), "\(measure) \(share)")
            }
        }
    }
}
