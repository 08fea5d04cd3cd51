import Tensors

/// Relative tolerances used across the suite, defined once.
public enum Tolerance {
    /// Float32 BLAS result vs double-precision loop.
    public static let blas: Float = 1e-4
    /// Central-difference gradient checks in Float32.
    public static let gradient: Float = 2e-2
}

/// Whether two tensors have one shape and agree within a relative tolerance:
/// `‖a − b‖_F ≤ tolerance · max(‖b‖_F, 1e-6)`.
public func isClose(_ a: Tensor, _ b: Tensor, tolerance: Float) -> Bool {
    guard a.shape == b.shape else { return false }
    return relativeError(a, b) <= tolerance
}

/// `‖a − b‖_F / max(‖b‖_F, 1e-6)`, accumulated in double precision.
public func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.shape == b.shape, "shapes differ: \(a.shape) vs \(b.shape)")
    var difference = 0.0
    var reference = 0.0
    for i in 0..<a.count {
        let d = Double(a.scalars[i]) - Double(b.scalars[i])
        difference += d * d
        reference += Double(b.scalars[i]) * Double(b.scalars[i])
    }
    return Float(difference.squareRoot() / max(reference.squareRoot(), 1e-6))
}

/// Central-difference gradient of a scalar function at `point`, in double precision
/// around a Float32 evaluation (step `h` on each coordinate).
public func numericalGradient(
    at point: Tensor, step h: Float = 1e-2, _ function: (Tensor) -> Double
) -> Tensor {
    var gradient = Tensor(zeros: point.shape)
    var probe = point
    for i in 0..<point.count {
        let original = probe.scalars[i]
        probe.scalars[i] = original + h
        let plus = function(probe)
        probe.scalars[i] = original - h
        let minus = function(probe)
        probe.scalars[i] = original
        gradient.scalars[i] = Float((plus - minus) / (2 * Double(h)))
    }
    return gradient
}
