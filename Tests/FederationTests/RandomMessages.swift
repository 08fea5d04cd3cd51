import Federation
import Tensors
import Vocabulary

/// Random but reproducible messages for property tests, including empty tensors,
/// zero-rank budgets, scalars (no axes) and multi-byte UTF-8 text.
enum RandomMessages {
    static func tensor(shape: [Int], using generator: inout SeededGenerator) -> Tensor {
        Tensor.randomNormal(shape: shape, using: &generator)
    }

    static func factors(using generator: inout SeededGenerator) -> [FactorPair] {
        (0..<Int.random(in: 0...4, using: &generator)).map { _ in
            let rank = Int.random(in: 0...5, using: &generator)
            let outputs = Int.random(in: 1...7, using: &generator)
            let inputs = Int.random(in: 1...7, using: &generator)
            return FactorPair(
                up: tensor(shape: [rank, outputs], using: &generator),
                down: tensor(shape: [rank, inputs], using: &generator))
        }
    }

    static func shared(using generator: inout SeededGenerator) -> [Tensor] {
        (0..<Int.random(in: 0...3, using: &generator)).map { _ in
            let dimensionCount = Int.random(in: 0...3, using: &generator)
            let shape = (0..<dimensionCount).map { _ in Int.random(in: 0...4, using: &generator) }
            return tensor(shape: shape, using: &generator)
        }
    }

    static func budgets(using generator: inout SeededGenerator) -> [UInt32] {
        (0..<Int.random(in: 0...5, using: &generator)).map { _ in
            UInt32.random(in: 0...6, using: &generator)
        }
    }

    static func text(maximumScalars: Int, using generator: inout SeededGenerator) -> String {
        let alphabet: [Character] = ["a", "Z", "0", " ", "é", "ß", "λ", "→", "数", "🙂", "\u{0}"]
        let count = Int.random(in: 0...maximumScalars, using: &generator)
        return String((0..<count).map { _ in alphabet.randomElement(using: &generator)! })
    }

    static func float(using generator: inout SeededGenerator) -> Float {
        Float.random(in: -1e3...1e3, using: &generator)
    }

