import Federation
import LowRank
import Tensors
import Vocabulary

/// A client's side of the width strategies (HeteroFL, FedRolex, FjORD, a small model): a
/// TRAIN whose dense tensors are narrower than the model is a width slice, trained as an
/// ordinary dense model of the sub-architecture those shapes give.
///
/// The client needs no scenario: the sub-architecture follows from the received shapes and
/// the model description (`ChannelSpaces.widths(parameterShapes:)`). A TRAIN for FjORD also
/// carries the `sharedFraction` sampler with the widths to draw from (fractions of the full
/// model); nothing else on a dense model uses that sampler.
public enum WidthTraining {
    /// The widths of every channel space of `architecture` that `shared` holds, or `nil`
    /// when `architecture` has LoD layers or the tensors are the whole model (not a slice).
    /// Throws when the tensors are narrower but not a width slice.
    static func sliceWidths(
        of architecture: Architecture, shared: [Tensor]
    ) throws(WidthShapeError) -> [Int]? {
        let shapes = shared.map(\.shape)
        guard architecture.lowRankLayerIndices.isEmpty, shapes != architecture.parameterShapes
        else { return nil }
        let spaces: ChannelSpaces
        do { spaces = try ChannelSpaces(architecture) } catch {
            throw WidthShapeError(reason: error.description)
        }
        return try spaces.widths(parameterShapes: shapes).get()
    }

    /// Whether a TRAIN for a dense model asks for FjORD's ordered dropout: its own sampler
    /// byte (`widthDropout`), never a `sharedFraction` rank sampler, which on a model whose
    /// layers all stay dense samples no ranks and trains the whole model.
    static func isOrderedDropout(_ task: TrainingTask, architecture: Architecture) -> Bool {
        architecture.lowRankLayerIndices.isEmpty && task.widthDropout
            && !task.samplerFractions.isEmpty
    }

