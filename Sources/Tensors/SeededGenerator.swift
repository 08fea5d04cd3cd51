/// A fast, seedable random number generator (xoshiro256**, Blackman & Vigna 2018)
/// whose whole state can be saved and restored, so a run can be resumed bit for bit.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable, Codable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// Seeds the state with SplitMix64 from a single integer.
    public init(seed: UInt64) {
        var mixer = seed
        func splitMix() -> UInt64 {
            mixer &+= 0x9E37_79B9_7F4A_7C15
            var z = mixer
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix()
        s1 = splitMix()
        s2 = splitMix()
        s3 = splitMix()
    }

    /// The four state words, for saving.
    public var state: [UInt64] { [s0, s1, s2, s3] }

    /// Restores a saved state.
    public init(state: [UInt64]) {
        precondition(state.count == 4 && state.contains { $0 != 0 }, "invalid xoshiro state")
        (s0, s1, s2, s3) = (state[0], state[1], state[2], state[3])
    }

    /// A generator for an independent stream derived from a seed and a label (for example
    /// a client index), so that streams do not depend on the order they are drawn in.
    public static func derived(seed: UInt64, stream: UInt64) -> SeededGenerator {
        SeededGenerator(seed: seed ^ (stream &+ 1) &* 0xD1B5_4A32_D192_ED03)
    }

    public mutating func next() -> UInt64 {
        let result = rotate(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotate(s3, 45)
        return result
    }

    @inline(__always)
    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

extension SeededGenerator {
    /// The first output of the stream derived from `seed` and `stream`: a reproducible
    /// 64-bit value for labels such as run IDs and per-task seeds.
    public static func value(seed: UInt64, stream: UInt64) -> UInt64 {
        var generator = derived(seed: seed, stream: stream)
        return generator.next()
    }
}

extension RandomNumberGenerator {
    /// A uniform integer in `0..<bound` by Lemire's nearly divisionless method ("Fast Random
    /// Integer Generation in an Interval", 2019), written here so that results do not depend on
    /// the standard library's choice of algorithm; today it draws exactly what
    /// `Int.random(in: 0..<bound, using:)` draws (tested).
    public mutating func nextIndex(below bound: Int) -> Int {
        precondition(bound > 0, "no index below \(bound)")
        let range = UInt64(bound)
        var product = next().multipliedFullWidth(by: range)
        if product.low < range {
            let threshold = (0 &- range) % range
            while product.low < threshold { product = next().multipliedFullWidth(by: range) }
        }
        return Int(product.high)
    }
}

extension RandomNumberGenerator {
    /// A uniform deviate in `[0, 1)` from the low 53 bits of one draw: what
    /// `Double.random(in: 0..<1, using:)` draws today (tested), written here so that a
    /// toolchain cannot change the numbers.
    @inlinable
    public mutating func uniformDouble() -> Double {
        Double(next() & (1 << 53 - 1)) * 0x1p-53
    }

    /// A uniform deviate in `range` (both ends included), as
    /// `Float.random(in: range, using:)` draws it today (tested): a 24-bit significand drawn
    /// from `0...2²⁴` by Lemire's method on 32-bit words, 2²⁴ giving the upper bound.
    public mutating func uniformFloat(in range: ClosedRange<Float>) -> Float {
        let bound = UInt32(1 << 24) + 1
        var product = UInt32(truncatingIfNeeded: next()).multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold {
                product = UInt32(truncatingIfNeeded: next()).multipliedFullWidth(by: bound)
            }
        }
        if product.high == 1 << 24 { return range.upperBound }
        let unit = Float(product.high) * 0x1p-24
        return (range.upperBound - range.lowerBound) * unit + range.lowerBound
    }
}

extension Array {
    /// Fisher–Yates from the front, as the standard library's `shuffle(using:)` does it today
    /// (tested), written here so that a toolchain cannot change the order: position `k` takes
    /// the element at a uniform position in `k..<count`.
    public mutating func shuffleFromFront(using generator: inout some RandomNumberGenerator) {
        guard count > 1 else { return }
        for position in 0..<(count - 1) {
            swapAt(position, position + generator.nextIndex(below: count - position))
        }
    }

    /// The first `count` elements of a Fisher–Yates shuffle of the array, in shuffle order,
    /// at the cost of `count` steps: position `k` takes the element at a uniform position in
    /// `k..<self.count` of what is left. The same as `shuffled(using:).prefix(count)`, which
    /// runs this loop over the whole array.
    public func drawingPrefix(
        _ count: Int, using generator: inout some RandomNumberGenerator
    ) -> [Element] {
        precondition(count >= 0 && count <= self.count, "cannot draw \(count) of \(self.count)")
        var copy = self
        for position in 0..<count where position < self.count - 1 {
            let chosen = position + generator.nextIndex(below: self.count - position)
            copy.swapAt(position, chosen)
        }
        return Array(copy[..<count])
    }
}
