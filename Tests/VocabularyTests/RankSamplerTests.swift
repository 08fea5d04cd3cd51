import Testing
import Vocabulary

@Suite("Rank sampler and server optimiser terms")
struct RankSamplerTests {
    @Test("Names as scenario files and the command line spell them")
    func names() {
        #expect(
            RankSampler.names == ["perLayer", "acrossLayers", "sharedFraction", "fixed", "none"])
        #expect(RankSampler.unsampled.name == "none")
        #expect(RankSampler.sharedFraction(fractions: [0.5], scope: .model).kind == .sharedFraction)
        #expect(RankSampler.FractionScope.allCases.map(\.rawValue) == ["budget", "model"])
        #expect(ServerOptimizer.names == ["fedAvg", "fedAvgM", "fedAdam"])
        #expect(
            ServerOptimizer.fedAdam(learningRate: 0.01, beta1: 0.9, beta2: 0.99, epsilon: 1e-3)
                .learningRate == 0.01)
        #expect(ServerOptimizer.fedAvgM(learningRate: 0.5, momentum: 0.9).name == "fedAvgM")
    }

    @Test("Command-line forms parse; anything else is refused")
    func parsing() {
        #expect(RankSampler(name: "perLayer") == .perLayer)
        #expect(RankSampler(name: "acrossLayers") == .acrossLayers)
        #expect(
            RankSampler(name: "sharedFraction")
                == .sharedFraction(fractions: RankSampler.defaultFractions, scope: .budget))
        #expect(RankSampler(name: "fixed") == .fixed(fraction: 0.5))
        #expect(RankSampler(name: "fixed:0.25") == .fixed(fraction: 0.25))
        #expect(RankSampler(name: "none") == .unsampled)
        for refused in [
            "", "unsampled", "sometimes", "fixed:0", "fixed:1.5", "fixed:x", "perLayer:2",
        ] {
            #expect(RankSampler(name: refused) == nil, "\(refused)")
        }
    }

    @Test("Model-scoped fractions become fractions of a tier's budget; others are unchanged")
    func ofBudget() {
        let model = RankSampler.sharedFraction(fractions: [0.125, 0.25, 0.5, 1], scope: .model)
        #expect(
            model.ofBudget(tierFraction: 0.5)
                == .sharedFraction(fractions: [0.25, 0.5, 1], scope: .budget))
        #expect(
            model.ofBudget(tierFraction: 1) == .sharedFraction(fractions: [0.125, 0.25, 0.5, 1]))
        // Below every fraction: the whole budget.
        #expect(model.ofBudget(tierFraction: 0.1) == .sharedFraction(fractions: [1]))
        // A tier fraction written as 0.3 keeps a sampled 0.3 (binary rounding of 0.1 · 3).
        let thirds = RankSampler.sharedFraction(fractions: [0.1 * 3], scope: .model)
        #expect(thirds.ofBudget(tierFraction: 0.3) == .sharedFraction(fractions: [1]))
        for unchanged: RankSampler in [
            .perLayer, .acrossLayers, .fixed(fraction: 0.25), .unsampled,
            .sharedFraction(fractions: [0.25, 1], scope: .budget),
        ] {
            #expect(unchanged.ofBudget(tierFraction: 0.5) == unchanged)
        }
    }
}
