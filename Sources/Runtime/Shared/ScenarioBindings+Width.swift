import Federation
import Fleet
import LowRank
import Vocabulary

/// How a width strategy (`heteroFL`, `fjord`, `fedRolex`, `smallModel`) slices the dense model
/// for each tier and round: one definition for the coordinator, `scenario show` and the run's
/// summary. The rules are in docs/width-slicing.md.
extension Scenario {
    /// The width fraction a tier's clients train and deploy: the tier's own (`rankFraction`),
    /// or under `smallModel` the smallest tier's for every tier.
    public func widthFraction(of tier: Tier) -> Double {
        model.strategy == .smallModel ? smallestWidthFraction : tier.rankFraction
    }

    /// The smallest of the tiers' fractions.
    public var smallestWidthFraction: Double { tiers.map(\.rankFraction).min() ?? 1 }

    /// The channel spaces of the scenario's (dense) architecture, or `nil` when the strategy
    /// does not slice widths.
    public func channelSpaces(of architecture: LowRank.Architecture) -> ChannelSpaces? {
        guard model.strategy.isWidthSliced else { return nil }
        return try? ChannelSpaces(architecture)
    }

    /// The slice a client of `tier` trains in round `round` (1-based): the prefix at its width
    /// fraction, or under `fedRolex` the window of that many channels starting at channel
    /// `round − 1` (one further every round, wrapping).
    public func widthPlan(_ spaces: ChannelSpaces, tier: Tier, round: Int) -> WidthPlan {
        let fraction = widthFraction(of: tier)
        switch model.strategy {
        case .fedRolex:
            return WidthPlan(
                spaces: spaces,
                kept: spaces.rollingWindow(fraction: fraction, offset: max(round, 1) - 1))
        default:
            return .prefix(spaces, fraction: fraction)
        }
    }

    /// The sub-model a tier deploys and is evaluated at: the prefix at its width fraction.
    public func deployedWidthPlan(_ spaces: ChannelSpaces, tier: Tier) -> WidthPlan {
        .prefix(spaces, fraction: widthFraction(of: tier))
    }

    /// Under `fjord`, the widths a client of `tier` draws from at each local step: the tiers'
    /// fractions up to its own, increasing, without repeats (empty for other strategies).
    public func orderedDropoutFractions(of tier: Tier) -> [Double] {
        guard model.strategy == .fjord else { return [] }
        return Array(Set(tiers.map(\.rankFraction).filter { $0 <= tier.rankFraction })).sorted()
    }
}
