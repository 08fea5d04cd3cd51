import Federation
import LowRank
import Tensors
import TestSupport
import Testing
import Vocabulary

@Suite("Ordered aggregation")
struct OrderedAggregationTests {
    /// A one-layer LoD network `y = Uᵀᵀ Vᵀ x + c` with 3 inputs, 2 outputs, rank 2, whose
    /// parameters are all `value`.
    static func network(value: Float) -> Network {
        let architecture = Architecture(
            name: "t", inputShape: [3], classCount: 2,
            layers: [
                .lowRankDense(inputs: 3, outputs: 2, maxRank: 2)
            ])
        return Network(
            architecture: architecture,
            parameters: [
                Tensor(repeating: value, shape: [2, 2]), Tensor(repeating: value, shape: [2, 3]),
                Tensor(repeating: value, shape: [2]),
            ], keptRanks: [2])
    }

    static func contribution(id: Int, samples: Int, budget: Int, value: Float) -> ClientContribution
    {
        ClientContribution(
            clientID: id, sampleCount: samples,
            slice: network(value: value).slice(budgets: [budget]))
    }

    @Test("Hand-computed: component means over holders only; uncovered components keep their value")
    func handComputed() {
        var global = Self.network(value: 0)
        global.parameters[0] = Tensor(shape: [2, 2], scalars: [0, 0, 9, 9])  // row 1 = component 2
        global.parameters[1] = Tensor(shape: [2, 3], scalars: [0, 0, 0, 7, 7, 7])
        // Client 1: 10 samples, budget 1, all ones. Client 2: 30 samples, budget 1, all fives.
        let updates = [
            Self.contribution(id: 2, samples: 30, budget: 1, value: 5),
            Self.contribution(id: 1, samples: 10, budget: 1, value: 1),
        ]
        var parameters = global.parameters
        var state = ServerOptimizerState(for: parameters)
        let delta = OrderedAggregation.pseudoGradient(
            global: global, contributions: updates, coverageDamping: false)
        OrderedAggregation.apply(
            delta, to: &parameters, optimizer: .fedAvg(learningRate: 1), state: &state)
        // Component 1: (10·1 + 30·5)/40 = 4. Component 2: nobody holds it: unchanged.
        #expect(parameters[0].scalars == [4, 4, 9, 9])
        #expect(parameters[1].scalars == [4, 4, 4, 7, 7, 7])
        // Bias is shared: plain weighted mean.
        #expect(parameters[2].scalars == [4, 4])
    }

    @Test(
        "Tail components average over fewer clients; coverage damping scales by holders' sample share"
    )
    func nested() {
        let global = Self.network(value: 0)
        let updates = [
            Self.contribution(id: 1, samples: 10, budget: 1, value: 1),
            Self.contribution(id: 2, samples: 30, budget: 2, value: 5),
        ]
        let plain = OrderedAggregation.pseudoGradient(
            global: global, contributions: updates, coverageDamping: false)
        // Δ = global − mean: component 1 → −4 (both), component 2 → −5 (client 2 only).
        #expect(plain[0].scalars == [-4, -4, -5, -5])
        let damped = OrderedAggregation.pseudoGradient(
            global: global, contributions: updates, coverageDamping: true)
        // Component 2 is held by 30 of the 40 samples: −5 · 0.75.
        #expect(damped[0].scalars == [-4, -4, -3.75, -3.75])
        #expect(damped[2].scalars == [-4, -4])
    }

