import LowRank
import Tensors
import Testing

@Suite("Per-layer ranks for a budget from each layer's own damage curve")
struct LayerCurveSelectionTests {
    /// Damages drawn at random (fixed seed) for every saving rank of every layer.
    func randomDamages(_ network: Network, measure: CostMeasure, seed: UInt64) -> [[Int: Double]] {
        var generator = SeededGenerator(seed: seed)
        return network.keptRanks.indices.map { l in
            var curve: [Int: Double] = [:]
            for rank in network.savingRanks(lowRankLayer: l, measure: measure) {
                curve[rank] = Double(generator.next() % 1_000_000) / 1000
            }
            return curve
        }
    }

    /// Every combination of each layer's kept rank and saving ranks, with its cost.
    func combinations(_ network: Network, measure: CostMeasure) -> [(ranks: [Int], cost: Int)] {
        var combinations: [[Int]] = [[]]
        for l in network.keptRanks.indices {
            let options =
                [network.keptRanks[l]] + network.savingRanks(lowRankLayer: l, measure: measure)
            combinations = combinations.flatMap { prefix in options.map { prefix + [$0] } }
        }
        return combinations.map { ($0, network.cost(ranks: $0, measure: measure)) }
    }

    /// The best of `combinations` that fits: least summed damage (added in layer order), then
    /// least cost, then higher ranks first.
    func bruteForce(
        _ combinations: [(ranks: [Int], cost: Int)], budget: Int, damages: [[Int: Double]]
    ) -> [Int]? {
        var best: (damage: Double, cost: Int, ranks: [Int])?
        for (ranks, cost) in combinations where cost <= budget {
            var damage = 0.0
            for (l, rank) in ranks.enumerated() { damage += damages[l][rank] ?? 0 }
            if let current = best {
                if damage > current.damage { continue }
                if damage == current.damage {
                    if cost > current.cost { continue }
                    if cost == current.cost
                        && !ranks.lexicographicallyPrecedes(current.ranks, by: >)
                    {
                        continue
                    }
                }
            }
            best = (damage, cost, ranks)
        }
        return best?.ranks
    }

    @Test(
        "The frontier search finds the combination of least summed damage that fits, as trying every combination does"
    )
    func equalsBruteForce() throws {
        let network = RankSelectionTests.convolutionalNetwork(seed: 3)
        for measure in CostMeasure.allCases {
            let full = network.cost(ranks: network.keptRanks, measure: measure)
            let smallest = network.cost(ranks: network.keptRanks.map { _ in 1 }, measure: measure)
            let all = combinations(network, measure: measure)
            for seed in [1, 2, 3] as [UInt64] {
                let damages = randomDamages(network, measure: measure, seed: seed)
                for share in [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0] {
                    let budget = smallest + Int(Double(full - smallest) * share)
                    let found = try #require(
                        network.layerCurveRanks(
                            budget: budget, measure: measure, damages: damages))
                    #expect(network.cost(ranks: found, measure: measure) <= budget)
                    #expect(
                        found == bruteForce(all, budget: budget, damages: damages),
                        "\(measure) budget \(budget) seed \(seed)")
                }
                #expect(
                    network.layerCurveRanks(
                        budget: smallest - 1, measure: measure, damages: damages) == nil)
                // At the full cost nothing needs cutting, and every cut adds damage here.
                #expect(
                    network.layerCurveRanks(budget: full, measure: measure, damages: damages)
                        == network.keptRanks)
            }
        }
    }

    @Test(
        "Saving ranks are exactly the ranks that cost less than every higher rank of the layer; a layer cheaper dense has none above its break-even"
    )
    func savingRanksSaveCost() {
        let network = RankSelectionTests.convolutionalNetwork(seed: 3)
        for measure in CostMeasure.allCases {
            for l in network.keptRanks.indices {
                let saving = network.savingRanks(lowRankLayer: l, measure: measure)
                var ranks = network.keptRanks
                var lowest = network.cost(ranks: ranks, measure: measure)
                var expected: [Int] = []
                for rank in stride(from: network.keptRanks[l] - 1, through: 1, by: -1) {
                    ranks[l] = rank
                    let cost = network.cost(ranks: ranks, measure: measure)
                    if cost < lowest { (expected, lowest) = (expected + [rank], cost) }
                }
                #expect(saving == expected)
            }
        }
        // The last layer (16 → 4, rank 4) is cheaper dense from rank 4 · 20 ≥ 64 on: rank 3
        // (60 < 64) is its first saving rank.
        #expect(network.savingRanks(lowRankLayer: 3, measure: .macs) == [3, 2, 1])
        // The first convolution (27 inputs → 8, rank 8): (27 + 8)·k < 216 from k = 6 down.
        #expect(network.savingRanks(lowRankLayer: 0, measure: .macs) == [6, 5, 4, 3, 2, 1])
        let cuts = network.singleLayerCuts(measure: .macs)
        #expect(
            cuts.count
                == network.keptRanks.indices.map {
                    network.savingRanks(lowRankLayer: $0, measure: .macs).count
                }.reduce(0, +))
        for cut in cuts {
            for l in network.keptRanks.indices where l != cut.layer {
                #expect(cut.ranks[l] == network.keptRanks[l])
            }
        }
    }

    @Test("With losses on held-out samples as damages, the choice fits the budget and is stable")
    func lossDamages() throws {
        let network = RankSelectionTests.convolutionalNetwork(seed: 5)
        let samples = RankSelectionTests.samples(
            count: 40, featureCount: 108, classes: 4, seed: 9)
        let measure = CostMeasure.macs
        let base = network.evaluate(on: samples).loss
        var damages = Array(repeating: [Int: Double](), count: network.keptRanks.count)
        for cut in network.singleLayerCuts(measure: measure) {
            damages[cut.layer][cut.ranks[cut.layer]] =
                network.evaluate(on: samples, ranks: cut.ranks).loss - base
        }
        let budget = network.cost(ranks: network.keptRanks, measure: measure) / 2
        let first = try #require(
            network.layerCurveRanks(budget: budget, measure: measure, damages: damages))
        #expect(network.cost(ranks: first, measure: measure) <= budget)
        #expect(
            network.layerCurveRanks(budget: budget, measure: measure, damages: damages) == first)
    }
}
