import Federation
import LowRank
import Tensors
import TestSupport
import Testing

@Suite("Robust aggregation: coordinate-wise median and trimmed mean")
struct RobustAggregationTests {
    /// `combine` on hand-made values (value, sample weight), in client-ID order.
    static func combined(_ values: [(Float, Double)], _ rule: AggregationRule) -> Double {
        var entries = values.map { (value: $0.0, weight: $0.1) }
        return OrderedAggregation.combine(&entries, rule: rule)
    }

    @Test(
        "Median: the middle of an odd count, the mean of the two middle of an even one, unweighted")
    func median() {
        #expect(Self.combined([(7, 1)], .median) == 7)
        #expect(Self.combined([(7, 1), (1, 100)], .median) == 4)
        #expect(Self.combined([(9, 1), (-3, 1), (2, 50)], .median) == 2)
        #expect(Self.combined([(9, 1), (-3, 1), (2, 50), (4, 1)], .median) == 3)
        // Ties: the median is the tied value, whatever the order.
        #expect(Self.combined([(5, 1), (5, 9), (1, 1), (5, 1)], .median) == 5)
        // An outlier of any size moves it by one rank only.
        #expect(Self.combined([(1, 1), (2, 1), (3, 1), (900_000, 1)], .median) == 2.5)
    }

    @Test("Trimmed mean: ⌊β·m⌋ dropped at each end, the rest weighted by samples")
    func trimmedMean() {
        let rule = AggregationRule.trimmedMean(fraction: 0.2)
        // m = 1, 2, 3, 4: ⌊0.2·m⌋ = 0, nothing trimmed: the weighted mean.
        #expect(Self.combined([(7, 3)], rule) == 7)
        #expect(Self.combined([(1, 1), (4, 2)], rule) == 3)
        #expect(Self.combined([(1, 1), (4, 2), (10, 1)], rule) == 19.0 / 4)
        // m = 5: the smallest (−100) and the largest (900 000) go; (2·1 + 3·2 + 4·1)/4 = 3.
        #expect(Self.combined([(900_000, 1), (2, 1), (-100, 1), (3, 2), (4, 1)], rule) == 3)
        // β = 0.4, m = 5: two at each end, only the middle value is left.
        #expect(
            Self.combined(
                [(900_000, 1), (2, 1), (-100, 1), (3, 2), (4, 1)], .trimmedMean(fraction: 0.4))
                == 3)
        // β = 0.25, m = 4 (even): one at each end; ties trimmed in client-ID order, so of the
        // two 1s the first (weight 10) goes and the second (weight 1) stays: (1·1 + 5·3)/4 = 4.
        #expect(
            Self.combined([(1, 10), (1, 1), (5, 3), (8, 1)], .trimmedMean(fraction: 0.25)) == 4)
        // β = 0 is the plain weighted mean.
        #expect(Self.combined([(1, 1), (5, 3)], .trimmedMean(fraction: 0)) == 4)
    }

    /// A one-layer LoD network with rank 3, 1 input, 1 output: `up` [3, 1], `down` [3, 1],
    /// bias [1], all entries `value`.
    static func network(_ value: Float) -> Network {
        Network(
            architecture: Architecture(
                name: "t", inputShape: [1], classCount: 1,
                layers: [.lowRankDense(inputs: 1, outputs: 1, maxRank: 3)]),
            parameters: [
                Tensor(repeating: value, shape: [3, 1]), Tensor(repeating: value, shape: [3, 1]),
                Tensor(repeating: value, shape: [1]),
            ], keptRanks: [3])
    }

    @Test("Per component over exactly the clients that trained it: by 3, 2 and 1 client")
    func perComponent() {
        let global = Self.network(0)
        // Budgets 1, 2, 3: component 0 is trained by all three, 1 by two, 2 by one.
        let values: [Float] = [1, 2, 60]
        let updates = (0..<3).map { c in
            ClientContribution(
                clientID: c, sampleCount: 10 * (c + 1),
                slice: Self.network(values[c]).slice(budgets: [c + 1]))
        }
        let median = OrderedAggregation.pseudoGradient(
            global: global, contributions: updates, coverageDamping: false, rule: .median)
        // Δ = 0 − aggregate. Component 0: median(1, 2, 60) = 2; component 1: (2 + 60)/2;
        // component 2: 60 alone. The bias (all three): 2.
        #expect(median[0].scalars == [-2, -31, -60])
        #expect(median[1].scalars == [-2, -31, -60])
        #expect(median[2].scalars == [-2])
        let trimmed = OrderedAggregation.pseudoGradient(
            global: global, contributions: updates, coverageDamping: false,
            rule: .trimmedMean(fraction: 0.34))
        // ⌊0.34·3⌋ = 1 of three: 2 stays. Two and one: nothing trimmed, weighted by samples:
        // (20·2 + 30·60)/50 = 36.8.
        #expect(trimmed[0].scalars == [-2, Float(-36.8), -60])
        #expect(trimmed[2].scalars == [-2])
        // The mean rule is the existing weighted mean, entry for entry.
        let mean = OrderedAggregation.pseudoGradient(
            global: global, contributions: updates, coverageDamping: false, rule: .mean)
        let plain = OrderedAggregation.pseudoGradient(
            global: global, contributions: updates, coverageDamping: false)
        #expect(mean == plain)
        #expect(mean[0].scalars == [Float(-(10 + 40 + 1800) / 60.0), Float(-36.8), -60])
        // Coverage damping scales a robust component like a mean one: component 2 is held by
        // 30 of the 60 samples.
        let damped = OrderedAggregation.pseudoGradient(
            global: global, contributions: updates, coverageDamping: true, rule: .median)
        #expect(damped[0].scalars == [-2, Float(-31.0 * 50 / 60), -30])
    }

    @Test("Dense FedAvg (shared tensors only): the median ignores one scaled update of ten")
    func dense() {
        let architecture = Architecture(
            name: "d", inputShape: [2], classCount: 2, layers: [.dense(inputs: 2, outputs: 2)])
        let global = Network(
            architecture: architecture,
            parameters: [Tensor(repeating: 0, shape: [2, 2]), Tensor(repeating: 0, shape: [2])],
            keptRanks: [])
        let updates = (0..<10).map { c in
            let value: Float = c == 3 ? 1e5 : Float(c % 2 == 0 ? 1 : 3)
            return ClientContribution(
                clientID: c, sampleCount: 5,
                slice: ModelSlice(
                    budgets: [], factors: [],
                    shared: [
                        Tensor(repeating: value, shape: [2, 2]),
                        Tensor(repeating: value, shape: [2]),
                    ]))
        }
        let median = OrderedAggregation.pseudoGradient(
            global: global, contributions: updates, coverageDamping: false, rule: .median)
        // Sorted: 1 ×5, 3 ×4, 1e5: the fifth and sixth are 1 and 3.
        #expect(median[0].scalars == [-2, -2, -2, -2] && median[1].scalars == [-2, -2])
        let trimmed = OrderedAggregation.pseudoGradient(
            global: global, contributions: updates, coverageDamping: false,
            rule: .trimmedMean(fraction: 0.1))
        // One trimmed at each end (a 1 and the 1e5): (4·1 + 4·3)/8 = 2.
        #expect(trimmed[1].scalars == [-2, -2])
        let mean = OrderedAggregation.pseudoGradient(
            global: global, contributions: updates, coverageDamping: false)
        #expect(mean[1].scalars[0] < -9_000)
    }
}
