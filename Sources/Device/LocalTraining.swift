import Federation
import LowRank
import Tensors

/// What a client does with one TRAIN message: pure, so it is tested without sockets.
public enum LocalTraining {
    /// Trains the received slice on the client's samples within its budget and returns the
    /// update (same shapes as received; with `freezeConvolutions`, the layers up to the last
    /// convolution run forward only and come back with no rows), the mean training loss and
    /// the steps taken.
    ///
    /// Ranks are sampled inside the budget by the task's sampler (with probability
    /// `fullBudgetProbability` a step runs at the whole budget); the group lasso applies to
    /// the held components; nothing is shrunk on the client.
    ///
    /// A width slice of a dense model (narrower tensors, see ``WidthTraining``) is trained as
    /// the dense sub-model its shapes give, with FjORD's ordered dropout when TRAIN asks for
    /// it. The shapes must have been accepted (`ClientSession.sliceFits`).
    public static func run(
        _ task: TrainingTask, architecture: Architecture, samples: TrainingSamples
    ) -> (slice: ModelSlice, loss: Double, steps: Int) {
        var architecture = architecture
        if architecture.lowRankLayerIndices.isEmpty, let spaces = try? ChannelSpaces(architecture) {
            let widths = try? WidthTraining.sliceWidths(of: architecture, shared: task.shared)
            if WidthTraining.isOrderedDropout(task, architecture: architecture) {
                // Even the widest tier's client, which holds the whole model, drops out.
                let trained = WidthTraining.orderedDropout(
                    task, full: architecture, widths: widths ?? spaces.sizes,
                    parameters: task.shared, samples: samples)
                return (
                    ModelSlice(budgets: [], factors: [], shared: trained.parameters),
                    trained.loss, trained.steps
                )
            }
            if let widths { architecture = spaces.subArchitecture(widths: widths) }
        }
        let slice = ModelSlice(
            budgets: task.budgets.map(Int.init), factors: task.factors, shared: task.shared)
        let network = Network(architecture: architecture, slice: slice)
        var configuration = TrainingConfiguration()
        configuration.epochs = Int(task.localEpochs)
        configuration.batchSize = Int(task.batchSize)
        configuration.learningRate = task.learningRate
        configuration.schedule = .constant
        configuration.momentum = task.momentum
        configuration.weightDecay = task.weightDecay
        configuration.groupLasso = task.groupLasso
        configuration.shrinkThreshold = 0
        configuration.compressionPhase = 1
        configuration.fullRankProbability = Double(task.fullBudgetProbability)
        configuration.selfDistillation = task.selfDistillation
        configuration.selfDistillationWhileCompressing = true
        configuration.sampler = task.rankSampler
        let frozen = task.freezeConvolutions ? architecture.layersThroughLastConvolution : 0
        configuration.frozenLayers = frozen
        var trainer = Trainer(
            network: network, configuration: configuration,
            generator: SeededGenerator(seed: task.seed))
        var lossSum = 0.0
        var steps = 0
        for _ in 0..<configuration.epochs where samples.count > 0 {
            let report = trainer.trainEpoch(on: samples)
            lossSum += report.loss
            steps += (samples.count + configuration.batchSize - 1) / configuration.batchSize
        }
        let trained = trainer.network
        return (
            trained.slice(budgets: slice.budgets, frozenLayers: frozen),
            lossSum / Double(max(configuration.epochs, 1)),
            steps
        )
    }
}
