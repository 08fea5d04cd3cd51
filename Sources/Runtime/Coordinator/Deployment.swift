import Federation
import Fleet
import LowRank
import Tensors

/// What the tiers deploy after a round: the moving average of the server's model, the budget
/// each tier deploys under `bestValidated`, and whether the round's model and evaluation may
/// stand at all.
enum Deployment {
    /// Moves the deployed average toward the server's model after a round.
    ///
    /// `ā ← d·ā + (1 − d)·w` (`evaluation.averageDecay`), tensor by tensor, in double
    /// precision per entry; the first round's model starts the average. Components the round
    /// opened or shrinking cut must already be cleared in both (`clear`), so the average
    /// never holds a component the server's model does not.
    static func average(_ averaged: inout Network?, toward global: Network, decay: Double) {
        guard var current = averaged, current.architecture == global.architecture else {
            averaged = global
            return
        }
        let (keep, take) = (decay, 1 - decay)
        for index in current.parameters.indices {
            global.parameters[index].scalars.withUnsafeBufferPointer { model in
                current.parameters[index].scalars.withUnsafeMutableBufferPointer { mean in
                    for j in mean.indices {
                        mean[j] = Float(keep * Double(mean[j]) + take * Double(model[j]))
                    }
                }
            }
        }
        current.keptRanks = global.keptRanks
        averaged = current
    }

    /// For each tier (its per-layer `budgets`), the index of the tier budget it deploys under
    /// `evaluation.deploy: bestValidated`: of the budgets that fit within its own (every
    /// layer's rank at most its own), the one with the highest validation accuracy; a tie
    /// goes to the larger budget (more components in all), then to the tier's own.
    static func bestValidatedBudgets(budgets: [[Int]], validationAccuracy: [Double]) -> [Int] {
        precondition(budgets.count == validationAccuracy.count, "one accuracy per budget")
        return budgets.indices.map { tier in
            var best = tier
            for candidate in budgets.indices where candidate != tier {
                let fits = zip(budgets[candidate], budgets[tier]).allSatisfy { $0 <= $1 }
                guard fits else { continue }
                let (accuracy, bestAccuracy) = (
                    validationAccuracy[candidate], validationAccuracy[best]
                )
                let size = budgets[candidate].reduce(0, +)
                let bestSize = budgets[best].reduce(0, +)
                if accuracy > bestAccuracy
                    || (accuracy == bestAccuracy && size > bestSize)
                {
                    best = candidate
                }
            }
            return best
        }
    }

    /// `bestValidatedBudgets` with evidence (`evaluation.deploySignificance` `z` > 0).
    ///
    /// Each tier starts from the smallest tier budget within its own and moves to each larger one
    /// in turn only if, on the validation images where exactly one of the two is right, the
    /// larger is right `w` times and the current one `l` times with `w > l` and
    /// `w − l ≥ z·√(w + l)`. `validationCorrect[i]` holds budget `i`'s per-image results.
    static func bestValidatedBudgets(
        budgets: [[Int]], validationCorrect: [[Bool]], significance z: Double
    ) -> [Int] {
        precondition(budgets.count == validationCorrect.count, "one result row per budget")
        return budgets.indices.map { tier in
            let fitting = budgets.indices.filter { candidate in
                zip(budgets[candidate], budgets[tier]).allSatisfy { $0 <= $1 }
            }.sorted {
                (budgets[$0].reduce(0, +), $0 == tier ? 1 : 0, $0)
                    < (budgets[$1].reduce(0, +), $1 == tier ? 1 : 0, $1)
            }
            var current = fitting[0]
            for candidate in fitting.dropFirst() {
                guard budgets[candidate] != budgets[current] else {
                    // The same budget (tiers capped alike): the tier's own, as without evidence.
                    if candidate == tier { current = candidate }
                    continue
                }
                var (wins, losses) = (0, 0)
                for (larger, smaller) in zip(
                    validationCorrect[candidate], validationCorrect[current])
                where larger != smaller {
                    if larger { wins += 1 } else { losses += 1 }
                }
                if wins > losses && Double(wins - losses) >= z * Double(wins + losses).squareRoot()
                {
                    current = candidate
                }
            }
            return current
        }
    }

    /// Why a model may not stand: `non_finite_model` when a parameter is NaN or ±∞.
    static func nonFiniteModel(_ network: Network) -> String? {
        network.parameters.allSatisfy { $0.scalars.allSatisfy(\.isFinite) }
            ? nil : "non_finite_model"
    }

    /// Why an evaluation may not stand: `non_finite_evaluation` when a tier's accuracy or
    /// loss is NaN or ±∞.
    static func nonFiniteEvaluation(
        accuracy: [String: Double]?, loss: [String: Double]?
    ) -> String? {
        let values = Array((accuracy ?? [:]).values) + Array((loss ?? [:]).values)
        return values.allSatisfy(\.isFinite) ? nil : "non_finite_evaluation"
    }
}
