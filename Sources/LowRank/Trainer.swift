import Foundation
import Tensors
import Vocabulary

/// Hyperparameters of central (or one client's local) training.
public struct TrainingConfiguration: Sendable, Equatable, Codable {
    public var epochs: Int = 10
    public var batchSize: Int = 64
    /// Peak learning rate; the schedule anneals it.
    public var learningRate: Float = 0.02
    public var schedule: LearningRateSchedule = .cosine
    public var momentum: Float = 0.9
    public var weightDecay: Float = 1e-4
    public var sampler: RankSampler = .perLayer
    /// λ of the hierarchical group lasso (0 = off).
    public var groupLasso: Float = 0
    /// ε of progressive shrinking (0 = off); relative to each layer's largest suffix product.
    public var shrinkThreshold: Double = 0
    public var shrinkThresholdIsRelative: Bool = true
    /// Layers whose dense matrix has fewer entries are never shrunk (cutting them saves
    /// little and costs much accuracy).
    public var shrinkMinimumEntries: Int = 10_000
    /// Share of the epochs (from the start) with group lasso and shrinking (phase 1).
    public var compressionPhase: Double = 1
    /// In phase 2, the probability that a step samples ranks at all (else full kept rank).
    public var fineTuneSamplingRate: Double = 1
    /// The sampler of phase 2 (`nil`: the same as phase 1).
    public var fineTuneSampler: RankSampler? = nil
    /// In phase 2, also train each sampled pass on the full-rank pass's softmax
    /// (self-distillation); phase 1 trains sampled passes on the labels only.
    public var selfDistillation: Bool = false
    /// Distil in phase 1 too (federated clients, whose local training is all phase 1).
    public var selfDistillationWhileCompressing: Bool = false
    /// Probability that a sampling step runs at the full limits instead (sampling biased
    /// to a federated client's own budget, docs/spec.md#convergence-notes); 0 = always sample.
    public var fullRankProbability: Double = 0
    /// The first this many layers of the architecture run forward only: they get no gradient
    /// and no step (a federated client that uses them as a fixed feature extractor).
    public var frozenLayers: Int = 0
    /// Whether each LoD layer's factor steps are scaled to move `U Vᵀ` as far as a dense step.
    ///
    /// The scale is `1 / (2·σ̄)`, `σ̄` the mean of the layer's component importances
    /// `‖uᵢ‖·‖vᵢ‖` when training starts (docs/spec.md#lod-layers, step size). Off by default:
    /// the LeNet-5 and MLP recipes train without it.
    public var normalizesFactorSteps: Bool = false

    public init() {}

    public enum LearningRateSchedule: String, Sendable, Equatable, Codable {
        case constant
        case cosine
    }

    /// Learning rate at a fractional epoch `progress ∈ [0, epochs]`.
    public func learningRate(atProgress progress: Double) -> Float {
        switch schedule {
        case .constant: return learningRate
        case .cosine:
            let t = min(max(progress / Double(max(epochs, 1)), 0), 1)
            return learningRate * Float(0.5 * (1 + Foundation.cos(Double.pi * t)))
        }
    }
}

/// What one epoch did.
public struct EpochReport: Sendable {
    public var epoch: Int
    public var loss: Double
    public var trainingAccuracy: Double
    public var keptRanks: [Int]
    public var parameterCount: Int
    /// The learning rate of the epoch's last step (a schedule ends it at 0), and of its first.
    public var learningRate: Float
    public var firstLearningRate: Float = 0
    public var seconds: Double
}

/// A training set in memory: `count` rows of `featureCount` features and a label each.
public struct TrainingSamples: Sendable {
    public var features: [Float]
    public var labels: [Int32]
    public var featureCount: Int

    public init(features: [Float], labels: [Int32], featureCount: Int) {
        precondition(features.count == labels.count * featureCount, "features and labels disagree")
        self.features = features
        self.labels = labels
        self.featureCount = featureCount
    }

    public var count: Int { labels.count }