    @Test(
        "Rank-aware server: uncovered components keep their values and FedAdam moments; covered ones step"
    )
    func rankAwareServer() {
        let global = Self.network(value: 0)
        let adam = ServerOptimizer.fedAdam(
            learningRate: 0.1, beta1: 0.9, beta2: 0.99, epsilon: 1e-3)
        // Round 1: both components trained (budget 2), so both carry momentum.
        var parameters = global.parameters
        var state = ServerOptimizerState(for: parameters)
        let first = [Self.contribution(id: 1, samples: 10, budget: 2, value: 1)]
        OrderedAggregation.apply(
            OrderedAggregation.pseudoGradient(
                global: global, contributions: first, coverageDamping: false),
            to: &parameters, optimizer: adam, state: &state)
        // Round 2: only component 1 is trained.
        let afterFirst = Network(
            architecture: global.architecture, parameters: parameters, keptRanks: [2])
        let second = [Self.contribution(id: 2, samples: 10, budget: 1, value: 2)]
        #expect(
            OrderedAggregation.coveredRows(global: afterFirst, contributions: second) == [1, 1, 2])
        #expect(OrderedAggregation.coveredRows(global: afterFirst, contributions: []) == [0, 0, 0])
        let delta = OrderedAggregation.pseudoGradient(
            global: afterFirst, contributions: second, coverageDamping: false)
        var plain = parameters
        var plainState = state
        OrderedAggregation.apply(delta, to: &plain, optimizer: adam, state: &plainState)
        var aware = parameters
        var awareState = state
        OrderedAggregation.apply(
            delta, to: &aware, optimizer: adam, state: &awareState,
            coveredRows: OrderedAggregation.coveredRows(global: afterFirst, contributions: second))
        for tensor in 0..<2 {
            let width = parameters[tensor].columns
            let tail = width..<(2 * width)
            // Plain FedAdam moves the untrained component on its old momentum ...
            #expect(Array(plain[tensor].scalars[tail]) != Array(parameters[tensor].scalars[tail]))
            // ... the rank-aware server leaves it and its moments exactly as they were.
            #expect(Array(aware[tensor].scalars[tail]) == Array(parameters[tensor].scalars[tail]))
            #expect(
                Array(awareState.firstMoment[tensor].scalars[tail])
                    == Array(state.firstMoment[tensor].scalars[tail]))
            #expect(
                Array(awareState.secondMoment[tensor].scalars[tail])
                    == Array(state.secondMoment[tensor].scalars[tail]))
            // The trained component takes the same step either way.
            #expect(
                Array(aware[tensor].scalars[0..<width]) == Array(plain[tensor].scalars[0..<width]))
        }
        #expect(aware[2] == plain[2])
    }

    @Test(
        "A layer a client froze (sent back with no rows) is averaged over the clients that trained it"
    )
    func frozenLayers() {
        var generator = SeededGenerator(seed: 9)
        let architecture = Architecture(
            name: "t", inputShape: [3], classCount: 2,
            layers: [
                .dense(inputs: 3, outputs: 2), .relu,
                .lowRankDense(inputs: 2, outputs: 2, maxRank: 2),
            ])
        func network(_ value: Float) -> Network {
            var network = Network(architecture: architecture, using: &generator)
            network.parameters = network.parameters.map {
                Tensor(repeating: value, shape: $0.shape)
            }
            return network
        }
        let global = network(0)
        // Client 1 froze the dense layer: its weight [2, 3] and bias [2] travel with no rows.
        let frozen = network(1).slice(budgets: [2], frozenLayers: 1)
        #expect(frozen.shared.map(\.shape) == [[0, 3], [0], [2]])
        #expect(frozen.budgets == [2])
        #expect(global.sliceShapes(budgets: [2], frozenLayers: 1) == frozen.tensors.map(\.shape))
        let updates = [
            ClientContribution(clientID: 1, sampleCount: 10, slice: frozen),
            ClientContribution(clientID: 2, sampleCount: 30, slice: network(5).slice(budgets: [2])),
        ]
        let delta = OrderedAggregation.pseudoGradient(
            global: global, contributions: updates, coverageDamping: false)
        // Factors and the LoD bias: (10·1 + 30·5)/40 = 4. The dense layer: client 2 alone.
        #expect(delta[0].scalars.allSatisfy { $0 == -5 })
        #expect(delta[1].scalars.allSatisfy { $0 == -5 })
        for index in 2..<5 { #expect(delta[index].scalars.allSatisfy { $0 == -4 }, "\(index)") }
        // Nobody trained the dense layer: it keeps its value and is not covered.
        let alone = [updates[0]]
        let none = OrderedAggregation.pseudoGradient(
            global: global, contributions: alone, coverageDamping: false)
        #expect(none[0].scalars.allSatisfy { $0 == 0 } && none[1].scalars.allSatisfy { $0 == 0 })
        #expect(
            OrderedAggregation.coveredRows(global: global, contributions: alone) == [0, 0, 2, 2, 2])
        #expect(
            OrderedAggregation.coveredRows(global: global, contributions: updates) == [
                2, 2, 2, 2, 2,
            ])
    }

    @Test("Arrival order does not change a single bit of the result")
    func orderIndependence() {
        var generator = SeededGenerator(seed: 4)
        let architecture = Architecture.make(.mlp, lowRank: true, inputShape: [20], classCount: 4)
        let global = Network(architecture: architecture, using: &generator)
        var updates: [ClientContribution] = []
        for id in 0..<7 {
            var local = global
            for i in local.parameters.indices {
                local.parameters[i].add(
                    Tensor.randomNormal(
                        shape: local.parameters[i].shape, standardDeviation: 0.1, using: &generator)
                )
            }
            let budgets = global.keptRanks.map {
                RankBudget.rank(fraction: [0.125, 0.5, 1][id % 3], of: $0)
            }
            updates.append(
                ClientContribution(
                    clientID: id, sampleCount: 17 + 13 * id, slice: local.slice(budgets: budgets)))
        }
        let reference = OrderedAggregation.pseudoGradient(
            global: global, contributions: updates, coverageDamping: true)
        for _ in 0..<5 {
            updates.shuffle(using: &generator)
            #expect(
                OrderedAggregation.pseudoGradient(
                    global: global, contributions: updates, coverageDamping: true) == reference)
        }
    }

    @Test("Server momentum accumulates the pseudo-gradient")
    func momentum() {
        var parameters = [Tensor(repeating: 1, shape: [2])]
        var state = ServerOptimizerState(for: parameters)
        let delta = [Tensor(repeating: 0.5, shape: [2])]
        OrderedAggregation.apply(
            delta, to: &parameters, optimizer: .fedAvgM(learningRate: 1, momentum: 0.5),
            state: &state)
        OrderedAggregation.apply(
            delta, to: &parameters, optimizer: .fedAvgM(learningRate: 1, momentum: 0.5),
            state: &state)
        // m₁ = 0.5 → w = 0.5; m₂ = 0.25 + 0.5 = 0.75 → w = −0.25.
        #expect(parameters[0].scalars == [-0.25, -0.25])
    }

    @Test("Slices round-trip into a truncated network and back")
    func slices() {
        var generator = SeededGenerator(seed: 5)
        let global = Network(architecture: .make(.lenet, lowRank: true), using: &generator)
        let budgets = global.ranks(atFraction: 0.25)
        let slice = global.slice(budgets: budgets)
        #expect(slice.tensors.map(\.shape) == global.sliceShapes(budgets: budgets))
        let local = Network(architecture: global.architecture, slice: slice)
        #expect(local.keptRanks == budgets)
        #expect(local.slice(budgets: budgets) == slice)
        let input = Tensor.randomNormal(shape: [2 * 784], using: &generator).scalars
        #expect(
            local.forward(input, batch: 2).logits
                == global.forward(input, batch: 2, ranks: budgets).logits)
    }
}

