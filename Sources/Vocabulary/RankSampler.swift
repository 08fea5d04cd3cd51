/// How a local training step picks the rank each LoD layer runs at, within the budget
/// (docs/spec.md#rank-sampling): the sampler a scenario names, the trainer runs and TRAIN
/// carries.
public enum RankSampler: Sendable, Equatable, Hashable, Codable {
    /// The paper's sampler: every pair (layer l, rank j ≤ k_l) once per shuffled sweep; the
    /// step truncates layer l to j and runs every other layer at its whole budget.
    case perLayer
    /// Each layer draws its own rank uniformly in 1…k_l in the same step.
    case acrossLayers
    /// One fraction f from `fractions` per step for all layers (FjORD's ordered dropout);
    /// `scope` says what f is a fraction of. A scenario that lists none samples its tiers'
    /// fractions; TRAIN with none means ``defaultFractions``.
    case sharedFraction(fractions: [Double], scope: FractionScope = .budget)
    /// A constant fraction of each layer's budget (Pufferfish-like baseline).
    case fixed(fraction: Double)
    /// No sampling: every step trains the whole budget (`none` in scenario files, on the
    /// command line and in TRAIN).
    case unsampled

    /// What the fractions of a `sharedFraction` sampler are fractions of.
    public enum FractionScope: String, Sendable, Equatable, Hashable, Codable, CaseIterable {
        /// The client's budget: a step at f trains `⌈f · k_l⌉` of its `k_l` components, so
        /// every client spreads its steps over prefixes of its own budget.
        case budget
        /// The model's kept ranks, as FjORD's ordered dropout (Horváth et al. 2021): a client
        /// of tier fraction p draws only among the fractions f ≤ p and trains about
        /// `⌈f · r_l⌉` components (`⌈f/p · k_l⌉`, the same or one more), so every client
        /// also trains the prefixes the smaller tiers run.
        case model
    }

    /// The sampler's kind without its fractions: its name in scenario files and on the command
    /// line, and what TRAIN's sampler field tells apart.
    public enum Kind: String, Sendable, Equatable, Hashable, Codable, CaseIterable {
        case perLayer
        case acrossLayers
        case sharedFraction
        case fixed
        case unsampled = "none"
    }

    public var kind: Kind {
        switch self {
        case .perLayer: .perLayer
        case .acrossLayers: .acrossLayers
        case .sharedFraction: .sharedFraction
        case .fixed: .fixed
        case .unsampled: .unsampled
        }
    }

    /// The name in scenario files (`kind`) and on the command line.
    public var name: String { kind.rawValue }

    /// Every kind's name, in declaration order.
    public static let names = Kind.allCases.map(\.rawValue)

    /// Fractions `sharedFraction` draws from when none are given (FjORD's five).
    public static let defaultFractions: [Double] = [0.125, 0.25, 0.5, 0.75, 1]

    /// Parses a command-line sampler: `perLayer`, `acrossLayers`, `sharedFraction` (of the
    /// budget, at ``defaultFractions``), `fixed` (at 0.5) or `fixed:P` with P in (0, 1], `none`.
    public init?(name: String) {
        let parts = name.split(separator: ":", maxSplits: 1).map(String.init)
        guard let first = parts.first, let kind = Kind(rawValue: first) else { return nil }
        guard kind == .fixed || parts.count == 1 else { return nil }
        switch kind {
        case .perLayer: self = .perLayer
        case .acrossLayers: self = .acrossLayers
        case .sharedFraction: self = .sharedFraction(fractions: Self.defaultFractions)
        case .fixed:
            let fraction = parts.count > 1 ? Double(parts[1]) : 0.5
            guard let fraction, fraction > 0, fraction <= 1 else { return nil }
            self = .fixed(fraction: fraction)
        case .unsampled: self = .unsampled
        }
    }

    /// The same sampler with its fractions taken of the budget of a client whose tier has
    /// rank fraction `tierFraction`: what that client runs and what TRAIN carries to it.
    ///
    /// A model-scoped fraction f ≤ p becomes f / p (at most 1); fractions above p are never
    /// drawn, and a tier below every fraction trains its whole budget (`[1]`). Other samplers
    /// are returned unchanged.
    public func ofBudget(tierFraction: Double) -> RankSampler {
        guard case .sharedFraction(let fractions, .model) = self else { return self }
        // A tolerance, so that a tier fraction written as 0.3 keeps a sampled 0.3.
        let within = fractions.filter { $0 <= tierFraction * (1 + 1e-9) }
        return .sharedFraction(
            fractions: within.isEmpty ? [1] : within.map { min($0 / tierFraction, 1) },
            scope: .budget)
    }
}
