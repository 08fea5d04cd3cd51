import Federation
import LowRank
import Tensors
import Testing

@Suite("Robust aggregation of width slices, per weight over the clients that hold it")
struct WidthRobustAggregationTests {
    /// 4 inputs → dense 6 → relu → dense 3 classes: one sliced space of 6 units.
    let mlp = Architecture(
        name: "mlp", inputShape: [4], classCount: 3,
        layers: [.dense(inputs: 4, outputs: 6), .relu, .dense(inputs: 6, outputs: 3)])

    /// A sub-model of `plan` with every entry `value`.
    func filled(_ plan: WidthPlan, _ value: Float) -> [Tensor] {
        plan.subArchitecture.parameterShapes.map {
            Tensor(shape: $0, scalars: [Float](repeating: value, count: $0.reduce(1, *)))
        }
    }

    /// Two honest clients of tier 1/2 (units 0–2) send 1 and 2, a hostile full-width client
    /// sends 100 everywhere: the first three units are held by all three, the rest by the
    /// hostile client alone. Weights are the sample counts 1, 1 and 2.
    func slices() throws -> (global: [Tensor], slices: [WidthRobustAggregation.Slice]) {
        let spaces = try ChannelSpaces(mlp)
        let half = WidthPlan.prefix(spaces, fraction: 0.5)
        let full = WidthPlan.prefix(spaces, fraction: 1)
        let global = mlp.parameterShapes.map { Tensor(zeros: $0) }
        return (
            global,
            [
                .init(tensors: filled(half, 1), plan: half, weight: 1),
                .init(tensors: filled(half, 2), plan: half, weight: 1),
                .init(tensors: filled(full, 100), plan: full, weight: 2),
            ]
        )
    }

    /// Whether entry `j` of tensor `t` (fc1 weight, fc1 bias, fc2 weight, fc2 bias) lies in
    /// the first three hidden units, which all three clients hold.
    func sharedByAll(tensor t: Int, entry j: Int) -> Bool {
        switch t {
        case 0: j / 4 < 3  // fc1 rows (units) of 4 inputs
        case 1: j < 3  // fc1 bias
        case 2: j % 6 < 3  // fc2 columns (units) of each class row
        default: true  // fc2 bias: the classes, held by everyone
        }
    }

    @Test("The median of a weight held by three clients ignores the hostile one")
    func median() throws {
        let (global, slices) = try slices()
        let delta = WidthRobustAggregation.pseudoGradient(
            global: global, slices: slices, rule: .median)
        for t in delta.indices {
            for (j, value) in delta[t].scalars.enumerated() {
                // Δ = global − aggregate: median(1, 2, 100) = 2 where all hold the weight, the
                // hostile client's own value where it alone does.
                #expect(value == (sharedByAll(tensor: t, entry: j) ? -2 : -100), "\(t), \(j)")
            }
        }
    }

    @Test("The trimmed mean drops one value at each end of three; β = 0 is the weighted mean")
    func trimmedMean() throws {
        let (global, slices) = try slices()
        let trimmed = WidthRobustAggregation.pseudoGradient(
            global: global, slices: slices, rule: .trimmedMean(fraction: 0.34))
        let untrimmed = WidthRobustAggregation.pseudoGradient(
            global: global, slices: slices, rule: .trimmedMean(fraction: 0))
        var mean = WidthAggregation(parameterShapes: mlp.parameterShapes)
        for slice in slices { mean.add(slice.tensors, plan: slice.plan, weight: slice.weight) }
        let averaged = mean.pseudoGradient(global: global)
        for t in global.indices {
            for j in 0..<global[t].count {
                let all = sharedByAll(tensor: t, entry: j)
                // ⌊0.34 · 3⌋ = 1 value trimmed at each end: 2 stays. One holder: nothing trimmed.
                #expect(trimmed[t].scalars[j] == (all ? -2 : -100), "\(t), \(j)")
                // (1·1 + 1·2 + 2·100) / 4 = 50.75: the hostile client pulls the mean.
                #expect(untrimmed[t].scalars[j] == (all ? -50.75 : -100), "\(t), \(j)")
                #expect(averaged[t].scalars[j] == untrimmed[t].scalars[j], "\(t), \(j)")
            }
        }
    }

    @Test("A weight no client holds keeps its value")
    func unheldWeights() throws {
        let spaces = try ChannelSpaces(mlp)
        let third = WidthPlan(
            spaces: spaces, kept: spaces.rollingWindow(fraction: 1.0 / 3, offset: 4))
        let global = mlp.parameterShapes.map {
            Tensor(shape: $0, scalars: [Float](repeating: 5, count: $0.reduce(1, *)))
        }
        let delta = WidthRobustAggregation.pseudoGradient(
            global: global,
            slices: [
                .init(tensors: filled(third, 3), plan: third, weight: 1),
                .init(tensors: filled(third, 4), plan: third, weight: 1),
            ], rule: .median)
        // Units 4 and 5 are held: Δ = 5 − (3 + 4) / 2; units 0–3 are not: Δ = 0.
        #expect(delta[1].scalars == [0, 0, 0, 0, 1.5, 1.5])
        #expect(delta[3].scalars == [1.5, 1.5, 1.5])
        #expect(delta[2].scalars[0..<6] == [0, 0, 0, 0, 1.5, 1.5])
    }
}
