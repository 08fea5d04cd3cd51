import Fleet
import Foundation

extension Scenario {
    /// How a summary names the budget a tier deploys (`deployed_budget`): the name of the tier
    /// whose budget it is, and, while budget growth caps that budget below the tier's own
    /// fraction, the cap it actually runs: `full@1/8` is the full tier's budget cut to the 1/8
    /// prefix.
    public func deployedBudgetLabel(_ tierName: String, round: Int) -> String {
        guard let tier = tiers.first(where: { $0.name == tierName }),
            let cap = training.budgetGrowth?.cap(atRound: max(round, 1)),
            cap < tier.rankFraction
        else { return tierName }
        return "\(tierName)@\(Self.fractionText(cap))"
    }

    /// 0.125 as `1/8`, 0.5 as `1/2`; other fractions as decimals (`0.3`).
    static func fractionText(_ fraction: Double) -> String {
        let inverse = 1 / fraction
        if inverse == inverse.rounded(), inverse < 1e6 { return "1/\(Int(inverse))" }
        return String(format: "%g", fraction)
    }
}
