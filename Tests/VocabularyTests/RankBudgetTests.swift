import Testing
import Vocabulary

@Suite("Rank budget")
struct RankBudgetTests {
    @Test("⌈p · r⌉, at least 1, at most r, 0 for an empty layer")
    func ceilingWithinBounds() {
        #expect(
            [6, 16, 120, 84, 10].map { RankBudget.rank(fraction: 0.125, of: $0) } == [
                1, 2, 15, 11, 2,
            ])
        #expect(RankBudget.rank(fraction: 0.125, of: 1) == 1)
        #expect(RankBudget.rank(fraction: 0.001, of: 50) == 1)
        #expect(RankBudget.rank(fraction: 1, of: 7) == 7)
        #expect(RankBudget.rank(fraction: 1.5, of: 7) == 7)
        #expect(RankBudget.rank(fraction: 0.5, of: 0) == 0)
        #expect(RankBudget.rank(fraction: 0.5, of: -3) == 0)
    }

    @Test("Binary rounding of the fraction never adds a component; a real excess does")
    func roundingTolerance() {
        #expect(RankBudget.rank(fraction: 0.7, of: 10) == 7)
        #expect(RankBudget.rank(fraction: 0.7, of: 100) == 70)
        // 32-bit fractions, as TRAIN carries them: Float(0.3) · 10 = 3.0000001.
        #expect(RankBudget.rank(fraction: Double(Float(0.3)), of: 10) == 3)
        #expect(RankBudget.rank(fraction: Double(Float(0.2)), of: 4095) == 819)
        #expect(RankBudget.rank(fraction: 0.30001, of: 10) == 4)
        #expect(RankBudget.rank(fraction: 0.5001, of: 4096) == 2049)
    }

    @Test("A capped budget is the budget at the smaller of the fraction and the cap")
    func capped() {
        #expect(RankBudget.rank(fraction: 1, cappedAt: 0.125, of: 120) == 15)
        #expect(RankBudget.rank(fraction: 0.125, cappedAt: 0.5, of: 120) == 15)
        #expect(RankBudget.rank(fraction: 0.5, cappedAt: 1, of: 120) == 60)
    }
}
