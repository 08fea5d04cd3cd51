import Tensors
import Vocabulary

/// How a training step picks the rank each LoD layer runs at (Maestro §3.1, FjORD).
public enum RankSampler: Sendable, Equatable, Codable {
    /// The paper's sampler: every pair (layer l, rank j ≤ r_l) once per shuffled sweep;
    /// the step truncates layer l to j and runs every other layer at full rank.
    case perLayer
    /// Each layer draws its own rank uniformly in 1…r_l.
    case acrossLayers
    /// One fraction p from `fractions` for all layers: `ceil(p·r_l)` (FjORD's ordered dropout).
    case sharedFraction(fractions: [Double])
    /// A constant fraction (Pufferfish-like baseline).
    case fixed(fraction: Double)
    /// No sampling: every layer at full rank.
    case none

    /// The name used on the command line and in scenario files.
    public var name: String {
        switch self {
        case .perLayer: "perLayer"
        case .acrossLayers: "acrossLayers"
        case .sharedFraction: "sharedFraction"
        case .fixed: "fixed"
        case .none: "none"
        }
    }

    /// Fractions FjORD-style sampling draws from by default.
    public static let defaultFractions: [Double] = [0.125, 0.25, 0.5, 0.75, 1]

    /// Parses `perLayer`, `acrossLayers`, `sharedFraction`, `fixed` (or `fixed:0.25`), `none`.
    public init?(name: String) {
        let parts = name.split(separator: ":", maxSplits: 1).map(String.init)
        switch parts[0] {
        case "perLayer": self = .perLayer
        case "acrossLayers": self = .acrossLayers
        case "sharedFraction": self = .sharedFraction(fractions: RankSampler.defaultFractions)
        case "fixed":
            let fraction = parts.count > 1 ? Double(parts[1]) : 0.5
            guard let fraction, fraction > 0, fraction <= 1 else { return nil }
            self = .fixed(fraction: fraction)
        case "none": self = .none
        default: return nil
        }
    }
}

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
        case .none:
            return limits
        case .fixed(let fraction):
            return limits.map { RankBudget.rank(fraction: fraction, of: $0) }
        case .sharedFraction(let fractions):
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
