/// How many components of a layer a rank fraction keeps: the one definition of a budget.
///
/// A tier of rank fraction `p` trains, sends and deploys `k = ⌈p · r⌉` components of a layer
/// whose current rank is `r` (docs/spec.md#federation); `maestro scenario show` prices the
/// same `k`. Samplers and evaluation fractions use it too.
public enum RankBudget {
    /// `⌈fraction · rank⌉`, at least 1 when `rank > 0`, never more than `rank` (0 for a layer
    /// with no components left).
    ///
    /// A product less than one part in a million above a whole number counts as it: fractions
    /// travel in TRAIN as 32-bit floats, and `Double(Float(0.3)) · 10` is 3.0000001, not 3.
    public static func rank(fraction: Double, of rank: Int) -> Int {
        guard rank > 0 else { return 0 }
        return min(rank, max(1, Int((fraction * Double(rank) * (1 - 1e-6)).rounded(.up))))
    }

    /// The budget of a tier of rank fraction `fraction` while every tier is capped at `cap`
    /// (budget growth): ``rank(fraction:of:)`` at the smaller of the two.
    public static func rank(fraction: Double, cappedAt cap: Double, of rank: Int) -> Int {
        Self.rank(fraction: min(fraction, cap), of: rank)
    }
}
