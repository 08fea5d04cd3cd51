/// Per-layer ranks for a budget from each layer's own damage curve.
///
/// The greedy path (`greedyPath`) takes one block at a time and never takes a step back; where
/// one layer holds most of the cost, an early step it cannot undo decides the rest. This search
/// measures each LoD layer's curve alone (its damage at every rank that saves cost, the other
/// layers at their kept ranks), takes the damages of the layers as adding up, and finds the
/// ranks of least summed damage whose cost fits the budget, exactly, over every combination.
/// A model's cost is a sum over its layers, each depending on its own rank only, so the
/// combination's cost is exact; only its damage is a model.
extension Network {
    /// The ranks below LoD layer `l`'s kept rank at which the model costs less than at every
    /// higher rank of that layer (the other layers kept), highest first: the only cuts of the
    /// layer that save anything. Above its break-even a layer cheaper dense saves nothing.
    public func savingRanks(lowRankLayer l: Int, measure: CostMeasure) -> [Int] {
        var ranks = keptRanks
        var lowest = cost(ranks: ranks, measure: measure)
        var result: [Int] = []
        for rank in stride(from: keptRanks[l] - 1, through: 1, by: -1) {
            ranks[l] = rank
            let after = cost(ranks: ranks, measure: measure)
            if after < lowest {
                result.append(rank)
                lowest = after
            }
        }
        return result
    }

    /// The one-layer cuts a layer-curve search measures: for each LoD layer in order and each
    /// of its saving ranks (highest first), the kept ranks with that layer at that rank.
    public func singleLayerCuts(measure: CostMeasure) -> [(layer: Int, ranks: [Int])] {
        keptRanks.indices.flatMap { l in
            savingRanks(lowRankLayer: l, measure: measure).map { rank in
                var ranks = keptRanks
                ranks[l] = rank
                return (l, ranks)
            }
        }
    }

    /// The ranks of least summed damage that fit `budget`: `damages[l][rank]` is the damage
    /// (for example the loss on a held-out split) with layer `l` alone cut to `rank`, minus the
    /// damage at the kept ranks, for each of `savingRanks(lowRankLayer: l)`; a layer's kept
    /// rank adds no damage. Returns `nil` when no combination fits.
    ///
    /// Exact over every combination of the layers' saving ranks: the partial choices of the
    /// first layers are kept on their cost–damage frontier (a choice costing at least as much
    /// as another with at least its damage is dropped), and a partial choice that cannot fit
    /// even with every later layer at its cheapest rank is dropped. Ties go to the cheaper
    /// choice, then to higher ranks earlier, so the answer is the same on every machine.
    public func layerCurveRanks(
        budget: Int, measure: CostMeasure, damages: [[Int: Double]]
    ) -> [Int]? {
        precondition(damages.count == keptRanks.count, "one damage curve per LoD layer")
        let full = cost(ranks: keptRanks, measure: measure)
        // Per layer, its options: (rank, cost saved, damage), the kept rank first.
        let options: [[(rank: Int, saved: Int, damage: Double)]] = keptRanks.indices.map { l in
            var ranks = keptRanks
            return [(keptRanks[l], 0, 0.0)]
                + savingRanks(lowRankLayer: l, measure: measure).map { rank in
                    ranks[l] = rank
                    let damage = damages[l][rank]
                    precondition(damage != nil, "no damage for layer \(l) at rank \(rank)")
                    return (rank, full - cost(ranks: ranks, measure: measure), damage!)
                }
        }
        // The most the layers from l on can still save.
        var laterSavings = Array(repeating: 0, count: options.count + 1)
        for l in options.indices.reversed() {
            laterSavings[l] = laterSavings[l + 1] + (options[l].map(\.saved).max() ?? 0)
        }
        var frontier: [(cost: Int, damage: Double, ranks: [Int])] = [(full, 0, [])]
        for (l, layerOptions) in options.enumerated() {
            var next: [(cost: Int, damage: Double, ranks: [Int])] = []
            for partial in frontier {
                for option in layerOptions {
                    let after = partial.cost - option.saved
                    guard after - laterSavings[l + 1] <= budget else { continue }
                    next.append(
                        (after, partial.damage + option.damage, partial.ranks + [option.rank]))
                }
            }
            next.sort { a, b in
                if a.cost != b.cost { return a.cost < b.cost }
                if a.damage != b.damage { return a.damage < b.damage }
                return a.ranks.lexicographicallyPrecedes(b.ranks, by: >)
            }
            frontier = []
            for candidate in next
            where frontier.last.map({ candidate.damage < $0.damage }) ?? true {
                frontier.append(candidate)
            }
        }
        // The frontier's damage falls as its cost grows: the last point that fits is the best.
        return frontier.last { $0.cost <= budget }?.ranks
    }
}
