import Tensors
import TestSupport
import Testing

@Suite("Double-precision sums of the normalisations")
struct DoubleSumsTests {
    /// Lengths around the eight lanes and their tail, and a long row.
    static let counts = [1, 7, 8, 9, 15, 16, 17, 64, 1000, 4099]

    @Test("Sums, squared deviations and dot products match plain double loops", arguments: counts)
    func matchesLoops(count: Int) {
        var generator = SeededGenerator(seed: 41)
        let a = Tensor.randomNormal(shape: [count], using: &generator).scalars.map { $0 + 3 }
        let b = Tensor.randomNormal(shape: [count], using: &generator).scalars
        let mean = 2.75
        var (sum, squares, dot) = (0.0, 0.0, 0.0)
        for i in 0..<count {
            sum += Double(a[i])
            squares += (Double(a[i]) - mean) * (Double(a[i]) - mean)
            dot += Double(a[i]) * Double(b[i])
        }
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                let (x, y) = (ap.baseAddress!, bp.baseAddress!)
                let bound = 1e-12 * Double(max(count, 1)) * 10
                #expect(abs(DoubleSums.sum(x, count: count) - sum) <= bound)
                #expect(
                    abs(DoubleSums.squaredDeviations(x, count: count, from: mean) - squares)
                        <= bound)
                let both = DoubleSums.sumAndDot(x, y, count: count)
                #expect(abs(both.sum - sum) <= bound && abs(both.dot - dot) <= bound)
            }
        }
    }

    @Test("The vectorized and the portable loops give the same bits", arguments: counts)
    func portableAgrees(count: Int) {
        var generator = SeededGenerator(seed: 42)
        let a = Tensor.randomNormal(shape: [count], using: &generator).scalars
        let b = Tensor.randomNormal(shape: [count], using: &generator).scalars
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                let (x, y) = (ap.baseAddress!, bp.baseAddress!)
                #expect(
                    DoubleSums.sum(x, count: count).bitPattern
                        == DoubleSums.sum(x, count: count, portable: true).bitPattern)
                #expect(
                    DoubleSums.squaredDeviations(x, count: count, from: 0.25).bitPattern
                        == DoubleSums.squaredDeviations(
                            x, count: count, from: 0.25, portable: true
                        ).bitPattern)
                let (fast, slow) = (
                    DoubleSums.sumAndDot(x, y, count: count),
                    DoubleSums.sumAndDot(x, y, count: count, portable: true)
                )
                #expect(
                    fast.sum.bitPattern == slow.sum.bitPattern
                        && fast.dot.bitPattern == slow.dot.bitPattern)
            }
        }
    }

    @Test(
        "Group normalisation's backward sums equal sumAndDot on the stored x̂ and gated ∂y",
        arguments: counts)
    func normalizedSums(count: Int) {
        var generator = SeededGenerator(seed: 43)
        let x = Tensor.randomNormal(shape: [count], using: &generator).scalars.map { $0 * 2 + 1 }
        let dy = Tensor.randomNormal(shape: [count], using: &generator).scalars
        // A ReLU output: zero (and negative zero) on about half the entries.
        var gate = Tensor.randomNormal(shape: [count], using: &generator).scalars.map {
            max($0, 0)
        }
        if count > 3 { gate[3] = -0.0 }
        let (mean, inverse): (Float, Float) = (0.875, 1 / Float(2.5).squareRoot())
        let normalized = x.map { ($0 - mean) * inverse }
        let gated = zip(dy, gate).map { $1 <= 0 ? 0 : $0 }
        for (gates, expectedGradient) in [(gate as [Float]?, gated), (nil, dy)] {
            let expected = expectedGradient.withUnsafeBufferPointer { d in
                normalized.withUnsafeBufferPointer { n in
                    DoubleSums.sumAndDot(d.baseAddress!, n.baseAddress!, count: count)
                }
            }
            for portable in [false, true] {
                let got = dy.withUnsafeBufferPointer { d in
                    x.withUnsafeBufferPointer { xp in
                        (gates ?? []).withUnsafeBufferPointer { g in
                            DoubleSums.normalizedSums(
                                d.baseAddress!, gate: gates == nil ? nil : g.baseAddress,
                                input: xp.baseAddress!, count: count, mean: mean,
                                inverse: inverse, portable: portable)
                        }
                    }
                }
                #expect(
                    got.sum.bitPattern == expected.sum.bitPattern
                        && got.dot.bitPattern == expected.dot.bitPattern,
                    "gated \(gates != nil), portable \(portable)")
            }
        }
    }
}
