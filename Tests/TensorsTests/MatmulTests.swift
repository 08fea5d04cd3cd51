import Tensors
import TestSupport
import Testing

@Suite("sgemm against a plain-loop reference")
struct MatmulTests {
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (7, 5, 3), (3, 1, 9), (17, 33, 2), (64, 129, 31),
    ]

    @Test("Every transposition on odd shapes", arguments: [0, 1, 2, 3, 4])
    func matchesReference(shapeIndex: Int) {
        let (m, k, n) = Self.shapes[shapeIndex]
        var generator = SeededGenerator(seed: 7)
        for transA in [Transposition.none, .transposed] {
            for transB in [Transposition.none, .transposed] {
                let a = Tensor.randomNormal(
                    shape: transA == .none ? [m, k] : [k, m], using: &generator)
                let b = Tensor.randomNormal(
                    shape: transB == .none ? [k, n] : [n, k], using: &generator)
                let fast = matmul(a, b, lhsTransposition: transA, rhsTransposition: transB)
                let slow = referenceMatmul(a, b, lhsTransposition: transA, rhsTransposition: transB)
                #expect(fast.shape == [m, n])
                #expect(
                    isClose(fast, slow, tolerance: Tolerance.blas),
                    "\(m)x\(k)x\(n) \(transA) \(transB)")
            }
        }
    }

    @Test("A column prefix of a wider matrix is used in place through its leading dimension")
    func prefixThroughLeadingDimension() {
        var generator = SeededGenerator(seed: 8)
        let x = Tensor.randomNormal(shape: [5, 9], using: &generator)
        let wide = Tensor.randomNormal(shape: [9, 6], using: &generator)  // use first 4 columns
        var out = [Float](repeating: 0, count: 5 * 4)
        x.scalars.withUnsafeBufferPointer { a in
            wide.scalars.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { c in
                    sgemm(
                        .none, .none, m: 5, n: 4, k: 9, a.baseAddress!, lda: 9, b.baseAddress!,
                        ldb: 6, c.baseAddress!, ldc: 4)
                }
            }
        }
        var narrow = Tensor(zeros: [9, 4])
        for i in 0..<9 { for j in 0..<4 { narrow[i, j] = wide[i, j] } }
        #expect(
            isClose(
                Tensor(shape: [5, 4], scalars: out), referenceMatmul(x, narrow),
                tolerance: Tolerance.blas))
    }

    @Test("k = 0 gives β·C, not garbage")
    func emptyInnerExtent() {
        let product = matmul(Tensor(zeros: [3, 0]), Tensor(zeros: [0, 2]))
        #expect(product == Tensor(zeros: [3, 2]))
    }

    @Test("The loaded OpenBLAS kernel passes the start-up check")
    func kernelCheck() {
        #expect(BLASKernel.sgemmMatchesReference())
    }
}

@Suite("LAPACK SVD")
struct SVDTests {
    @Test(
        "U S Vᵀ reconstructs the matrix; factors are orthonormal",
        arguments: [[1, 1], [8, 6], [6, 8], [31, 7]])
    func reconstruction(shape: [Int]) throws {
        var generator = SeededGenerator(seed: 3)
        let a = Tensor.randomNormal(shape: shape, using: &generator)
        let svd = try singularValueDecomposition(a)
        let k = min(shape[0], shape[1])
        #expect(svd.u.shape == [shape[0], k] && svd.vt.shape == [k, shape[1]])
        var scaled = svd.u
        for i in 0..<shape[0] { for j in 0..<k { scaled[i, j] *= svd.singularValues[j] } }
        #expect(isClose(referenceMatmul(scaled, svd.vt), a, tolerance: 1e-5))
        #expect(zip(svd.singularValues, svd.singularValues.dropFirst()).allSatisfy { $0 >= $1 })
        let identity = Tensor(
            shape: [k, k], scalars: (0..<(k * k)).map { $0 / k == $0 % k ? 1 : 0 })
        #expect(
            isClose(
                referenceMatmul(svd.u, svd.u, lhsTransposition: .transposed), identity,
                tolerance: 1e-5))
        #expect(
            isClose(
                referenceMatmul(svd.vt, svd.vt, rhsTransposition: .transposed), identity,
                tolerance: 1e-5))
    }

    @Test("NaN input is refused, not decomposed")
    func refusesNaN() {
        #expect(throws: SVDError.notFinite) {
            try singularValueDecomposition(Tensor(shape: [2, 2], scalars: [1, .nan, 0, 1]))
        }
    }
}
