#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import LowRank
import Tensors
import Vocabulary

/// One client's trained slice and how many samples it trained on.
public struct ClientContribution: Sendable, Equatable {
    public var clientID: Int
    public var sampleCount: Int
    public var slice: ModelSlice

    public init(clientID: Int, sampleCount: Int, slice: ModelSlice) {
        self.clientID = clientID
        self.sampleCount = sampleCount
        self.slice = slice
    }
}

/// How the updates covering one entry are combined into the aggregate.
public enum AggregationRule: Sendable, Equatable {
    /// The mean weighted by sample count (FedAvg).
    case mean
    /// The unweighted coordinate-wise median (FedMedian; Yin et al., ICML 2018): the middle
    /// value of an odd count, the mean of the two middle values of an even one.
    case median
    /// The coordinate-wise trimmed mean (Yin et al., ICML 2018): of the `m` values, the
    /// `⌊β·m⌋` smallest and the `⌊β·m⌋` largest are dropped (ties in client-ID order) and the
    /// rest averaged, weighted by sample count. β is in [0, 0.5), so at least one stays.
    case trimmedMean(fraction: Double)
}

/// The server optimiser's buffers, one per parameter tensor (saved in checkpoints).
public struct ServerOptimizerState: Sendable, Equatable, Codable {
    public var firstMoment: [Tensor]
    public var secondMoment: [Tensor]

    public init(for parameters: [Tensor]) {
        firstMoment = parameters.map { Tensor(zeros: $0.shape) }
        secondMoment = parameters.map { Tensor(zeros: $0.shape) }
    }

    /// Clears the buffers of rows `row...` of tensor `index` (components cut by shrinking).
    public mutating func resetRows(ofTensor index: Int, from row: Int) {
        for buffer in [\ServerOptimizerState.firstMoment, \.secondMoment] {
            let width = self[keyPath: buffer][index].shape.dropFirst().reduce(1, *)
            self[keyPath: buffer][index].scalars.withUnsafeMutableBufferPointer { values in
                for j in (row * width)..<values.count { values[j] = 0 }
            }
        }
    }
}

/// Ordered aggregation of LoD factors (docs/spec.md#federation; FjORD's nested rule by rank).
///
/// Component `i` of LoD layer `l` is averaged, weighted by sample count, over the clients
/// of the round whose budget covers it; components no client covered keep their value.
/// Shared parameters are averaged over every client that trained them (all, unless a client
/// froze their layer and sent them with no rows). Sums run in client-ID order in double
/// precision, so the result does not depend on the order updates arrived in.
public enum OrderedAggregation {
    /// The round's pseudo-gradient `Δ = global − aggregate`, one tensor per parameter.
    ///
    /// With `coverageDamping`, component `i`'s `Δ` is scaled by the share of the round's
    /// samples held by clients that trained it (clients without it count as zero update),
    /// so rarely trained tail components move less under server momentum.
    ///
    /// With a robust `rule`, each entry combines the same clients (those that trained it) by
    /// ``AggregationRule/median`` or ``AggregationRule/trimmedMean(fraction:)`` instead.
    public static func pseudoGradient(
        global: Network, contributions: [ClientContribution], coverageDamping: Bool,
        rule: AggregationRule = .mean
    ) -> [Tensor] {
        let ordered = contributions.sorted { $0.clientID < $1.clientID }
        let layout = ParameterLayout(global.architecture)
        var delta = global.parameters.map { Tensor(zeros: $0.shape) }
        let totalSamples = ordered.reduce(0.0) { $0 + Double($1.sampleCount) }
        guard totalSamples > 0 else { return delta }
        for (l, indices) in layout.factorIndices.enumerated() {
            for (tensorIndex, side) in [(indices.up, 0), (indices.down, 1)] {
                let width = global.parameters[tensorIndex].columns
                let kept = global.keptRanks[l]
                let slices = ordered.map {
                    side == 0 ? $0.slice.factors[l].up : $0.slice.factors[l].down
                }
                accumulateRows(
                    global: global.parameters[tensorIndex], rows: kept, width: width,
                    contributions: ordered,
                    slices: slices, budgets: ordered.map { $0.slice.budgets[l] },
                    totalSamples: totalSamples,
                    coverageDamping: coverageDamping, rule: rule, into: &delta[tensorIndex])
            }
        }
        for (position, tensorIndex) in layout.sharedIndices.enumerated() {
            let tensor = global.parameters[tensorIndex]
            let rows = tensor.shape.first ?? 1
            let width = tensor.count / max(rows, 1)
            accumulateRows(
                global: tensor, rows: rows, width: width, contributions: ordered,
                slices: ordered.map { $0.slice.shared[position] },
                budgets: ordered.map { sharedRows($0.slice.shared[position], of: rows) },
                totalSamples: totalSamples, coverageDamping: false, rule: rule,
                into: &delta[tensorIndex])
        }
        return delta
    }

