import Federation
import Fleet
import Foundation
import LowRank
import Tensors
import TestSupport
import Testing
import Transport
import Vocabulary

@testable import Device
@testable import Runtime

/// FjORD's self-distillation on a client of a small dense model: the step's gradient, the
/// teacher's weights, α = 0 against off, determinism; its wire form and the coordinator's TRAIN.
@Suite("fjord self-distillation: one client's steps, the wire, the coordinator")
struct WidthDistillationTests {
    /// 5 inputs → dense 8 → relu → dense 6 → relu → dense 3 classes.
    let architecture = Architecture(
        name: "mlp", inputShape: [5], classCount: 3,
        layers: [
            .dense(inputs: 5, outputs: 8), .relu, .dense(inputs: 8, outputs: 6), .relu,
            .dense(inputs: 6, outputs: 3),
        ])

    var parameters: [Tensor] {
        var generator = SeededGenerator(seed: 5)
        return architecture.parameterShapes.map { shape in
            var tensor = Tensor.randomNormal(shape: shape, using: &generator)
            tensor.scalars = tensor.scalars.map { 0.6 * $0 }
            return tensor
        }
    }

    /// 12 samples of 5 features, labels 0, 1, 2 in turn.
    let samples: TrainingSamples = {
        var generator = SeededGenerator(seed: 9)
        return TrainingSamples(
            features: (0..<(12 * 5)).map { _ in Float(generator.uniformDouble() * 2 - 1) },
            labels: (0..<12).map { Int32($0 % 3) }, featureCount: 5)
    }()

    /// A fjord TRAIN for the whole model drawing among `fractions`.
    func task(
        fractions: [Float], distillation: TrainingTask.Distillation?, epochs: UInt16 = 2,
        batchSize: UInt16 = 4, momentum: Float = 0.9
    ) -> TrainingTask {
        TrainingTask(
            budgets: [], factors: [], shared: parameters, localEpochs: epochs,
            batchSize: batchSize, learningRate: 0.2, sampler: .unsampled, groupLasso: 0,
            seed: 21, momentum: momentum, weightDecay: 1e-3, samplerFractions: fractions,
            widthDropout: true, distillation: distillation)
    }

    var half: WidthPlan {
        get throws { WidthPlan.prefix(try ChannelSpaces(architecture), fraction: 0.5) }
    }

