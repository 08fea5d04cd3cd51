import LowRank
import Tensors
import TestSupport
import Testing

/// The linear-case theory of LoD (docs/spec.md#theory): with squared loss and a rank distribution
/// covering every b, the nested factors recover the truncated SVD / PCA.
@Suite("LoD recovers SVD and PCA in the linear case")
struct TheoryTests {
    /// Trains `y = U_b V_bᵀ x` on inputs `X` (columns) and targets `A·X` with b uniform in
    /// 1…r each step (full batch, plain gradient descent on the factors only).
    static func trainLinear(
        target a: Tensor, inputs x: Tensor, steps: Int, learningRate: Float, seed: UInt64
    ) -> Network {
        let (m, n) = (a.rows, a.columns)
        let r = min(m, n)
        var generator = SeededGenerator(seed: seed)
        let architecture = Architecture(
            name: "linear", inputShape: [n], classCount: m,
            layers: [
                .lowRankDense(inputs: n, outputs: m, maxRank: r)
            ])
        var network = Network(architecture: architecture, factorization: .random, using: &generator)
        let samples = x.columns
        let batch = x.transposed().scalars  // rows are samples
        let targets = matmul(a, x).transposed().scalars
        var sampling = RankSamplingState(sampler: .acrossLayers)
        var gradients = network.parameters.map { Tensor(zeros: $0.shape) }
        for _ in 0..<steps {
            let ranks = sampling.nextRanks(limits: network.keptRanks, using: &generator)
            let pass = network.forward(batch, batch: samples, ranks: ranks)
            var residual = pass.logits
            for i in residual.indices { residual[i] = (residual[i] - targets[i]) / Float(samples) }
            network.backward(pass, outputGradient: residual, into: &gradients)
            network.parameters[0].add(gradients[0], scaledBy: -learningRate)
            network.parameters[1].add(gradients[1], scaledBy: -learningRate)
        }
        return network
    }

    /// `U_bᵀᵀ V_bᵀ`, the `[m, n]` matrix of the first b components.
    static func product(_ network: Network, rank b: Int) -> Tensor {
        matmul(
            network.parameters[0].prefix(rows: b), network.parameters[1].prefix(rows: b),
            lhsTransposition: .transposed)
    }

    /// Best rank-b approximation from an SVD.
    static func truncated(
        _ svd: SingularValueDecomposition, rank b: Int, scaleRight: Tensor? = nil
    ) -> Tensor {
        var left = svd.u
        for i in 0..<left.rows {
            for j in 0..<left.columns { left[i, j] *= j < b ? svd.singularValues[j] : 0 }
        }
        return matmul(left, svd.vt)
    }

    static func identity(_ n: Int) -> Tensor {
        Tensor(shape: [n, n], scalars: (0..<(n * n)).map { $0 / n == $0 % n ? 1 : 0 })
    }

    @Test("Isotropic inputs: U_b V_bᵀ = A_b for every b and ‖uᵢ‖‖vᵢ‖ = σᵢ (8×6 Gaussian A)")
    func isotropic() throws {
        var generator = SeededGenerator(seed: 21)
        let a = Tensor.randomNormal(shape: [8, 6], using: &generator)
        let svd = try singularValueDecomposition(a)
        let network = Self.trainLinear(
            target: a, inputs: Self.identity(6), steps: 30_000, learningRate: 0.1, seed: 22)
        for b in 1...6 {
            let error = relativeError(Self.product(network, rank: b), Self.truncated(svd, rank: b))
            #expect(error <= 1e-3, "rank \(b): relative error \(error)")
            let up = network.parameters[0].prefix(rows: b).scalars.suffix(8)
            let down = network.parameters[1].prefix(rows: b).scalars.suffix(6)
            let importance =
                Tensor(shape: [8], scalars: Array(up)).frobeniusNorm
                * Tensor(shape: [6], scalars: Array(down)).frobeniusNorm
            #expect(
                abs(importance - svd.singularValues[b - 1]) <= 1e-3 * svd.singularValues[b - 1],
                "component \(b): ‖u‖‖v‖ = \(importance), σ = \(svd.singularValues[b - 1])")
        }
    }

    @Test("Anisotropic inputs: the fixed point is [A Σ^½]_b Σ^-½")
    func anisotropic() throws {
        var generator = SeededGenerator(seed: 31)
        let a = Tensor.randomNormal(shape: [8, 6], using: &generator)
        let variances: [Float] = [3, 0.4, 1.5, 0.8, 2.2, 0.25]
        var root = Tensor(zeros: [6, 6])
        var inverseRoot = Tensor(zeros: [6, 6])
        for j in 0..<6 {
            root[j, j] = variances[j].squareRoot()
            inverseRoot[j, j] = 1 / variances[j].squareRoot()
        }
        // Inputs X = Σ^½ (one sample per column) have second moment Σ.
        let network = Self.trainLinear(
            target: a, inputs: root, steps: 40_000, learningRate: 0.12, seed: 32)
        let weighted = try singularValueDecomposition(matmul(a, root))
        for b in 1...6 {
            let expected = matmul(Self.truncated(weighted, rank: b), inverseRoot)
            let error = relativeError(Self.product(network, rank: b), expected)
            #expect(error <= 1e-3, "rank \(b): relative error \(error)")
        }
    }

    @Test(
        "A = I (linear autoencoder): U_b V_bᵀ is the projection on the top-b principal components")
    func principalComponents() throws {
        var generator = SeededGenerator(seed: 41)
        // 6-dimensional data with distinct variances along random directions, 40 samples.
        let basis = try singularValueDecomposition(
            Tensor.randomNormal(shape: [6, 6], using: &generator)
        ).u
        var scales = Tensor(zeros: [6, 6])
        for (j, s) in [2.0, 1.6, 1.25, 0.9, 0.6, 0.3].enumerated() { scales[j, j] = Float(s) }
        let data = matmul(
            matmul(basis, scales), Tensor.randomNormal(shape: [6, 40], using: &generator))
        let network = Self.trainLinear(
            target: Self.identity(6), inputs: data, steps: 40_000, learningRate: 0.12, seed: 42)
        let components = try singularValueDecomposition(data).u
        for b in 1...5 {
            let q = Tensor(
                shape: [6, b], scalars: (0..<(6 * b)).map { components[$0 / b, $0 % b] })
            let projection = matmul(q, q, rhsTransposition: .transposed)
            let error = relativeError(Self.product(network, rank: b), projection)
            #expect(error <= 1e-3, "rank \(b): relative error \(error)")
        }
    }
}