    /// FjORD's local training (Horváth et al., NeurIPS 2021): each step draws a fraction `f`
    /// uniformly from the task's fractions (of the full model, none above the client's own
    /// width) and trains the prefix sub-model of `⌈f · c⌉` channels of every sliced space
    /// (at most the client's width). The step is plain SGD with momentum and weight decay on
    /// that sub-model alone: the other weights and their momentum are left as they are, so
    /// gathering, stepping and scattering back is exactly a step on the masked model.
    ///
    /// With the task's `distillation` (weight α > 0), a step drawn below the client's own
    /// width also runs the client's whole slice on the batch (the teacher, before the step)
    /// and adds `α · T² · KL(teacher ‖ student)` at temperature T to the sub-model's loss; the
    /// teacher's outputs are constants, so only the sub-model's weights get a gradient. A
    /// step at the client's own width, and α = 0, train exactly as without distillation.
    ///
    /// - Returns: the trained parameters (the client's slice), the mean loss per epoch and
    ///   the steps taken.
    static func orderedDropout(
        _ task: TrainingTask, full: Architecture, widths: [Int], parameters: [Tensor],
        samples: TrainingSamples
    ) -> (parameters: [Tensor], loss: Double, steps: Int) {
        guard let fullSpaces = try? ChannelSpaces(full) else {
            preconditionFailure("a dense model whose shapes were accepted has channel spaces")
        }
        let clientArchitecture = fullSpaces.subArchitecture(widths: widths)
        guard let spaces = try? ChannelSpaces(clientArchitecture) else {
            preconditionFailure("a width slice of a dense model has channel spaces")
        }
        let fractions = Array(Set(task.samplerFractions.map(Double.init))).sorted()
        let plans = fractions.map { fraction in
            WidthPlan(
                spaces: spaces,
                kept: spaces.sizes.indices.map { s in
                    let width =
                        spaces.isFixed[s]
                        ? spaces.sizes[s]
                        : min(
                            spaces.sizes[s],
                            RankBudget.rank(fraction: fraction, of: fullSpaces.sizes[s]))
                    return Array(0..<width)
                }, groupsFrom: fullSpaces)
        }
        var parameters = parameters
        var velocities = parameters.map { Tensor(zeros: $0.shape) }
        var generator = SeededGenerator(seed: task.seed)
        let batchSize = max(Int(task.batchSize), 1)
        let (momentum, decay, rate) = (task.momentum, task.weightDecay, task.learningRate)
        let classCount = full.classCount
        let distillation = task.distillation.flatMap { $0.weight > 0 ? $0 : nil }
        var (lossSum, steps) = (0.0, 0)
        for _ in 0..<Int(task.localEpochs) where samples.count > 0 {
            var order = Array(0..<samples.count)
            order.shuffleFromFront(using: &generator)
            var epochLoss = 0.0
            for start in stride(from: 0, to: samples.count, by: batchSize) {
                let rows = order[start..<min(start + batchSize, samples.count)]
                let (x, y) = samples.batch(rows)
                let plan = plans[generator.nextIndex(below: plans.count)]
                // The client's own width needs no gathering: the slice is the whole model.
                let isWhole = plan.kept.map(\.count) == spaces.sizes
                var sub = isWhole ? parameters : plan.gather(parameters)
                var subVelocities = isWhole ? velocities : plan.gather(velocities)
                let network = Network(
                    architecture: plan.subArchitecture, parameters: sub, keptRanks: [])
                var teacher: (logits: [Float], distillation: TrainingTask.Distillation)?
                if !isWhole, let distillation {
                    let whole = Network(
                        architecture: clientArchitecture, parameters: parameters, keptRanks: [])
                    teacher = (whole.forward(x, batch: y.count).logits, distillation)
                }
                let (loss, _, gradients) = stepGradients(
                    student: network, features: x, labels: y, classCount: classCount,
                    teacher: teacher)
                SGD.step(
                    &sub, velocities: &subVelocities, along: gradients, learningRate: rate,
                    momentum: momentum, weightDecay: decay)
                if isWhole {
                    (parameters, velocities) = (sub, subVelocities)
                } else {
                    plan.scatter(sub, into: &parameters)
                    plan.scatter(subVelocities, into: &velocities)
                }
                epochLoss += loss * Double(rows.count)
                steps += 1
            }
            lossSum += epochLoss / Double(samples.count)
        }
        return (parameters, lossSum / Double(max(Int(task.localEpochs), 1)), steps)
    }

    /// One local step's loss and gradients on the sub-model `student` for a batch: the label
    /// cross-entropy and, with `teacher` (logits of the client's whole slice on the same
    /// batch, held constant), FjORD's distillation term (`KnowledgeDistillation`).
    ///
    /// - Returns: the label cross-entropy (the training loss a client reports), the objective
    ///   the step descends (the cross-entropy plus the distillation term) and its gradient
    ///   with respect to `student.parameters`.
    static func stepGradients(
        student: Network, features: [Float], labels: [Int32], classCount: Int,
        teacher: (logits: [Float], distillation: TrainingTask.Distillation)?
    ) -> (loss: Double, objective: Double, gradients: [Tensor]) {
        let pass = student.forward(features, batch: labels.count)
        var (loss, gradient) = SoftmaxCrossEntropy.lossAndGradient(
            logits: pass.logits, labels: labels, classCount: classCount)
        var objective = loss
        if let teacher {
            let term = KnowledgeDistillation.lossAndGradient(
                studentLogits: pass.logits, teacherLogits: teacher.logits, classCount: classCount,
                weight: teacher.distillation.weight,
                temperature: teacher.distillation.temperature)
            objective += term.loss
            for i in gradient.indices { gradient[i] += term.gradient[i] }
        }
        var gradients = student.parameters.map { Tensor(zeros: $0.shape) }
        student.backward(pass, outputGradient: gradient, into: &gradients)
        return (loss, objective, gradients)
    }
}
