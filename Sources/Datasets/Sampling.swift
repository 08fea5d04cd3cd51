import Foundation
import Tensors

// Random primitives written out here, rather than taken from the standard library, so that a
// seed gives the same data bit for bit on every platform and toolchain: the standard library
// does not promise that `shuffle(using:)` or `Int.random(in:using:)` keep their algorithms.
// Normal deviates come from `Tensors`' Box–Muller `nextGaussian()`, uniform indices from its
// `nextIndex(below:)`.

extension RandomNumberGenerator {
    /// A uniform deviate in `[0, 1)` with 53 random bits.
    mutating func nextUnitInterval() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    /// A uniform deviate in `(0, 1)`, safe to take the logarithm of.
    mutating func nextOpenUnitInterval() -> Double {
        while true {
            let u = nextUnitInterval()
            if u > 0 { return u }
        }
    }

    /// The logarithm of a Gamma(shape, 1) deviate (Marsaglia & Tsang 2000, "A simple method
    /// for generating gamma variables").
    ///
    /// For `shape < 1` it uses their boost `Gamma(a) = Gamma(a + 1) · U^(1/a)`, kept in log
    /// space: at `a = 0.01`, `U^(1/a)` underflows to zero for most `U`, its logarithm does not.
    mutating func nextLogGamma(shape: Double) -> Double {
        precondition(shape > 0 && shape.isFinite, "gamma shape \(shape) must be positive")
        if shape < 1 {
            return nextLogGamma(shape: shape + 1) + Foundation.log(nextOpenUnitInterval()) / shape
        }
        let d = shape - 1.0 / 3.0
        let c = 1 / (9 * d).squareRoot()
        while true {
            let x = nextGaussian()
            let t = 1 + c * x
            guard t > 0 else { continue }
            let v = t * t * t
            let u = nextOpenUnitInterval()
            let xSquared = x * x
            if u < 1 - 0.0331 * xSquared * xSquared
                || Foundation.log(u) < 0.5 * xSquared + d * (1 - v + Foundation.log(v))
            {
                return Foundation.log(d) + Foundation.log(v)
            }
        }
    }

    /// A draw from the symmetric Dirichlet distribution Dir(concentration · 1ₙ), normalised
    /// from Gamma deviates in log space so that tiny concentrations still sum to one.
    mutating func nextDirichlet(concentration: Double, count: Int) -> [Double] {
        precondition(count > 0, "a Dirichlet over \(count) categories")
        let logs = (0..<count).map { _ in nextLogGamma(shape: concentration) }
        let largest = logs.max() ?? 0
        let weights = logs.map { Foundation.exp($0 - largest) }
        let total = weights.reduce(0, +)
        return weights.map { $0 / total }
    }
}

extension Array {
    /// Fisher–Yates shuffle with `nextIndex(below:)`, the same on every platform.
    mutating func shuffleReproducibly(using generator: inout some RandomNumberGenerator) {
        guard count > 1 else { return }
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = generator.nextIndex(below: i + 1)
            if i != j { swapAt(i, j) }
        }
    }
}