    /// Copies the rows at `indices` into a contiguous batch.
    public func batch(_ indices: ArraySlice<Int>) -> (features: [Float], labels: [Int32]) {
        var x = [Float](repeating: 0, count: indices.count * featureCount)
        var y = [Int32](repeating: 0, count: indices.count)
        features.withUnsafeBufferPointer { source in
            x.withUnsafeMutableBufferPointer { target in
                for (row, index) in indices.enumerated() {
                    (target.baseAddress! + row * featureCount).update(
                        from: source.baseAddress! + index * featureCount, count: featureCount)
                    y[row] = labels[index]
                }
            }
        }
        return (x, y)
    }

    /// The consecutive rows `range`, copied.
    public func batch(_ range: Range<Int>) -> (features: [Float], labels: [Int32]) {
        (
            Array(features[(range.lowerBound * featureCount)..<(range.upperBound * featureCount)]),
            Array(labels[range])
        )
    }
}

/// Trains a network with rank sampling, hierarchical group lasso and progressive shrinking.
///
/// All randomness comes from `generator`; the same seed and data give the same model.
public struct Trainer: Sendable {
    public private(set) var network: Network
    public let configuration: TrainingConfiguration
    public private(set) var optimizer: SGD
    public private(set) var sampling: RankSamplingState
    public private(set) var fineTuneSampling: RankSamplingState
    public var generator: SeededGenerator
    public private(set) var epoch = 0
    private var gradients: [Tensor]
    /// The last step's forward pass, whose buffers the next step's pass writes into.
    private var spare: ForwardPass?
    /// Per parameter tensor, 0 for the frozen layers' tensors (`nil`: none frozen).
    private var stepScales: [Float]?

    public init(network: Network, configuration: TrainingConfiguration, generator: SeededGenerator)
    {
        self.network = network
        self.configuration = configuration
        self.generator = generator
        optimizer = SGD(
            for: network.parameters, momentum: configuration.momentum,
            weightDecay: configuration.weightDecay)
        sampling = RankSamplingState(sampler: configuration.sampler)
        fineTuneSampling = RankSamplingState(
            sampler: configuration.fineTuneSampler ?? configuration.sampler)
        gradients = network.parameters.map { Tensor(zeros: $0.shape) }
        let firstTrained = network.architecture.firstTrainedTensor(
            frozenLayers: configuration.frozenLayers)
        var scales: [Float]? =
            firstTrained == 0
            ? nil : network.parameters.indices.map { $0 < firstTrained ? 0 : 1 }
        if configuration.normalizesFactorSteps {
            var factorScales = scales ?? Array(repeating: 1, count: network.parameters.count)
            for (tensor, scale) in Trainer.factorStepScales(of: network) {
                factorScales[tensor] *= scale
            }
            scales = factorScales
        }
        stepScales = scales
    }

    /// Per LoD factor tensor, the step scale `1 / (2·σ̄)` that makes a step on the factors
    /// move the layer's product as far, on average, as a dense step moves `W`.
    ///
    /// With balanced factors (`UᵀU = VᵀV = Σ`, the SVD initialisation), one SGD step of size
    /// `η` on `U` and `V` changes `W = U Vᵀ` by `−η·(G V Vᵀ + U Uᵀ G)`: the gradient's
    /// component along singular directions `(i, j)` is stepped `η·(σᵢ + σⱼ)`, on average
    /// `η·2σ̄`. A He-initialised layer has `σ̄ ≈ √2`, so its factors step about 2.8 times as far
    /// as the dense layer they replace. `σ̄` is the mean importance `‖uᵢ‖·‖vᵢ‖` over the kept
    /// components (the singular values at the SVD initialisation); a layer with none keeps 1.
    public static func factorStepScales(of network: Network) -> [(tensor: Int, scale: Float)] {
        var scales: [(tensor: Int, scale: Float)] = []
        for (l, layerIndex) in network.architecture.lowRankLayerIndices.enumerated() {
            let p = network.parameterOffset(ofLayer: layerIndex)
            let kept = network.keptRanks[l]
            // Rows of the stored Uᵀ and Vᵀ: component i is row i of each.
            func rowNorm(_ factor: Tensor, _ row: Int) -> Double {
                let width = factor.count / max(factor.shape[0], 1)
                var sum = 0.0
                for j in (row * width)..<((row + 1) * width) {
                    sum += Double(factor.scalars[j] * factor.scalars[j])
                }
                return sum.squareRoot()
            }
            var total = 0.0
            for i in 0..<kept {
                total += rowNorm(network.parameters[p], i) * rowNorm(network.parameters[p + 1], i)
            }
            let mean = kept > 0 ? total / Double(kept) : 0
            let scale: Float = mean > 0 && mean.isFinite ? Float(1 / (2 * mean)) : 1
            scales += [(p, scale), (p + 1, scale)]
        }
        return scales
    }

