import Tensors
import Testing

/// Our random primitives draw exactly what the standard library draws on this toolchain, so
/// every pinned model stays; from now on a toolchain that changes its algorithms cannot move
/// them (these tests would then say so).
@Suite("Random primitives equal today's standard library")
struct RandomPrimitivesTests {
    @Test("uniformDouble() is Double.random(in: 0..<1)")
    func doubles() {
        var ours = SeededGenerator(seed: 21)
        var theirs = ours
        for _ in 0..<10_000 {
            #expect(
                ours.uniformDouble().bitPattern
                    == Double.random(in: 0..<1, using: &theirs).bitPattern)
        }
    }

    @Test(
        "uniformFloat(in:) is Float.random(in:) on closed ranges",
        arguments: [
            (Float(-1), Float(1)), (Float(0), Float(1)), (Float(-0.05), Float(0.05)),
            (Float(2), Float(2)),
        ])
    func floats(lower: Float, upper: Float) {
        var ours = SeededGenerator(seed: 22)
        var theirs = ours
        for _ in 0..<10_000 {
            #expect(
                ours.uniformFloat(in: lower...upper).bitPattern
                    == Float.random(in: lower...upper, using: &theirs).bitPattern)
        }
        #expect(ours == theirs, "both consumed the same draws")
    }

    @Test("shuffleFromFront is shuffle(using:); 1 + nextIndex(below: n) is Int.random(in: 1...n)")
    func shuffles() {
        var generator = SeededGenerator(seed: 23)
        for count in [0, 1, 2, 3, 10, 97, 1000] {
            var ours = Array(0..<count)
            var theirs = ours
            var a = generator
            var b = generator
            ours.shuffleFromFront(using: &a)
            theirs.shuffle(using: &b)
            #expect(ours == theirs && a == b, "\(count) elements")
            _ = generator.next()
        }
        var a = SeededGenerator(seed: 24)
        var b = a
        for n in 1...500 { #expect(1 + a.nextIndex(below: n) == Int.random(in: 1...n, using: &b)) }
        let fractions = [0.125, 0.25, 0.5, 1.0]
        for _ in 0..<500 {
            #expect(
                fractions[a.nextIndex(below: fractions.count)] == fractions.randomElement(using: &b)
            )
        }
    }
}
