import CBLAS
import CKernels

/// Whether an operand of a matrix product is used as stored or transposed.
public enum Transposition: Sendable {
    case none
    case transposed

    var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// `C ← α·op(A)·op(B) + β·C` on row-major buffers (BLAS `sgemm`).
///
/// `op(A)` is `m×k`, `op(B)` is `k×n`, `C` is `m×n`. Leading dimensions are the row
/// strides of the matrices as stored, so a column prefix of a wider matrix needs no copy.
@inline(__always)
public func sgemm(
    _ transA: Transposition, _ transB: Transposition,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    _ a: UnsafePointer<Float>, lda: Int,
    _ b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0,
    _ c: UnsafeMutablePointer<Float>, ldc: Int
) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        // BLAS leaves C·β; make that explicit for β = 0 (C may hold garbage).
        for i in 0..<m {
            for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] }
        }
        return
    }
    cblas_sgemm(
        CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k), alpha,
        a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// The matrix product `op(lhs) · op(rhs)`.
public func matmul(
    _ lhs: Tensor, _ rhs: Tensor,
    lhsTransposition: Transposition = .none, rhsTransposition: Transposition = .none
) -> Tensor {
    precondition(
        lhs.dimensionCount == 2 && rhs.dimensionCount == 2, "matmul of \(lhs.shape) · \(rhs.shape)")
    let (m, k) = lhsTransposition == .none ? (lhs.rows, lhs.columns) : (lhs.columns, lhs.rows)
    let (k2, n) = rhsTransposition == .none ? (rhs.rows, rhs.columns) : (rhs.columns, rhs.rows)
    precondition(
        k == k2,
        "inner extents differ: \(lhs.shape) · \(rhs.shape) (\(lhsTransposition), \(rhsTransposition))"
    )
    var result = [Float](repeating: 0, count: m * n)
    lhs.scalars.withUnsafeBufferPointer { a in
        rhs.scalars.withUnsafeBufferPointer { b in
            result.withUnsafeMutableBufferPointer { c in
                sgemm(
                    lhsTransposition, rhsTransposition, m: m, n: n, k: k,
                    a.baseAddress!, lda: lhs.columns, b.baseAddress!, ldb: rhs.columns,
                    c.baseAddress!, ldc: n)
            }
        }
    }
    return Tensor(shape: [m, n], scalars: result)
}

/// The matrix product computed with plain loops in double precision: the reference
/// every BLAS path is tested against, and the check a BLAS kernel must pass.
public func referenceMatmul(
    _ lhs: Tensor, _ rhs: Tensor,
    lhsTransposition: Transposition = .none, rhsTransposition: Transposition = .none
) -> Tensor {
    let (m, k) = lhsTransposition == .none ? (lhs.rows, lhs.columns) : (lhs.columns, lhs.rows)
    let (k2, n) = rhsTransposition == .none ? (rhs.rows, rhs.columns) : (rhs.columns, rhs.rows)
    precondition(k == k2, "inner extents differ: \(lhs.shape) · \(rhs.shape)")
    var result = [Float](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            var sum = 0.0
            for p in 0..<k {
                let a = lhsTransposition == .none ? lhs[i, p] : lhs[p, i]
                let b = rhsTransposition == .none ? rhs[p, j] : rhs[j, p]
                sum += Double(a) * Double(b)
            }
            result[i * n + j] = Float(sum)
        }
    }
    return Tensor(shape: [m, n], scalars: result)
}

/// `C = β·C + A·B` for a short `A` (few rows) and a long row-major `B`, without packing:
/// the products of small-channel convolutions, where BLAS cannot pay off. A's element
/// (i, p) is at `a[i·aRow + p·aColumn]`, so `Aᵀ` is passed by swapping the strides. With
/// β = 0, C is not read. `portable` runs the portable loops (what an ARM board runs) on any
/// CPU, for tests.
@inline(__always)
public func streamingProduct(
    m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, aRow: Int, aColumn: Int,
    _ b: UnsafePointer<Float>, ldb: Int, beta: Float = 0, _ c: UnsafeMutablePointer<Float>,
    ldc: Int, portable: Bool = false
) {
    if portable {
        maestro_gemm_nn_portable(m, n, k, a, aRow, aColumn, b, ldb, beta, c, ldc)
    } else {
        maestro_gemm_nn(m, n, k, a, aRow, aColumn, b, ldb, beta, c, ldc)
    }
}

/// `C = β·C + A·Bᵀ` for `A` `m×k` and `B` `n×k`, both long along `k` (a reduction over
/// positions: the weight gradients of convolutions). With β = 0, C is not read.
@inline(__always)
public func streamingReduction(
    m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>,
    ldb: Int, beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int,
    portable: Bool = false
) {
    if portable {
        maestro_gemm_nt_portable(m, n, k, a, lda, b, ldb, beta, c, ldc)
    } else {
        maestro_gemm_nt(m, n, k, a, lda, b, ldb, beta, c, ldc)
    }
}

/// Whether the streaming kernels run their AVX2+FMA versions on this CPU.
public var streamingKernelsVectorized: Bool { maestro_kernels_vectorized() != 0 }
