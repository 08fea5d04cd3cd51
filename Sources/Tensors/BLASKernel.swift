import CBLAS

/// What OpenBLAS runs on this machine, and a correctness check of its `sgemm`.
public enum BLASKernel {
    /// The core type OpenBLAS selected when the library loaded (for example `Cooperlake`).
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// OpenBLAS's build configuration string.
    public static var configuration: String {
        guard let config = openblas_get_config() else { return "unknown" }
        return String(cString: config)
    }

    /// Sets the number of threads BLAS calls may use.
    public static func setThreadCount(_ count: Int) {
        openblas_set_num_threads(Int32(count))
    }

    /// Whether the loaded kernel's `sgemm` agrees with a plain-loop product on odd shapes
    /// and every transposition (relative error ≤ 1e-4 of the operands' scale).
    public static func sgemmMatchesReference() -> Bool {
        var generator = SeededGenerator(seed: 0x5EED)
        let shapes = [(1, 1, 1), (7, 5, 3), (33, 65, 17), (129, 96, 200)]
        for (m, k, n) in shapes {
            for transA in [Transposition.none, .transposed] {
                for transB in [Transposition.none, .transposed] {
                    let a = Tensor.randomNormal(
                        shape: transA == .none ? [m, k] : [k, m], using: &generator)
                    let b = Tensor.randomNormal(
                        shape: transB == .none ? [k, n] : [n, k], using: &generator)
                    let fast = matmul(a, b, lhsTransposition: transA, rhsTransposition: transB)
                    let slow = referenceMatmul(
                        a, b, lhsTransposition: transA, rhsTransposition: transB)
                    let tolerance = 1e-4 * Float(k).squareRoot() * 4
                    for i in 0..<fast.count
                    where !(abs(fast.scalars[i] - slow.scalars[i]) <= tolerance) {
                        return false
                    }
                }
            }
        }
        return true
    }
}
