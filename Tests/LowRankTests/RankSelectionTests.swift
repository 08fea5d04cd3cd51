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
}
