import Foundation

/// A dense, row-major array of `Float` with a shape.
///
/// Storage is a copy-on-write `[Float]`; element `[i₀, i₁, …]` lives at
/// `Σ iₖ · strideₖ` with the last axis contiguous. A tensor's number of axes is its
/// `dimensionCount` ("rank" is kept for matrix rank).
public struct Tensor: Sendable, Equatable, Codable {
    /// Extent of each axis.
    public private(set) var shape: [Int]
    /// The elements in row-major order; `scalars.count == shape.reduce(1, *)`.
    public var scalars: [Float]

    /// Makes a tensor from its shape and row-major elements.
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in shape \(shape)")
        precondition(
            shape.reduce(1, *) == scalars.count,
            "shape \(shape) holds \(shape.reduce(1, *)) elements, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    /// Makes a tensor of the given shape filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, scalars: Array(repeating: value, count: shape.reduce(1, *)))
    }

    /// Makes a tensor of zeros.
    public init(zeros shape: [Int]) {
        self.init(repeating: 0, shape: shape)
    }

    /// Number of elements.
    public var count: Int { scalars.count }

    /// Number of axes.
    public var dimensionCount: Int { shape.count }

    /// Rows of a matrix (first axis).
    public var rows: Int {
        precondition(shape.count == 2, "rows of a non-matrix of shape \(shape)")
        return shape[0]
    }

    /// Columns of a matrix (second axis).
    public var columns: Int {
        precondition(shape.count == 2, "columns of a non-matrix of shape \(shape)")
        return shape[1]
    }

    /// Element of a matrix.
    public subscript(row: Int, column: Int) -> Float {
        get { scalars[row * shape[1] + column] }
        set { scalars[row * shape[1] + column] = newValue }
    }

    /// The same elements under another shape with as many elements.
    public func reshaped(to newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, scalars: scalars)
    }

    /// The first `count` rows of a matrix (or the first `count` slices along axis 0).
    public func prefix(rows count: Int) -> Tensor {
        precondition(count >= 0 && count <= shape[0], "prefix of \(count) rows from \(shape)")
        let rowSize = shape.dropFirst().reduce(1, *)
        var newShape = shape
        newShape[0] = count
        return Tensor(shape: newShape, scalars: Array(scalars[0..<(count * rowSize)]))
    }

    /// The transpose of a matrix.
    public func transposed() -> Tensor {
        let (m, n) = (rows, columns)
        var result = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n { result[j * m + i] = scalars[i * n + j] }
        }
        return Tensor(shape: [n, m], scalars: result)
    }

    /// Tensor with entries drawn from N(0, standardDeviation²).
    public static func randomNormal(
        shape: [Int], standardDeviation: Float = 1,
        using generator: inout some RandomNumberGenerator
    ) -> Tensor {
        var values = [Float](repeating: 0, count: shape.reduce(1, *))
        for i in values.indices {
            values[i] = standardDeviation * Float(generator.nextGaussian())
        }
        return Tensor(shape: shape, scalars: values)
    }

    /// Tensor with entries drawn uniformly from `range`.
    public static func randomUniform(
        shape: [Int], in range: ClosedRange<Float>,
        using generator: inout some RandomNumberGenerator
    ) -> Tensor {
        var values = [Float](repeating: 0, count: shape.reduce(1, *))
        for i in values.indices { values[i] = generator.uniformFloat(in: range) }
        return Tensor(shape: shape, scalars: values)
    }

    /// Frobenius norm, accumulated in double precision.
    public var frobeniusNorm: Float {
        var sum = 0.0
        for value in scalars { sum += Double(value) * Double(value) }
        return Float(sum.squareRoot())
    }

    /// Elementwise sum.
    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor {
        precondition(lhs.shape == rhs.shape, "shapes differ: \(lhs.shape) + \(rhs.shape)")
        var result = lhs
        for i in result.scalars.indices { result.scalars[i] += rhs.scalars[i] }
        return result
    }

    /// Elementwise difference.
    public static func - (lhs: Tensor, rhs: Tensor) -> Tensor {
        precondition(lhs.shape == rhs.shape, "shapes differ: \(lhs.shape) - \(rhs.shape)")
        var result = lhs
        for i in result.scalars.indices { result.scalars[i] -= rhs.scalars[i] }
        return result
    }

    /// Scaling by a constant.
    public static func * (lhs: Float, rhs: Tensor) -> Tensor {
        var result = rhs
        for i in result.scalars.indices { result.scalars[i] *= lhs }
        return result
    }

    /// Adds `scale · other` in place (axpy).
    public mutating func add(_ other: Tensor, scaledBy scale: Float = 1) {
        precondition(shape == other.shape, "shapes differ: \(shape) += \(other.shape)")
        scalars.withUnsafeMutableBufferPointer { y in
            other.scalars.withUnsafeBufferPointer { x in
                for i in 0..<y.count { y[i] += scale * x[i] }
            }
        }
    }
}

extension RandomNumberGenerator {
    /// A standard normal deviate (Box–Muller, in double precision).
    ///
    /// Inlinable so that callers specialise it for their generator: unspecialised, the
    /// generic `Double.random(in:using:)` costs most of a 10 000-client Dirichlet partition.
    @inlinable
    public mutating func nextGaussian() -> Double {
        var u1 = uniformDouble()
        while u1 <= Double.leastNormalMagnitude { u1 = uniformDouble() }
        let u2 = uniformDouble()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }
}