    static func message(_ type: MessageType, using generator: inout SeededGenerator) -> Message {
        switch type {
        case .register:
            return .register(
                Registration(
                    tierName: text(maximumScalars: 20, using: &generator),
                    capability: float(using: &generator), sampleCount: generator.next(),
                    instanceNonce: generator.next(),
                    requestedClientID: Bool.random(using: &generator)
                        ? nil : UInt32.random(in: 0..<UInt32.max, using: &generator)))
        case .registered:
            return .registered(
                RegistrationAccepted(
                    clientID: generator.next(), runID: generator.next(),
                    modelDescription: text(maximumScalars: 200, using: &generator)))
        case .train:
            return .train(
                TrainingTask(
                    budgets: budgets(using: &generator), factors: factors(using: &generator),
                    shared: shared(using: &generator), localEpochs: generator.next(),
                    batchSize: generator.next(), learningRate: float(using: &generator),
                    sampler: RankSampler.Kind.allCases.randomElement(using: &generator)!,
                    groupLasso: float(using: &generator), seed: generator.next(),
                    momentum: float(using: &generator), weightDecay: float(using: &generator),
                    samplerFractions: (0..<Int.random(in: 0...4, using: &generator)).map { _ in
                        float(using: &generator)
                    },
                    fullBudgetProbability: float(using: &generator),
                    selfDistillation: Bool.random(using: &generator),
                    freezeConvolutions: Bool.random(using: &generator)
                ).withRandomWidthDropout(
                    using: &generator))
        case .update:
            return .update(
                TrainingUpdate(
                    factors: factors(using: &generator), shared: shared(using: &generator),
                    sampleCount: generator.next(), trainingLoss: float(using: &generator),
                    computeSeconds: float(using: &generator)))
        case .evaluate:
            return .evaluate(
                EvaluationTask(
                    budgets: (0..<Int.random(in: 0...3, using: &generator)).map { _ in
                        budgets(using: &generator)
                    },
                    factors: factors(using: &generator), shared: shared(using: &generator)))
        case .evaluation:
            return .evaluation(
                EvaluationReport(
                    results: (0..<Int.random(in: 0...4, using: &generator)).map { _ in
                        BudgetEvaluation(
                            sampleCount: generator.next(), correct: generator.next(),
                            lossSum: float(using: &generator))
                    }))
        case .shutdown:
            return .shutdown(Shutdown(reason: text(maximumScalars: 30, using: &generator)))
        case .error:
            return .error(
                ErrorReport(
                    code: ErrorReport.Code(rawValue: generator.next()),
                    message: text(maximumScalars: 30, using: &generator)))
        case .heartbeat:
            return .heartbeat
        case .workerHello:
            return .workerHello(
                WorkerHello(
                    slot: Bool.random(using: &generator)
                        ? nil : UInt32.random(in: 0..<UInt32.max, using: &generator),
                    slots: Bool.random(using: &generator)
                        ? nil : UInt32.random(in: 1...UInt32.max, using: &generator),
                    instanceNonce: generator.next(),
                    host: text(maximumScalars: 20, using: &generator),
                    credential: text(maximumScalars: 64, using: &generator)))
        case .workerAssignment:
            let slots = UInt32.random(in: 1...9, using: &generator)
            return .workerAssignment(
                WorkerAssignment(
                    slot: UInt32.random(in: 0..<slots, using: &generator), slots: slots,
                    runID: generator.next(), scenario: text(maximumScalars: 200, using: &generator),
                    rows: (0..<Int.random(in: 0...4, using: &generator)).map { _ in
                        budgets(using: &generator)
                    }))
        case .linkProbe:
            return .linkProbe(
                LinkProbe(
                    replyFrameBytes: generator.next(),
                    paddingBytes: UInt32.random(in: 0...5000, using: &generator)))
        case .linkProbeReply:
            return .linkProbeReply(
                LinkProbeReply(paddingBytes: UInt32.random(in: 0...5000, using: &generator)))
        case .workerRows:
            return .workerRows(
                WorkerRows(client: generator.next(), rows: budgets(using: &generator)))
        }
    }

    /// A train message of about `megabytes` MB of factors (for benchmarks).
    static func largeTraining(megabytes: Double, using generator: inout SeededGenerator) -> Message
    {
        let floats = Int(megabytes * 1_000_000 / 4)
        // Five layers of [k, 300] and [k, 784] plus biases, sized to the requested volume.
        let rank = max(1, floats / (5 * (300 + 784)))
        let factors = (0..<5).map { _ in
            FactorPair(
                up: tensor(shape: [rank, 300], using: &generator),
                down: tensor(shape: [rank, 784], using: &generator))
        }
        return .train(
            TrainingTask(
                budgets: Array(repeating: UInt32(rank), count: 5), factors: factors,
                shared: [tensor(shape: [300], using: &generator)], localEpochs: 1, batchSize: 64,
                learningRate: 0.05, sampler: .perLayer, groupLasso: 0, seed: 1))
    }
}

extension TrainingTask {
    /// The task, one time in four as width dropout (whose rank sampler is then `none`, as
    /// decoding sampler byte 5 gives).
    fileprivate func withRandomWidthDropout(using generator: inout SeededGenerator) -> Self {
        guard Int.random(in: 0..<4, using: &generator) == 0 else { return self }
        var task = self
        (task.widthDropout, task.sampler) = (true, .unsampled)
        if Bool.random(using: &generator) {
            task.distillation = TrainingTask.Distillation(
                weight: Float.random(in: 0...4, using: &generator),
                temperature: Float.random(in: 0.5...8, using: &generator))
        }
        return task
    }
}
