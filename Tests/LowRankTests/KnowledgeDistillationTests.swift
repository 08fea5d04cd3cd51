import Foundation
import LowRank
import Tensors
import TestSupport
import Testing

@Suite("Knowledge distillation: α · T² · KL(teacher ‖ student) and its gradient")
struct KnowledgeDistillationTests {
    @Test("One row at T = 1: the value and gradient worked out by hand")
    func handComputedAtTemperatureOne() {
        // Teacher softmax (3/4, 1/4), student (1/2, 1/2):
        // KL = 3/4 · ln(3/2) + 1/4 · ln(1/2) = 0.130812036; α = 2 doubles it.
        let term = KnowledgeDistillation.lossAndGradient(
            studentLogits: [0, 0], teacherLogits: [Float(log(3.0)), 0], classCount: 2,
            weight: 2, temperature: 1)
        #expect(abs(term.loss - 0.261624072) < 1e-6)
        // α · T · (q_s − q_t) / B = 2 · (−1/4, 1/4).
        #expect(zip(term.gradient, [-0.5, 0.5] as [Float]).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    @Test("Two rows at T = 2: T² scales the value, T the gradient, the batch averages")
    func handComputedAtTemperatureTwo() {
        // Row 0 at T = 2 is the row above; row 1's teacher and student agree (KL 0).
        let term = KnowledgeDistillation.lossAndGradient(
            studentLogits: [0, 0, 1, 1], teacherLogits: [Float(2 * log(3.0)), 0, 1, 1],
            classCount: 2, weight: 0.5, temperature: 2)
        // 0.5 · 4 · (0.130812036 + 0) / 2
        #expect(abs(term.loss - 0.130812036) < 1e-6)
        // 0.5 · 2 · (−1/4, 1/4) / 2, then zeros
        let expected: [Float] = [-0.125, 0.125, 0, 0]
        #expect(zip(term.gradient, expected).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    @Test("The gradient matches central differences of the value, at several temperatures")
    func finiteDifferences() {
        var generator = SeededGenerator(seed: 11)
        let student = Tensor.randomNormal(shape: [3 * 4], using: &generator).scalars.map {
            2 * $0
        }
        let teacher = Tensor.randomNormal(shape: [3 * 4], using: &generator).scalars.map {
            2 * $0
        }
        for temperature: Float in [0.5, 1, 2.5, 4] {
            let term = KnowledgeDistillation.lossAndGradient(
                studentLogits: student, teacherLogits: teacher, classCount: 4, weight: 0.7,
                temperature: temperature)
            let numeric = numericalGradient(at: Tensor(shape: [12], scalars: student)) { probe in
                KnowledgeDistillation.lossAndGradient(
                    studentLogits: probe.scalars, teacherLogits: teacher, classCount: 4,
                    weight: 0.7, temperature: temperature
                ).loss
            }
            let analytic = Tensor(shape: [12], scalars: term.gradient)
            #expect(
                isClose(analytic, numeric, tolerance: Tolerance.gradient),
                "T \(temperature): relative error \(relativeError(analytic, numeric))")
            #expect(term.loss > 0)
        }
    }

    @Test("A student equal to its teacher has nothing to learn; α = 0 is no term at all")
    func vanishing() {
        let logits: [Float] = [0.3, -1.2, 2.0, 0.1, 0.1, 0.1]
        let same = KnowledgeDistillation.lossAndGradient(
            studentLogits: logits, teacherLogits: logits, classCount: 3, weight: 1,
            temperature: 3)
        #expect(abs(same.loss) < 1e-12)
        #expect(same.gradient.allSatisfy { abs($0) < 1e-7 })
        let off = KnowledgeDistillation.lossAndGradient(
            studentLogits: logits, teacherLogits: logits.reversed(), classCount: 3, weight: 0,
            temperature: 3)
        #expect(off.loss == 0 && off.gradient.allSatisfy { $0 == 0 })
    }

    @Test("Temperatures at the ends of the accepted range give a finite term and gradient")
    func extremeTemperatures() {
        let student: [Float] = [3e4, -2e4, 1, 0.5]
        let teacher: [Float] = [-1e4, 2.5e4, 0, 1]
        for temperature: Float in [1e-30, 1e-3, 1e6, Float.greatestFiniteMagnitude] {
            let term = KnowledgeDistillation.lossAndGradient(
                studentLogits: student, teacherLogits: teacher, classCount: 2, weight: 1,
                temperature: temperature)
            #expect(term.loss.isFinite && term.loss >= 0, "T \(temperature): \(term.loss)")
            #expect(term.gradient.allSatisfy { $0.isFinite }, "T \(temperature): \(term.gradient)")
        }
    }
}
