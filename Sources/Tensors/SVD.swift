import CBLAS

/// A thin singular value decomposition `A = U · diag(S) · Vᵀ` of an `m×n` matrix,
/// with `k = min(m, n)` components in non-increasing order of singular value.
public struct SingularValueDecomposition: Sendable {
    /// Left singular vectors as columns, `[m, k]`.
    public var u: Tensor
    /// Singular values, non-increasing, `k` of them.
    public var singularValues: [Float]
    /// Right singular vectors as rows, `[k, n]`.
    public var vt: Tensor
}

/// Why LAPACK could not decompose a matrix.
public enum SVDError: Error, Equatable, CustomStringConvertible {
    case notFinite
    case didNotConverge(info: Int32)

    public var description: String {
        switch self {
        case .notFinite: "the matrix has NaN or infinite entries"
        case .didNotConverge(let info): "LAPACK sgesdd did not converge (info \(info))"
        }
    }
}

/// The thin SVD of a matrix through LAPACK `sgesdd` (divide and conquer).
///
/// A row-major `m×n` matrix is the column-major `n×m` matrix `Aᵀ = V S Uᵀ`, so LAPACK's
/// outputs read back row-major are exactly our `Vᵀ` and `U`: no transposition is needed.
public func singularValueDecomposition(
    _ matrix: Tensor
) throws(SVDError) -> SingularValueDecomposition {
    let (m, n) = (matrix.rows, matrix.columns)
    let k = min(m, n)
    guard matrix.scalars.allSatisfy({ $0.isFinite }) else { throw .notFinite }
    if k == 0 {
        return SingularValueDecomposition(
            u: Tensor(zeros: [m, 0]), singularValues: [], vt: Tensor(zeros: [0, n]))
    }
    // LAPACK sees A as col-major n×m (call it B = Aᵀ). B = Ub S VBᵀ.
    var b = matrix.scalars
    var rowsB = Int32(n)
    var colsB = Int32(m)
    var ldb = rowsB
    var s = [Float](repeating: 0, count: k)
    var ub = [Float](repeating: 0, count: n * k)  // col-major n×k  == row-major k×n == Vᵀ of A
    var vtb = [Float](repeating: 0, count: k * m)  // col-major k×m == row-major m×k == U of A
    var ldu = rowsB
    var ldvt = Int32(k)
    var jobz = Int8(UInt8(ascii: "S"))
    var iwork = [Int32](repeating: 0, count: 8 * k)
    var info: Int32 = 0
    var lwork: Int32 = -1
    var workSize: Float = 0
    sgesdd_(
        &jobz, &rowsB, &colsB, &b, &ldb, &s, &ub, &ldu, &vtb, &ldvt, &workSize, &lwork, &iwork,
        &info)
    lwork = Int32(workSize) + 1
    var work = [Float](repeating: 0, count: Int(lwork))
    sgesdd_(
        &jobz, &rowsB, &colsB, &b, &ldb, &s, &ub, &ldu, &vtb, &ldvt, &work, &lwork, &iwork, &info)
    guard info == 0 else { throw .didNotConverge(info: info) }
    return SingularValueDecomposition(
        u: Tensor(shape: [m, k], scalars: vtb), singularValues: s,
        vt: Tensor(shape: [k, n], scalars: ub))
}
