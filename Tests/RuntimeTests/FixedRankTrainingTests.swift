import Federation
import Fleet
import LowRank
import Tensors
import Testing
import Vocabulary

@testable import Runtime

@Suite("fixedRank: what a client trains and sends, by hand on small shapes")
struct FixedRankTrainingTests {
    /// Two LoD layers, 6 → 5 (rank 5) and 5 → 3 (rank 3), no activation in between, so that
    /// every component has a gradient on any batch.
    static let architecture = Architecture(
        name: "tiny", inputShape: [6], classCount: 3,
        layers: [
            .lowRankDense(inputs: 6, outputs: 5, maxRank: 5),
            .lowRankDense(inputs: 5, outputs: 3, maxRank: 3),
        ])

    static func scenario(_ strategy: String, sampler: String) throws -> Scenario {
        try Scenario.parse(
            yaml: """
                name: tiny
                seed: 7
                clients: 4
                rounds: 3
                clientsPerRound: 2
                dataset: {name: synthetic, synthetic: {iid: true}}
                model: {architecture: logistic, strategy: \(strategy)}
                training: {localEpochs: 1, batchSize: 4, learningRate: 0.1, sampler: \(sampler)}
                tiers:
                  - {name: half, share: 0.5, rankFraction: 0.5, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
                  - {name: full, share: 0.5, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
                """)
    }

    /// The rows (components) of `after` that differ from the same rows of `before`.
    static func changedRows(_ before: Tensor, _ after: Tensor) -> [Int] {
        let width = before.columns
        return (0..<before.shape[0]).filter { row in
            before.scalars[row * width..<(row + 1) * width]
                != after.scalars[row * width..<(row + 1) * width]
        }
    }

    /// One local step (4 samples, batch 4) of a client of the half tier: for each LoD layer,
    /// the components whose Uᵀ row and whose Vᵀ row both changed, and the shapes sent back.
    static func oneStep(
        _ scenario: Scenario, global: Network, seed: UInt64
    ) -> (trained: [[Int]], shapes: [[Int]], task: TrainingTask) {
        let budgets = RoundLogic.budgets(
            fraction: 0.5, keptRanks: global.keptRanks, lowRank: scenario.isLowRank)
        let slice = global.slice(budgets: budgets)
        let task = CoordinatorMachine.task(
            for: slice, scenario: scenario, round: 1, client: UInt32(seed), tierFraction: 0.5)
        var generator = SeededGenerator(seed: seed)
        let samples = TrainingSamples(
            features: Tensor.randomNormal(shape: [4 * 6], using: &generator).scalars,
            labels: [0, 1, 2, Int32(seed % 3)], featureCount: 6)
        let result = LocalTraining.run(task, architecture: architecture, samples: samples)
        let trained = zip(slice.factors, result.slice.factors).map { sent, back in
            Set(changedRows(sent.up, back.up)).intersection(changedRows(sent.down, back.down))
                .sorted()
        }
        return (trained, result.slice.tensors.map(\.shape), task)
    }

    @Test(
        "Every step trains every component of the tier's budget ⌈p·r⌉ and sends back nothing beyond it"
    )
    func trainsTheWholeBudgetEveryStep() throws {
        let scenario = try Self.scenario("fixedRank", sampler: "none")
        #expect(scenario.isLowRank)
        var generator = SeededGenerator(seed: 11)
        let global = Network(architecture: Self.architecture, using: &generator)
        #expect(global.keptRanks == [5, 3])
        // p = 1/2: ⌈5/2⌉ = 3 and ⌈3/2⌉ = 2 components.
        for seed in UInt64(1)...6 {
            let (trained, shapes, task) = Self.oneStep(scenario, global: global, seed: seed)
            #expect(task.budgets == [3, 2])
            #expect(task.sampler == .unsampled && task.groupLasso == 0)
            #expect(task.fullBudgetProbability == 0 && !task.selfDistillation)
            #expect(trained == [[0, 1, 2], [0, 1]], "seed \(seed)")
            // Uᵀ 3×5, Vᵀ 3×6, bias 5; Uᵀ 2×3, Vᵀ 2×5, bias 3: the budget, no more.
            #expect(shapes == [[3, 5], [3, 6], [2, 3], [2, 5], [5], [3]])
        }
    }

    @Test(
        "Ordered LoD's per-layer sampler, by contrast, leaves budget components out of some steps")
    func orderedLoDSamplesWithinTheBudget() throws {
        let scenario = try Self.scenario("orderedLoD", sampler: "perLayer")
        var generator = SeededGenerator(seed: 11)
        let global = Network(architecture: Self.architecture, using: &generator)
        let steps = (UInt64(1)...6).map { Self.oneStep(scenario, global: global, seed: $0) }
        #expect(steps.allSatisfy { $0.task.sampler == .perLayer })
        #expect(steps.contains { $0.trained != [[0, 1, 2], [0, 1]] })
    }

    @Test(
        "The server averages each component over the clients that trained it: the full tier's alone beyond the half tier's budget"
    )
    func serverAveragesPerComponent() throws {
        var generator = SeededGenerator(seed: 5)
        let global = Network(architecture: Self.architecture, using: &generator)
        func update(budgets: [Int], value: Float, id: Int, samples: Int) -> ClientContribution {
            var slice = global.slice(budgets: budgets)
            slice.factors = slice.factors.map {
                FactorPair(
                    up: Tensor(repeating: value, shape: $0.up.shape),
                    down: Tensor(repeating: value, shape: $0.down.shape))
            }
            slice.shared = slice.shared.map { Tensor(repeating: value, shape: $0.shape) }
            return ClientContribution(clientID: id, sampleCount: samples, slice: slice)
        }
        // Half tier (budgets 3, 2): 10 samples of ones. Full tier: 30 samples of fives.
        let contributions = [
            update(budgets: [3, 2], value: 1, id: 1, samples: 10),
            update(budgets: [5, 3], value: 5, id: 2, samples: 30),
        ]
        var parameters = global.parameters
        var state = ServerOptimizerState(for: parameters)
        OrderedAggregation.apply(
            OrderedAggregation.pseudoGradient(
                global: global, contributions: contributions, coverageDamping: false),
            to: &parameters, optimizer: .fedAvg(learningRate: 1), state: &state)
        // Components both trained: (10·1 + 30·5)/40 = 4; beyond the half budget: 5 (up to
        // float32 rounding of the server step w − (w − mean)).
        let up = parameters[0].scalars  // Uᵀ of the first layer, 5 × 5
        #expect(up[0..<15].allSatisfy { abs($0 - 4) < 1e-5 })
        #expect(up[15..<25].allSatisfy { abs($0 - 5) < 1e-5 })
        let secondDown = parameters[4].scalars  // Vᵀ of the second layer, 3 × 5
        #expect(secondDown[0..<10].allSatisfy { abs($0 - 4) < 1e-5 })
        #expect(secondDown[10..<15].allSatisfy { abs($0 - 5) < 1e-5 })
    }
}
