import Fleet
import Foundation
import Testing
import Vocabulary

/// The budget `scenario show` prices is the budget the run trains.
///
/// The two once used formulas of their own; both now call `RankBudget`. These tests keep the
/// retired `scenario show` formula as a reference and show where the two differed.
@Suite("One rank budget for scenario show and the run")
struct RankBudgetTests {
    /// The formula `Scenario.Tier.keptRank` used before the budget had one definition:
    /// `⌈p · r − 1e-9⌉`, at least 1, at most `r`.
    static func retiredKeptRank(fraction: Double, rank: Int) -> Int {
        guard rank > 0 else { return 0 }
        return min(rank, max(1, Int((fraction * Double(rank) - 1e-9).rounded(.up))))
    }

    /// Every rank fraction the shipped scenarios make the run use: tier fractions, budget
    /// growth caps and the capped fractions, sampler fractions, and the model-scoped sampler
    /// fractions as fractions of each tier's budget (`f / p` for `f ≤ p`).
    static func shippedFractions() throws -> [Double] {
        let files = try FileManager.default.contentsOfDirectory(atPath: scenariosDirectory.path)
            .filter { $0.hasSuffix(".yaml") }
        var fractions: Set<Double> = []
        for file in files {
            let scenario = try Scenario.load(
                path: scenariosDirectory.appendingPathComponent(file).path)
            let tiers = scenario.tiers.map(\.rankFraction)
            let caps = scenario.training.budgetGrowth?.caps ?? []
            fractions.formUnion(tiers + caps)
            fractions.formUnion(tiers.flatMap { p in caps.map { min(p, $0) } })
            switch scenario.training.sampler {
            case .sharedFraction(let sampled, let scope):
                fractions.formUnion(sampled)
                if scope == .model {
                    fractions.formUnion(
                        tiers.flatMap { p in
                            sampled.filter { $0 <= p * (1 + 1e-9) }.map { min($0 / p, 1) }
                        })
                }
            case .fixed(let fraction): fractions.insert(fraction)
            default: break
            }
        }
        return fractions.sorted()
    }

    /// The (fraction, rank) pairs over ranks 1...4096 where the retired formula and the run's
    /// disagree, as (fraction, rank, retired, run).
    static func differences(_ fractions: [Double]) -> [(Double, Int, Int, Int)] {
        fractions.flatMap { p in
            (1...4096).compactMap { r in
                let retired = retiredKeptRank(fraction: p, rank: r)
                let run = RankBudget.rank(fraction: p, of: r)
                return retired == run ? nil : (p, r, retired, run)
            }
        }
    }

    @Test("The shipped scenarios' fractions, as written: both formulas agree on ranks 1...4096")
    func shippedFractionsAgree() throws {
        let fractions = try Self.shippedFractions()
        #expect(
            fractions == [0.125, 0.2, 0.25, 0.2 / 0.6, 0.4, 0.5, 0.6, 0.4 / 0.6, 0.6 / 0.8, 0.8, 1])
        #expect(Self.differences(fractions).isEmpty)
        // `scenario show` and the run read the same function.
        let tier = try shipped("fjord-uniform5").tiers[0]
        for r in 1...4096 {
            #expect(tier.keptRank(outOf: r) == RankBudget.rank(fraction: 0.2, of: r))
            #expect(tier.keptRank(outOf: r, cap: 0.125) == RankBudget.rank(fraction: 0.125, of: r))
        }
    }

    @Test("As they travel in TRAIN (32-bit): the retired formula kept one component too many")
    func wireFractionsDiffered() throws {
        let wire = Set(try Self.shippedFractions().map { Double(Float($0)) }).sorted()
        let differences = Self.differences(wire)
        // Exactly the whole-number products of the fractions that are not binary: fifths
        // (r a multiple of 5) and thirds (r a multiple of 3), where the retired formula read
        // the float's excess as a part of a component.
        #expect(differences.count == 6006)
        let byFraction = Dictionary(grouping: differences, by: { Float($0.0) }).mapValues(\.count)
        #expect(
            byFraction == [
                0.2: 819, 0.4: 819, 0.6: 819, 0.8: 819, Float(1.0 / 3): 1365,
                Float(2.0 / 3): 1365,
            ])
        let thirds: Set<Float> = [Float(1.0 / 3), Float(2.0 / 3)]
        for (p, r, retired, run) in differences {
            // Every multiple of 5 (fifths: 4096 / 5 → 819) or of 3 (thirds: 1365), no other.
            #expect(r % (thirds.contains(Float(p)) ? 3 : 5) == 0)
            #expect(retired == run + 1)
            #expect(Double(run) == (p * Double(r)).rounded())
        }
        #expect(differences.first.map { [$0.1, $0.2, $0.3] } == [5, 2, 1])
    }
}
