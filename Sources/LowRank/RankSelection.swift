import Tensors

/// What a deployment budget counts.
public enum CostMeasure: String, Sendable, CaseIterable {
    /// Multiply-accumulates per sample (`Network.macs(ranks:)`).
    case macs
    /// Stored parameters (`Network.parameterCount(ranks:)`).
    case parameters
}

extension Network {
    /// The cost of the model exported at `ranks`.
    public func cost(ranks: [Int], measure: CostMeasure) -> Int {
        switch measure {
        case .macs: macs(ranks: ranks)
        case .parameters: parameterCount(ranks: ranks)
        }
    }

    /// The energy of each kept component of LoD layer `l`: ‖u_j‖²·‖v_j‖², the squared
    /// Frobenius norm of the rank-one term u_j v_jᵀ it adds to the layer's weight.
    public func componentEnergies(lowRankLayer l: Int) -> [Double] {
        let p = parameterOffset(ofLayer: architecture.lowRankLayerIndices[l])
        let (up, down) = (parameters[p], parameters[p + 1])
        return (0..<keptRanks[l]).map { j in
            func squaredNorm(_ tensor: Tensor) -> Double {
                let width = tensor.columns
                var sum = 0.0
                for x in tensor.scalars[(j * width)..<((j + 1) * width)] {
                    sum += Double(x) * Double(x)
                }
                return sum
            }
            return squaredNorm(up) * squaredNorm(down)
        }
    }

    /// The greedy path from the kept ranks down to one component per layer: each step removes
    /// a block of tail components (LoD orders them, so the tail is a layer's least important)
    /// from the layer where `damage` (for example the loss on a held-out split) grows the least
    /// per unit of cost saved. A block is at least 1/50 of the layer's current rank and
    /// reaches the first rank that saves cost (a layer cheaper dense saves nothing above its
    /// break-even). Every budget's choice is a point of this one path, so it is computed once.
    public func greedyPath(
        measure: CostMeasure, damage: ([Int]) -> Double
    ) -> [(ranks: [Int], cost: Int)] {
        greedyPath(measure: measure, stoppingAt: nil) { _, candidates in candidates.map(damage) }
    }

    /// The same greedy path, with the damages of each step's candidates asked for at once and
    /// an optional stop: the path ends at its first point that costs at most `budget`, which
    /// is the point ``ranks(on:budget:)`` picks from the whole path.
    ///
    /// `damages(base, candidates)` returns the damage of each candidate; every candidate
    /// differs from `base` (the path's current point) in one layer, so an evaluator can run
    /// the layers before that one once for all (as
    /// ``Network/losses(on:rankSets:sharingWith:batchSize:)`` does). The first call asks for
    /// the kept ranks alone.
    public func greedyPath(
        measure: CostMeasure, stoppingAt budget: Int?,
        damages: (_ base: [Int], _ candidates: [[Int]]) -> [Double]
    ) -> [(ranks: [Int], cost: Int)] {
        var ranks = keptRanks
        var current = cost(ranks: ranks, measure: measure)
        var currentDamage = damages(ranks, [ranks])[0]
        var path = [(ranks, current)]
        while budget.map({ current > $0 }) ?? true {
            var candidates: [(ranks: [Int], cost: Int)] = []
            for l in ranks.indices where ranks[l] > 1 {
                var candidate = ranks
                let step = max(1, ranks[l] / 50)
                candidate[l] = max(1, ranks[l] - step)
                var after = cost(ranks: candidate, measure: measure)
                while after == current && candidate[l] > 1 {
                    candidate[l] -= 1
                    after = cost(ranks: candidate, measure: measure)
                }
                guard current - after > 0 else { continue }
                candidates.append((candidate, after))
            }
            guard !candidates.isEmpty else { return path }
            let harms = damages(ranks, candidates.map(\.ranks))
            var best: (ranks: [Int], score: Double, cost: Int, damage: Double)?
            for (candidate, harm) in zip(candidates, harms) {
                let score = (harm - currentDamage) / Double(current - candidate.cost)
                if best == nil || score < best!.score {
                    best = (candidate.ranks, score, candidate.cost, harm)
                }
            }
            guard let best else { return path }
            ranks = best.ranks
            current = best.cost
            currentDamage = best.damage
            path.append((ranks, current))
        }
        return path
    }

    /// The first point of a greedy path whose cost fits `budget`.
    public static func ranks(
        on path: [(ranks: [Int], cost: Int)], budget: Int
    ) -> [Int]? {
        path.first { $0.cost <= budget }?.ranks
    }

    /// Per-layer ranks whose cost fits `budget`, chosen greedily without data: starting from the kept
    /// ranks, it removes tail components (a layer's least important ones, since LoD orders
    /// them) from the layer where they cost the least importance per unit of cost saved,
    /// until the model fits. Importance is a component's share of its layer's energy. Where
    /// a layer is cheaper dense (`(m+n)·k ≥ m·n`) a removal saves nothing, so the candidate
    /// is the block of tail components down to the first rank that saves cost.
    ///
    /// Returns `nil` when even one component per layer does not fit.
    public func greedyRanks(budget: Int, measure: CostMeasure) -> [Int]? {
        var ranks = keptRanks
        let energies = ranks.indices.map { componentEnergies(lowRankLayer: $0) }
        let totals = energies.map { max($0.reduce(0, +), .leastNormalMagnitude) }
        var current = cost(ranks: ranks, measure: measure)
        while current > budget {
            var best: (layer: Int, rank: Int, score: Double, cost: Int)?
            for l in ranks.indices where ranks[l] > 1 {
                var candidate = ranks
                var damage = 0.0
                var after = current
                repeat {
                    candidate[l] -= 1
                    damage += energies[l][candidate[l]] / totals[l]
                    after = cost(ranks: candidate, measure: measure)
                } while after == current && candidate[l] > 1
                let saved = current - after
                guard saved > 0 else { continue }
                let score = damage / Double(saved)
                if best == nil || score < best!.score {
                    best = (l, candidate[l], score, after)
                }
            }
            guard let best else { return nil }
            ranks[best.layer] = best.rank
            current = best.cost
        }
        return ranks
    }

    /// The ranks of the largest uniform rank fraction (`ranks(atFraction:)`) whose cost fits
    /// `budget`, with that fraction; `nil` when even the smallest does not fit.
    public func uniformRanks(budget: Int, measure: CostMeasure) -> (ranks: [Int], fraction: Double)?
    {
        // Every fraction at which some layer's rank changes, largest first.
        var fractions = Set<Double>()
        for kept in keptRanks where kept > 0 {
            for r in 1...kept { fractions.insert(Double(r) / Double(kept)) }
        }
        for fraction in fractions.sorted(by: >) {
            let ranks = ranks(atFraction: fraction)
            if cost(ranks: ranks, measure: measure) <= budget { return (ranks, fraction) }
        }
        return nil
    }
}