    /// Whether the current epoch is in the compression phase (lasso + shrinking).
    public var isCompressing: Bool {
        Double(epoch) < configuration.compressionPhase * Double(configuration.epochs)
    }

    /// One pass over `samples` in a fresh random order; shrinks at its end in phase 1.
    public mutating func trainEpoch(
        on samples: TrainingSamples, clock: () -> Double = { 0 }
    ) -> EpochReport {
        let start = clock()
        var order = Array(0..<samples.count)
        order.shuffleFromFront(using: &generator)
        let batchSize = configuration.batchSize
        let stepsPerEpoch = (samples.count + batchSize - 1) / batchSize
        var lossSum = 0.0
        var correct = 0
        var learningRate: Float = 0
        var firstLearningRate: Float?
        for step in 0..<stepsPerEpoch {
            let slice = order[(step * batchSize)..<min((step + 1) * batchSize, samples.count)]
            let (x, y) = samples.batch(slice)
            learningRate = configuration.learningRate(
                atProgress: Double(epoch) + Double(step) / Double(stepsPerEpoch))
            if firstLearningRate == nil { firstLearningRate = learningRate }
            let result = self.step(features: x, labels: y, learningRate: learningRate)
            lossSum += result.loss * Double(slice.count)
            correct += result.correct
        }
        if isCompressing && configuration.shrinkThreshold > 0 { shrink() }
        epoch += 1
        return EpochReport(
            epoch: epoch, loss: lossSum / Double(max(samples.count, 1)),
            trainingAccuracy: Double(correct) / Double(max(samples.count, 1)),
            keptRanks: network.keptRanks,
            parameterCount: network.parameterCount(ranks: network.keptRanks),
            learningRate: learningRate, firstLearningRate: firstLearningRate ?? learningRate,
            seconds: clock() - start)
    }

