import CKernels

/// Sums in double precision over `count` floats, in a fixed order (eight partial sums; see
/// `maestro_double_sums`): the statistics of the normalisations and of their gradients. The
/// same input gives the same bits, vectorized or not (`portable` runs the portable loops on
/// any CPU, for tests).
public enum DoubleSums {
    /// `Σ x[i]`.
    @inline(__always)
    public static func sum(
        _ x: UnsafePointer<Float>, count: Int, portable: Bool = false
    )
        -> Double
    {
        var (sum, second) = (0.0, 0.0)
        maestro_double_sums(x, x, count, 0, &sum, &second, portable ? 1 : 0)
        return sum
    }

    /// `Σ (x[i] − mean)²`.
    @inline(__always)
    public static func squaredDeviations(
        _ x: UnsafePointer<Float>, count: Int, from mean: Double, portable: Bool = false
    ) -> Double {
        var (sum, second) = (0.0, 0.0)
        maestro_double_sums(x, nil, count, mean, &sum, &second, portable ? 1 : 0)
        return second
    }

    /// `(Σ a[i], Σ a[i]·b[i])`.
    @inline(__always)
    public static func sumAndDot(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int, portable: Bool = false
    ) -> (sum: Double, dot: Double) {
        var (sum, second) = (0.0, 0.0)
        maestro_double_sums(a, b, count, 0, &sum, &second, portable ? 1 : 0)
        return (sum, second)
    }

    /// `(Σ d[i], Σ d[i]·x̂[i])` over one plane of group normalisation's backward pass, with
    /// `x̂[i] = (x[i] − mean)·inverse` recomputed in single precision and `d[i] = dy[i]`, or
    /// 0 where `gate[i] ≤ 0` (see `maestro_normalized_sums`).
    @inline(__always)
    public static func normalizedSums(
        _ dy: UnsafePointer<Float>, gate: UnsafePointer<Float>?, input x: UnsafePointer<Float>,
        count: Int, mean: Float, inverse: Float, portable: Bool = false
    ) -> (sum: Double, dot: Double) {
        var (sum, dot) = (0.0, 0.0)
        maestro_normalized_sums(dy, gate, x, count, mean, inverse, &sum, &dot, portable ? 1 : 0)
        return (sum, dot)
    }
}