    @Test("The step's gradient matches central differences of CE + α·T²·KL, teacher held fixed")
    func stepGradientAgainstFiniteDifferences() throws {
        let plan = try half
        let (x, y) = samples.batch(Array(0..<12)[...])
        let teacherLogits = Network(
            architecture: architecture, parameters: parameters, keptRanks: []
        )
        .forward(x, batch: 12).logits
        let student = Network(
            architecture: plan.subArchitecture, parameters: plan.gather(parameters), keptRanks: [])
        let distillation = TrainingTask.Distillation(weight: 0.8, temperature: 2)
        let step = WidthTraining.stepGradients(
            student: student, features: x, labels: y, classCount: 3,
            teacher: (teacherLogits, distillation))
        let plain = WidthTraining.stepGradients(
            student: student, features: x, labels: y, classCount: 3, teacher: nil)
        // The reported loss stays the labels' cross-entropy; the objective adds the term.
        #expect(step.loss == plain.loss)
        #expect(step.objective > step.loss)
        for t in student.parameters.indices {
            let numeric = numericalGradient(at: student.parameters[t], step: 1e-2) { probe in
                var perturbed = student
                perturbed.parameters[t] = probe
                return WidthTraining.stepGradients(
                    student: perturbed, features: x, labels: y, classCount: 3,
                    teacher: (teacherLogits, distillation)
                ).objective
            }
            #expect(
                isClose(step.gradients[t], numeric, tolerance: Tolerance.gradient),
                "tensor \(t): relative error \(relativeError(step.gradients[t], numeric))")
            #expect(step.gradients[t] != plain.gradients[t], "tensor \(t)")
        }
    }

    @Test("One distilled step is SGD on the student's gradient; the teacher's own weights stay")
    func teacherGetsNoGradient() throws {
        let plan = try half
        let distillation = TrainingTask.Distillation(weight: 1.5, temperature: 3)
        // One full-batch step at width 1/2 without momentum or decay.
        var one = task(
            fractions: [0.5], distillation: distillation, epochs: 1, batchSize: 12, momentum: 0)
        one.weightDecay = 0
        let trained = LocalTraining.run(one, architecture: architecture, samples: samples)
        #expect(trained.steps == 1)
        let (x, y) = samples.batch(Array(0..<12)[...])
        let teacherLogits = Network(
            architecture: architecture, parameters: parameters, keptRanks: []
        )
        .forward(x, batch: 12).logits
        let student = Network(
            architecture: plan.subArchitecture, parameters: plan.gather(parameters), keptRanks: [])
        let step = WidthTraining.stepGradients(
            student: student, features: x, labels: y, classCount: 3,
            teacher: (teacherLogits, distillation))
        var expected = student.parameters
        for t in expected.indices {
            for j in expected[t].scalars.indices {
                expected[t].scalars[j] -= 0.2 * step.gradients[t].scalars[j]
            }
        }
        let received = plan.gather(trained.slice.shared)
        for t in expected.indices {
            // The client shuffles its batch: the same rows in another order.
            #expect(isClose(received[t], expected[t], tolerance: 1e-5), "tensor \(t)")
        }
        for (t, indices) in plan.parameterIndices.enumerated() {
            let held = Set(indices)
            let (before, after) = (parameters[t].scalars, trained.slice.shared[t].scalars)
            let outside = before.indices.filter { !held.contains($0) }
            #expect(!outside.isEmpty || t == 4 || t == 5)
            #expect(outside.allSatisfy { before[$0] == after[$0] }, "tensor \(t)")
        }
    }

    @Test("α = 0 trains bit for bit as without distillation; α > 0 trains differently")
    func zeroWeightIsOff() throws {
        let off = LocalTraining.run(
            task(fractions: [0.25, 0.5, 1], distillation: nil), architecture: architecture,
            samples: samples)
        let zero = LocalTraining.run(
            task(
                fractions: [0.25, 0.5, 1],
                distillation: TrainingTask.Distillation(weight: 0, temperature: 4)),
            architecture: architecture, samples: samples)
        #expect(zero.slice == off.slice)
        #expect(zero.loss.bitPattern == off.loss.bitPattern && zero.steps == off.steps)
        let on = LocalTraining.run(
            task(
                fractions: [0.25, 0.5, 1],
                distillation: TrainingTask.Distillation(weight: 1, temperature: 2)),
            architecture: architecture, samples: samples)
        #expect(on.slice != off.slice)
        #expect(on.steps == off.steps)
    }

    @Test("Only the client's own width trains: no teacher, so distillation changes nothing")
    func ownWidthIsNotDistilled() throws {
        let off = LocalTraining.run(
            task(fractions: [1], distillation: nil), architecture: architecture, samples: samples)
        let on = LocalTraining.run(
            task(
                fractions: [1], distillation: TrainingTask.Distillation(weight: 2, temperature: 2)),
            architecture: architecture, samples: samples)
        #expect(on.slice == off.slice)
    }

    @Test("A distilled round is deterministic: the same TRAIN twice gives the same bits")
    func deterministic() throws {
        let distilled = task(
            fractions: [0.25, 0.5, 1],
            distillation: TrainingTask.Distillation(weight: 0.5, temperature: 2.5), epochs: 3)
        let first = LocalTraining.run(distilled, architecture: architecture, samples: samples)
        let second = LocalTraining.run(distilled, architecture: architecture, samples: samples)
        #expect(first.slice == second.slice)
        #expect(first.loss.bitPattern == second.loss.bitPattern)
    }

    @Test("TRAIN carries α and T behind option bit 2, 8 bytes; off is the frame without them")
    func wire() throws {
        let distillation = TrainingTask.Distillation(weight: 0.75, temperature: 2)
        let on = task(fractions: [0.5, 1], distillation: distillation)
        let off = task(fractions: [0.5, 1], distillation: nil)
        let onFrame = WireCodec.encode(.train(on), round: 3, sender: 0)
        let offFrame = WireCodec.encode(.train(off), round: 3, sender: 0)
        #expect(onFrame.count == offFrame.count + 8)
        #expect(onFrame.count == WireCodec.encodedSize(of: .train(on)))
        // The options byte follows the sampler byte (offset 20) and three f32.
        let options = WireLimits.headerSize + 33
        #expect(offFrame[options] == 0 && onFrame[options] == 4)
        #expect(Array(onFrame[(options + 1)..<(options + 5)]) == [0, 0, 0x40, 0x3F])
        #expect(Array(onFrame[(options + 5)..<(options + 9)]) == [0, 0, 0, 0x40])
        guard
            case .train(let received) = try WireCodec.decode(onFrame, maximumSize: 1 << 20).message
        else {
            Issue.record("not a TRAIN")
            return
        }
        #expect(received == on)
        #expect(received.distillation == distillation)
    }

    @Test("A client refuses distillation without width dropout, and α or T out of range")
    func clientRefusals() throws {
        let good = task(
            fractions: [0.5, 1], distillation: TrainingTask.Distillation(weight: 0, temperature: 1))
        #expect(ClientSession.problem(withSettings: good) == nil)
        var lod = good
        lod.widthDropout = false
        lod.samplerFractions = []
        #expect(ClientSession.problem(withSettings: lod)?.contains("width dropout") == true)
        let bad: [(Float, Float, String)] = [
            (-1, 1, "weight -1.0"), (.nan, 1, "weight nan"), (.infinity, 1, "weight inf"),
            (1, 0, "temperature 0.0"), (1, -2, "temperature -2.0"),
            (1, .infinity, "temperature inf"), (1, .nan, "temperature nan"),
        ]
        for (weight, temperature, reason) in bad {
            var refused = good
            refused.distillation = TrainingTask.Distillation(
                weight: weight, temperature: temperature)
            let problem = ClientSession.problem(withSettings: refused)
            #expect(
                problem?.contains(reason) == true, "\(weight), \(temperature): \(problem ?? "")")
        }
    }

    @Test("The coordinator's fjord TRAIN carries the scenario's α and T; off carries none")
    func coordinatorTask() throws {
        let path = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Scenarios/smoke-heteroFL.yaml").path
        let base = try Scenario.load(path: path).overriding([
            ("model.strategy", "fjord"), ("clientsPerRound", "6"),
        ])
        let clients = ClientTable(
            fleetSize: 6,
            records: (0..<6).map { i in
                ClientRecord(
                    id: UInt32(i), peer: PeerID(bytes: [UInt8(i + 1)]), tierIndex: i < 3 ? 0 : 1,
                    sampleCount: 40 + i, nonce: UInt64(i))
            })
        func tasks(_ scenario: Scenario) -> [TrainingTask] {
            RoundLogic(scenario: scenario).invitations(
                selected: Array(0..<6), clients: clients, global: scenario.initialNetwork(),
                round: 1
            ).invited.map(\.task)
        }
        #expect(tasks(base).allSatisfy { $0.distillation == nil })
        let distilled = try base.overriding([
            ("training.widthDistillation", "{weight: 0.3, temperature: 2}")
        ])
        let sent = tasks(distilled)
        #expect(sent.count == 6)
        #expect(
            sent.allSatisfy {
                $0.distillation == TrainingTask.Distillation(weight: 0.3, temperature: 2)
            })
        // Nothing else in the TRAIN moves.
        for (a, b) in zip(tasks(base), sent) {
            var stripped = b
            stripped.distillation = nil
            #expect(stripped == a)
        }
    }
}