    /// `Δ` rows `0..<rows` of one tensor: `global_i − Σ_{c covers i} n_c x_{c,i} / Σ n_c`.
    private static func accumulateRows(
        global: Tensor, rows: Int, width: Int, contributions: [ClientContribution],
        slices: [Tensor],
        budgets: [Int], totalSamples: Double, coverageDamping: Bool, rule: AggregationRule,
        into delta: inout Tensor
    ) {
        guard rule == .mean else {
            robustRows(
                global: global, rows: rows, width: width, contributions: contributions,
                slices: slices, budgets: budgets, totalSamples: totalSamples,
                coverageDamping: coverageDamping, rule: rule, into: &delta)
            return
        }
        var sum = [Double](repeating: 0, count: width)
        let maxBudget = budgets.max() ?? 0
        delta.scalars.withUnsafeMutableBufferPointer { d in
            global.scalars.withUnsafeBufferPointer { g in
                for row in 0..<min(rows, maxBudget) {
                    for j in 0..<width { sum[j] = 0 }
                    var weight = 0.0
                    for (c, contribution) in contributions.enumerated() where budgets[c] > row {
                        let n = Double(contribution.sampleCount)
                        weight += n
                        slices[c].scalars.withUnsafeBufferPointer { x in
                            let base = row * width
                            for j in 0..<width { sum[j] += n * Double(x[base + j]) }
                        }
                    }
                    guard weight > 0 else { continue }
                    let damping = coverageDamping ? weight / totalSamples : 1
                    let base = row * width
                    for j in 0..<width {
                        d[base + j] = Float((Double(g[base + j]) - sum[j] / weight) * damping)
                    }
                }
            }
        }
    }

    /// `Δ` rows `0..<rows` of one tensor under a robust rule: per entry, `global_i` minus the
    /// median or trimmed mean of the values of the clients that cover row `i`.
    private static func robustRows(
        global: Tensor, rows: Int, width: Int, contributions: [ClientContribution],
        slices: [Tensor], budgets: [Int], totalSamples: Double, coverageDamping: Bool,
        rule: AggregationRule, into delta: inout Tensor
    ) {
        let maxBudget = budgets.max() ?? 0
        var values: [(value: Float, weight: Double)] = []
        values.reserveCapacity(contributions.count)
        delta.scalars.withUnsafeMutableBufferPointer { d in
            global.scalars.withUnsafeBufferPointer { g in
                for row in 0..<min(rows, maxBudget) {
                    let covering = contributions.indices.filter { budgets[$0] > row }
                    guard !covering.isEmpty else { continue }
                    let weight = covering.reduce(0.0) {
                        $0 + Double(contributions[$1].sampleCount)
                    }
                    let damping = coverageDamping ? weight / totalSamples : 1
                    let base = row * width
                    for j in 0..<width {
                        values.removeAll(keepingCapacity: true)
                        for c in covering {
                            values.append(
                                (slices[c].scalars[base + j], Double(contributions[c].sampleCount)))
                        }
                        let combined = combine(&values, rule: rule)
                        d[base + j] = Float((Double(g[base + j]) - combined) * damping)
                    }
                }
            }
        }
    }