@Suite("Federated linear check (docs/spec.md#federation)")
struct FederatedLinearTests {
    @Test("20 clients in 5 tiers: every tier's sub-model converges to the optimal truncated SVD")
    func tiersRecoverTruncatedSVD() throws {
        var generator = SeededGenerator(seed: 51)
        let (m, n) = (12, 10)
        // A with random singular vectors and evenly spaced singular values 10, 9, …, 1:
        // the rate at which nested training separates components i and i+1 grows with
        // σᵢ² − σᵢ₊₁², so well-separated values keep the test short.
        let left = try singularValueDecomposition(
            Tensor.randomNormal(shape: [m, n], using: &generator)
        ).u
        let right = try singularValueDecomposition(
            Tensor.randomNormal(shape: [n, n], using: &generator)
        ).vt
        var scaled = left
        for i in 0..<m { for j in 0..<n { scaled[i, j] *= Float(n - j) } }
        let a = matmul(scaled, right)
        let svd = try singularValueDecomposition(a)
        let architecture = Architecture(
            name: "linear", inputShape: [n], classCount: m,
            layers: [
                .lowRankDense(inputs: n, outputs: m, maxRank: n)
            ])
        var global = Network(architecture: architecture, factorization: .random, using: &generator)
        let fractions = [0.2, 0.4, 0.6, 0.8, 1.0]
        let tierOfClient = (0..<20).map { $0 % 5 }
        // Identity inputs: the batch is I (n samples), the targets the columns of A.
        let inputs = (0..<(n * n)).map { Float($0 / n == $0 % n ? 1 : 0) }
        let targets = a.transposed().scalars
        var state = ServerOptimizerState(for: global.parameters)
        for _ in 0..<2000 {
            let selected = Array((0..<20).shuffled(using: &generator).prefix(10))
            var contributions: [ClientContribution] = []
            for client in selected {
                let budget = RankBudget.rank(fraction: fractions[tierOfClient[client]], of: n)
                var local = Network(
                    architecture: architecture, slice: global.slice(budgets: [budget]))
                var gradients = local.parameters.map { Tensor(zeros: $0.shape) }
                for _ in 0..<5 {
                    let b = Int.random(in: 1...budget, using: &generator)
                    let pass = local.forward(inputs, batch: n, ranks: [b])
                    var residual = pass.logits
                    for i in residual.indices {
                        residual[i] = (residual[i] - targets[i]) / Float(n)
                    }
                    local.backward(pass, outputGradient: residual, into: &gradients)
                    local.parameters[0].add(gradients[0], scaledBy: -0.05)
                    local.parameters[1].add(gradients[1], scaledBy: -0.05)
                }
                // The bias is not part of the linear map: keep it at zero.
                local.parameters[2] = Tensor(zeros: [m])
                contributions.append(
                    ClientContribution(
                        clientID: client, sampleCount: n, slice: local.slice(budgets: [budget])))
            }
            let delta = OrderedAggregation.pseudoGradient(
                global: global, contributions: contributions, coverageDamping: false)
            OrderedAggregation.apply(
                delta, to: &global.parameters, optimizer: .fedAvg(learningRate: 1), state: &state)
        }
        for fraction in fractions {
            let k = RankBudget.rank(fraction: fraction, of: n)
            let product = matmul(
                global.parameters[0].prefix(rows: k), global.parameters[1].prefix(rows: k),
                lhsTransposition: .transposed)
            var left = svd.u
            for i in 0..<m { for j in 0..<n { left[i, j] *= j < k ? svd.singularValues[j] : 0 } }
            let error = relativeError(product, matmul(left, svd.vt))
            #expect(error <= 1e-2, "tier p = \(fraction) (k = \(k)): relative error \(error)")
        }
    }
}
