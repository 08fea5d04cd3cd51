import Tensors
import Vocabulary

/// The sampler's running state (the shuffled queue of `perLayer`).
public struct RankSamplingState: Sendable, Equatable, Codable {
    public let sampler: RankSampler
    private var queue: [Pair] = []
    private var queueLimits: [Int] = []

    private struct Pair: Sendable, Equatable, Codable {
        var layer: Int
        var rank: Int
    }

    public init(sampler: RankSampler) {
        self.sampler = sampler
    }

    /// Ranks for the next step, each within `1…limits[l]` (a layer with limit 0 gets 0).
    ///
    /// `limits` are the kept ranks centrally, or a client's budgets under federation.
    public mutating func nextRanks(
        limits: [Int], using generator: inout some RandomNumberGenerator
    ) -> [Int] {
        switch sampler {
        case .unsampled:
            return limits
        case .fixed(let fraction):
            return limits.map { RankBudget.rank(fraction: fraction, of: $0) }
        case .sharedFraction(let fractions, _):
            // The trainer's limits are the budget: a model-scoped sampler is first taken of a
            // client's budget (`RankSampler.ofBudget(tierFraction:)`); trained centrally, the
            // budget is the whole model and the two scopes agree. No fractions: the budget.
            let fraction =
                fractions.isEmpty ? 1 : fractions[generator.nextIndex(below: fractions.count)]
            return limits.map { RankBudget.rank(fraction: fraction, of: $0) }
        case .acrossLayers:
            return limits.map { $0 > 0 ? 1 + generator.nextIndex(below: $0) : 0 }
        case .perLayer:
            if queue.isEmpty || queueLimits != limits {
                queueLimits = limits
                queue = limits.enumerated().flatMap { layer, limit in
                    (0..<limit).map { Pair(layer: layer, rank: $0 + 1) }
                }
                queue.shuffleFromFront(using: &generator)
            }
            guard let pair = queue.popLast() else { return limits }
            var ranks = limits
            ranks[pair.layer] = pair.rank
            return ranks
        }
    }
}