    /// One entry's robust aggregate of `values` (each with its sample weight), which come in
    /// client-ID order; sorting is stable, so ties keep that order.
    public static func combine(
        _ values: inout [(value: Float, weight: Double)], rule: AggregationRule
    ) -> Double {
        let order = values.indices.sorted {
            (values[$0].value, $0) < (values[$1].value, $1)
        }
        let m = order.count
        switch rule {
        case .mean:
            let weight = values.reduce(0.0) { $0 + $1.weight }
            return values.reduce(0.0) { $0 + $1.weight * Double($1.value) } / weight
        case .median:
            let upper = Double(values[order[m / 2]].value)
            return m % 2 == 1 ? upper : (Double(values[order[m / 2 - 1]].value) + upper) / 2
        case .trimmedMean(let fraction):
            let trimmed = Int((fraction * Double(m)).rounded(.down))
            var (sum, weight) = (0.0, 0.0)
            for index in order[trimmed..<(m - trimmed)] {
                sum += values[index].weight * Double(values[index].value)
                weight += values[index].weight
            }
            return sum / weight
        }
    }

    /// How many leading rows of each parameter tensor some contribution covers: for a factor
    /// the largest budget among the round's clients (at most the kept rank), for a shared
    /// tensor all its rows when anyone trained it. The rows after them were trained by no
    /// client of the round.
    public static func coveredRows(
        global: Network, contributions: [ClientContribution]
    ) -> [Int] {
        let layout = ParameterLayout(global.architecture)
        var rows = global.parameters.map { _ in 0 }
        guard !contributions.isEmpty else { return rows }
        for (l, indices) in layout.factorIndices.enumerated() {
            let covered = min(
                global.keptRanks[l], contributions.map { $0.slice.budgets[l] }.max() ?? 0)
            rows[indices.up] = covered
            rows[indices.down] = covered
        }
        for (position, tensorIndex) in layout.sharedIndices.enumerated() {
            let all = global.parameters[tensorIndex].shape.first ?? 1
            rows[tensorIndex] =
                contributions.map { sharedRows($0.slice.shared[position], of: all) }.max() ?? 0
        }
        return rows
    }

    /// The rows of a shared tensor a contribution covers: all of them, or none when the
    /// client froze the layer and sent the tensor back with no rows.
    private static func sharedRows(_ tensor: Tensor, of rows: Int) -> Int {
        min(rows, tensor.shape.first ?? 1)
    }

    /// Applies the server optimiser to the global parameters along `delta`.
    ///
    /// With `coveredRows` (from ``coveredRows(global:contributions:)``), only the first
    /// `coveredRows[i]` rows of tensor `i` take a step: the others keep their values and
    /// their optimiser state, so momentum earned in earlier rounds is not spent in a round
    /// nobody trained them (rank-aware server state).
    public static func apply(
        _ delta: [Tensor], to parameters: inout [Tensor], optimizer: ServerOptimizer,
        state: inout ServerOptimizerState, coveredRows: [Int]? = nil
    ) {
        for i in parameters.indices {
            let rows = parameters[i].shape.first ?? 1
            let width = parameters[i].count / max(rows, 1)
            let count = coveredRows.map { min($0[i], rows) * width } ?? parameters[i].count
            parameters[i].scalars.withUnsafeMutableBufferPointer { w in
                delta[i].scalars.withUnsafeBufferPointer { d in
                    state.firstMoment[i].scalars.withUnsafeMutableBufferPointer { m in
                        state.secondMoment[i].scalars.withUnsafeMutableBufferPointer { v in
                            // Each hyperparameter rounded to 32 bits once, then 32-bit
                            // arithmetic throughout.
                            switch optimizer {
                            case .fedAvg(let rate):
                                let rate = Float(rate)
                                for j in 0..<count { w[j] -= rate * d[j] }
                            case .fedAvgM(let rate, let beta):
                                let (rate, beta) = (Float(rate), Float(beta))
                                for j in 0..<count {
                                    m[j] = beta * m[j] + d[j]
                                    w[j] -= rate * m[j]
                                }
                            case .fedAdam(let rate, let beta1, let beta2, let epsilon):
                                let (rate, beta1, beta2, epsilon) = (
                                    Float(rate), Float(beta1), Float(beta2), Float(epsilon)
                                )
                                for j in 0..<count {
                                    m[j] = beta1 * m[j] + (1 - beta1) * d[j]
                                    v[j] = beta2 * v[j] + (1 - beta2) * d[j] * d[j]
                                    w[j] -= rate * m[j] / (v[j].squareRoot() + epsilon)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