    /// One SGD step on a batch; returns the batch's mean loss and correct count.
    @discardableResult
    public mutating func step(
        features x: [Float], labels y: [Int32], learningRate: Float
    ) -> (loss: Double, correct: Int) {
        let classCount = network.architecture.classCount
        var samplesThisStep =
            isCompressing || generator.nextUnitInterval() < configuration.fineTuneSamplingRate
        if samplesThisStep && configuration.fullRankProbability > 0 {
            samplesThisStep = generator.nextUnitInterval() >= configuration.fullRankProbability
        }
        let ranks: [Int]
        if !samplesThisStep {
            ranks = network.keptRanks
        } else if isCompressing || configuration.fineTuneSampler == nil {
            ranks = sampling.nextRanks(limits: network.keptRanks, using: &generator)
        } else {
            ranks = fineTuneSampling.nextRanks(limits: network.keptRanks, using: &generator)
        }
        let pass = network.forward(x, batch: y.count, ranks: ranks, reusing: &spare)
        network.updateRunningStatistics(from: pass)
        var (loss, outputGradient) = SoftmaxCrossEntropy.lossAndGradient(
            logits: pass.logits, labels: y, classCount: classCount)
        var correct = SoftmaxCrossEntropy.correctCount(
            logits: pass.logits, labels: y, classCount: classCount)
        let frozen = configuration.frozenLayers
        let distils =
            configuration.selfDistillation
            && (!isCompressing || configuration.selfDistillationWhileCompressing)
        if distils && ranks != network.keptRanks {
            // Teacher: the full kept-rank pass on the labels; student: the sampled pass on its softmax.
            let full = network.forward(x, batch: y.count)
            let teacher = SoftmaxCrossEntropy.lossAndGradient(
                logits: full.logits, labels: y, classCount: classCount)
            network.backward(
                full, outputGradient: teacher.gradient, into: &gradients, frozenLayers: frozen)
            let targets = SoftmaxCrossEntropy.softmax(full.logits, classCount: classCount)
            let student = SoftmaxCrossEntropy.lossAndGradient(
                logits: pass.logits, targets: targets, classCount: classCount)
            var studentGradients = gradients.map { Tensor(zeros: $0.shape) }
            network.backward(
                pass, outputGradient: student.gradient, into: &studentGradients,
                frozenLayers: frozen)
            for i in gradients.indices { gradients[i].add(studentGradients[i]) }
            loss = teacher.loss
            correct = SoftmaxCrossEntropy.correctCount(
                logits: full.logits, labels: y, classCount: classCount)
        } else {
            network.backward(
                pass, outputGradient: outputGradient, into: &gradients, frozenLayers: frozen)
        }
        outputGradient = []
        if isCompressing && configuration.groupLasso > 0 { addGroupLassoGradient() }
        optimizer.update(
            &network.parameters, along: gradients, learningRate: learningRate, scales: stepScales)
        spare = consume pass
        return (loss, correct)
    }

    /// Adds the group lasso's gradient, divided by each factor's step scale: the optimiser
    /// multiplies it back, so the lasso pulls the factors as far per step as without
    /// ``TrainingConfiguration/normalizesFactorSteps`` (the normalisation matches the task
    /// gradient's effect on `U Vᵀ` to a dense step; λ is a pull on the factors themselves).
    private mutating func addGroupLassoGradient() {
        let layers = network.architecture.lowRankLayerIndices
        for (l, layerIndex) in layers.enumerated() where layerIndex >= configuration.frozenLayers {
            let p = network.parameterOffset(ofLayer: layerIndex)
            let kept = network.keptRanks[l]
            for tensor in [p, p + 1] {
                GroupLasso.addGradient(
                    of: network.parameters[tensor], kept: kept,
                    strength: lassoStrength(ofTensor: tensor), to: &gradients[tensor])
            }
        }
    }

    /// λ for one factor tensor: `groupLasso / scale` under a factor step scale, else λ itself.
    func lassoStrength(ofTensor tensor: Int) -> Float {
        guard configuration.normalizesFactorSteps, let scale = stepScales?[tensor], scale > 0
        else { return configuration.groupLasso }
        return configuration.groupLasso / scale
    }

    /// Progressive shrinking: cuts each eligible LoD layer to the prefix whose suffix
    /// importance passes the threshold, masking (zeroing) the rest.
    public mutating func shrink() {
        let layers = network.architecture.lowRankLayerIndices
        for (l, layerIndex) in layers.enumerated() {
            let layer = network.architecture.layers[layerIndex]
            guard let (outputs, inputs) = layer.matrixShape,
                outputs * inputs >= configuration.shrinkMinimumEntries
            else { continue }
            let p = network.parameterOffset(ofLayer: layerIndex)
            let kept = network.keptRanks[l]
            let newRank = GroupLasso.keptRank(
                up: network.parameters[p], down: network.parameters[p + 1], kept: kept,
                threshold: configuration.shrinkThreshold,
                relative: configuration.shrinkThresholdIsRelative)
            guard newRank < kept else { continue }
            network.mask(lowRankLayer: l, toRank: newRank)
            optimizer.resetRows(ofTensor: p, from: newRank)
            optimizer.resetRows(ofTensor: p + 1, from: newRank)
        }
    }
}

extension RandomNumberGenerator {
    /// A uniform deviate in [0, 1).
    public mutating func nextUnitInterval() -> Double { uniformDouble() }
}
