// The model, training (sampler, server optimiser, budget growth), shrinking and evaluation
// sections of a scenario.

import Vocabulary

extension ScenarioValidator {
    // MARK: Model and training

    mutating func model(
        _ top: Fields, datasetName: String?, dataset: Scenario.Dataset?
    ) -> Scenario.Model? {
        guard let node = requiredNode(top, "model"),
            let fields = fields(node, at: "model", known: Self.modelKeys)
        else { return nil }
        let architecture = modelDescription(fields)
        let strategy = required(fields, "strategy", .choice(Scenario.Strategy.self))
        let before = problems.count
        if case .preset(let preset)? = architecture {
            checkModelFitsImages(preset, datasetName: datasetName)
            if datasetName == "synthetic", preset != .logistic {
                report(
                    "model.architecture",
                    "\(preset.rawValue) needs 28×28 images; synthetic data has 60 features "
                        + "(use logistic)")
            }
        }
        // Once per mistake: a sample shape already refused for the model is not reported again.
        if let architecture, let dataset, problems.count == before,
            !problems.contains(where: { $0.keyPath == "dataset.shape" }),
            let problem = architecture.shapeProblem(
                inputShape: dataset.sampleShape, classCount: dataset.classCount)
        {
            report(
                "model.architecture",
                "\(architecture.summary) cannot take \(dataset.name) samples of shape "
                    + "\(dataset.sampleShape.map(String.init).joined(separator: "×")): \(problem)")
        }
        let minimum = optional(
            fields, "factoredMinimumWeights", .integer(atLeast: 0), default: 0)
        if strategy == .denseFedAvg, let minimum, minimum > 0 {
            report(
                "model.factoredMinimumWeights",
                "must be 0 with denseFedAvg: every layer of the baseline is dense")
        }
        guard let architecture, let strategy, let minimum else { return nil }
        return Scenario.Model(
            architecture: architecture, strategy: strategy, factoredMinimumWeights: minimum)
    }

    /// `model.architecture`: a preset name (read as a choice, with its suggestions), or a
    /// description mapping or layer list in the syntax of description files.
    private mutating func modelDescription(_ fields: Fields) -> ModelDescription? {
        guard let node = requiredNode(fields, "architecture") else { return nil }
        let path = fields.keyPath("architecture")
        if case .scalar = node {
            return read(node, at: path, .choice(Scenario.Architecture.self)).map { .preset($0) }
        }
        var found: [ScenarioProblem] = []
        let description = ModelDescriptionReader.description(node, at: path, problems: &found)
        for problem in found { report(problem.keyPath, problem.reason) }
        return found.isEmpty ? description : nil
    }

    mutating func training(
        _ top: Fields, strategy: Scenario.Strategy?
    ) -> Scenario.Training? {
        guard let node = requiredNode(top, "training"),
            let fields = fields(node, at: "training", known: Self.trainingKeys)
        else { return nil }
        // Both travel in TRAIN as 16-bit fields.
        let localEpochs = required(
            fields, "localEpochs", .integer(atLeast: 1, atMost: Int(UInt16.max)))
        let batchSize = required(fields, "batchSize", .integer(atLeast: 1, atMost: Int(UInt16.max)))
        let learningRate = required(fields, "learningRate", .number(.positiveFloat))
        let sampler: RankSampler? =
            if let node = fields.node("sampler") {
                self.sampler(node, strategy: strategy)
            } else {
                strategy == .denseFedAvg || strategy?.isWidthSliced == true
                    ? .unsampled : .perLayer
            }
        let groupLasso = optional(fields, "groupLasso", .number(.nonNegativeFloat), default: 0)
        if strategy == .denseFedAvg, let groupLasso, groupLasso > 0 {
            report(
                "training.groupLasso",
                "must be 0 with denseFedAvg: the group lasso acts on low-rank factors")
        }
        let server: ServerOptimizer? =
            if let node = fields.node("server") { self.server(node) } else {
                .fedAvg(learningRate: 1)
            }
        let momentum = optional(fields, "momentum", .number(.unitClosedOpen), default: 0)
        let weightDecay = optional(
            fields, "weightDecay", .number(.nonNegativeFloat), default: 0)
        let fullBudgetProbability = optional(
            fields, "fullBudgetProbability", .number(.unit), default: 0)
        let coverageDamping = optional(fields, "coverageDamping", .boolean, default: false)
        let selfDistillation = optional(fields, "selfDistillation", .boolean, default: false)
        let rankAwareServer = optional(fields, "rankAwareServer", .boolean, default: false)
        let schedule = optional(
            fields, "learningRateSchedule", .choice(Scenario.Training.LearningRateSchedule.self),
            default: .constant)
        var budgetGrowth: Scenario.BudgetGrowth?? = .some(nil)
        if let node = fields.node("budgetGrowth") {
            budgetGrowth = self.budgetGrowth(node, strategy: strategy).map {
                .some($0)
            }
        }
        var widthDistillation: Scenario.WidthDistillation?? = .some(nil)
        if let node = fields.node("widthDistillation") {
            widthDistillation = self.widthDistillation(node, strategy: strategy).map { .some($0) }
        }
        guard let localEpochs, let batchSize, let learningRate, let sampler, let groupLasso,
            let server, let momentum, let weightDecay, let fullBudgetProbability,
            let coverageDamping, let selfDistillation, let schedule, let rankAwareServer,
            let budgetGrowth, let widthDistillation
        else { return nil }
        var training = Scenario.Training(
            localEpochs: localEpochs, batchSize: batchSize, learningRate: learningRate,
            sampler: sampler, groupLasso: groupLasso, server: server)
        training.momentum = momentum
        training.weightDecay = weightDecay
        training.fullBudgetProbability = fullBudgetProbability
        training.coverageDamping = coverageDamping
        training.selfDistillation = selfDistillation
        training.learningRateSchedule = schedule
        training.rankAwareServer = rankAwareServer
        training.budgetGrowth = budgetGrowth
        training.widthDistillation = widthDistillation
        return training
    }

    /// `training.widthDistillation: {weight: 1, temperature: 2}` (temperature 1 when left
    /// out): FjORD's self-distillation, only under `fjord`.
    mutating func widthDistillation(
        _ node: ScenarioNode, strategy: Scenario.Strategy?
    ) -> Scenario.WidthDistillation? {
        let path = "training.widthDistillation"
        guard let fields = fields(node, at: path, known: Self.widthDistillationKeys) else {
            return nil
        }
        if let strategy, strategy != .fjord {
            report(
                path,
                "only with fjord, not \(strategy.rawValue): it distils a step's sampled width "
                    + "from the client's whole width, and only fjord samples widths")
        }
        // Both travel in TRAIN as 32-bit floats.
        let weight = required(fields, "weight", .number(.nonNegativeFloat))
        let temperature = optional(fields, "temperature", .number(.positiveFloat), default: 1)
        guard let weight, let temperature else { return nil }
        return Scenario.WidthDistillation(weight: weight, temperature: temperature)
    }

    /// `training.budgetGrowth: {caps: [0.125, 0.5], until: [40, 80]}`.
    mutating func budgetGrowth(
        _ node: ScenarioNode, strategy: Scenario.Strategy?
    ) -> Scenario.BudgetGrowth? {
        let path = "training.budgetGrowth"
        guard let fields = fields(node, at: path, known: Self.budgetGrowthKeys) else { return nil }
        if strategy == .denseFedAvg {
            report(path, "not allowed with denseFedAvg: the dense model has no rank budgets")
        }
        let caps = required(fields, "caps", .list(of: .number(.unitOpenClosed)))
        let until = required(fields, "until", .list(of: .round))
        guard let caps, let until else { return nil }
        var valid = true
        func check(_ ok: Bool, _ key: String, _ reason: String) {
            guard !ok else { return }
            report(fields.keyPath(key), reason)
            valid = false
        }
        check(!caps.isEmpty, "caps", "must list at least one cap")
        check(caps.allSatisfy { $0 < 1 }, "caps", "every cap must be below 1 (1 is no cap)")
        check(zip(caps, caps.dropFirst()).allSatisfy { $0 < $1 }, "caps", "must increase")
        check(
            until.count == caps.count, "until",
            "must list one last round per cap (\(caps.count)), found \(until.count)")
        // A run shorter than the last capped round (`--rounds 5` on the default scenario)
        // simply stays capped: not an error.
        check(zip(until, until.dropFirst()).allSatisfy { $0 < $1 }, "until", "must increase")
        return valid ? Scenario.BudgetGrowth(caps: caps, until: until) : nil
    }

    mutating func sampler(
        _ node: ScenarioNode, strategy: Scenario.Strategy?
    ) -> RankSampler? {
        let path = "training.sampler"
        // `sampler: perLayer` is short for `sampler: {kind: perLayer}`.
        let fields: Fields
        let kind: String?
        if case .scalar = node {
            fields = Fields(path: path, entries: [])
            kind = read(node, at: path, .choice(RankSampler.names))
        } else {
            guard let mapping = self.fields(node, at: path, known: Self.samplerKeys) else {
                return nil
            }
            fields = mapping
            kind = required(fields, "kind", .choice(RankSampler.names))
        }
        guard let kind else { return nil }
        if strategy == .denseFedAvg, kind != "none" {
            report(path, "must be none with denseFedAvg: the dense model has no ranks to sample")
        }
        switch kind {
        case "sharedFraction":
            rejectUnused(fields, ["fraction"], because: "sampler sharedFraction")
            let scope = optional(
                fields, "scope", .choice(RankSampler.FractionScope.self), default: .budget)
            guard let scope else { return nil }
            guard let node = fields.node("fractions") else {
                return .sharedFraction(fractions: [], scope: scope)
            }
            let fractions = read(
                node, at: fields.keyPath("fractions"), .list(of: .number(.unitOpenClosed)))
            if let fractions, fractions.isEmpty {
                report(fields.keyPath("fractions"), "must list at least one fraction")
                return nil
            }
            return fractions.map { .sharedFraction(fractions: $0, scope: scope) }
        case "fixed":
            rejectUnused(fields, ["fractions", "scope"], because: "sampler fixed")
            return required(fields, "fraction", .number(.unitOpenClosed)).map {
                .fixed(fraction: $0)
            }
        default:
            rejectUnused(fields, ["fraction", "fractions", "scope"], because: "sampler \(kind)")
            return switch kind {
            case "perLayer": .perLayer
            case "acrossLayers": .acrossLayers
            default: .unsampled
            }
        }
    }

    mutating func server(_ node: ScenarioNode) -> ServerOptimizer? {
        guard let fields = fields(node, at: "training.server", known: Self.serverKeys),
            let optimizer = required(fields, "optimizer", .choice(ServerOptimizer.names))
        else { return nil }
        let unused = ["momentum", "beta1", "beta2", "epsilon"]
        switch optimizer {
        case "fedAvg":
            rejectUnused(fields, unused, because: "optimizer fedAvg")
            return optional(fields, "learningRate", .number(.positive), default: 1)
                .map { .fedAvg(learningRate: $0) }
        case "fedAvgM":
            rejectUnused(fields, ["beta1", "beta2", "epsilon"], because: "optimizer fedAvgM")
            let learningRate = optional(fields, "learningRate", .number(.positive), default: 1)
            let momentum = optional(fields, "momentum", .number(.unitClosedOpen), default: 0.9)
            guard let learningRate, let momentum else { return nil }
            return .fedAvgM(learningRate: learningRate, momentum: momentum)
        default:
            rejectUnused(fields, ["momentum"], because: "optimizer fedAdam")
            let learningRate = required(fields, "learningRate", .number(.positive))
            let beta1 = optional(fields, "beta1", .number(.unitClosedOpen), default: 0.9)
            let beta2 = optional(fields, "beta2", .number(.unitClosedOpen), default: 0.99)
            let epsilon = optional(fields, "epsilon", .number(.positive), default: 1e-3)
            guard let learningRate, let beta1, let beta2, let epsilon else { return nil }
            return .fedAdam(
                learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon)
        }
    }

    mutating func shrinking(
        _ top: Fields, strategy: Scenario.Strategy?
    ) -> Scenario.Shrinking? {
        guard let node = top.node("shrinking") else {
            return Scenario.Shrinking(threshold: 0, period: 10)
        }
        guard let fields = fields(node, at: "shrinking", known: Self.shrinkingKeys) else {
            return nil
        }
        let threshold = optional(fields, "threshold", .number(.unitClosedOpen), default: 0)
        let period = optional(fields, "period", .round, default: 10)
        if strategy == .denseFedAvg, let threshold, threshold > 0 {
            report(
                "shrinking.threshold",
                "must be 0 with denseFedAvg: the dense model has no components to shrink")
        }
        var until: Int?? = .some(nil)
        if let node = fields.node("until") {
            until = read(node, at: "shrinking.until", .round).map { .some($0) }
        }
        let from = optional(fields, "from", .round, default: 1)
        if let from, let until = until ?? nil, from > until {
            report("shrinking.from", "round \(from) comes after shrinking.until (\(until))")
        }
        guard let threshold, let period, let until, let from else { return nil }
        var shrinking = Scenario.Shrinking(threshold: threshold, period: period)
        shrinking.until = until
        shrinking.from = from
        return shrinking
    }

    mutating func evaluation(
        _ top: Fields, strategy: Scenario.Strategy?, datasetName: String?, clients: Int?
    ) -> Scenario.Evaluation? {
        guard let node = top.node("evaluation") else { return Scenario.Evaluation(period: 10) }
        guard let fields = fields(node, at: "evaluation", known: Self.evaluationKeys) else {
            return nil
        }
        let period = optional(fields, "period", .round, default: 10)
        let capacity = Scenario.Dataset.fashionMNISTTrainingCount
        let validation = optional(
            fields, "validationSamples", .integer(atLeast: 0, atMost: capacity), default: 0)
        let deploy = optional(
            fields, "deploy", .choice(Scenario.Evaluation.Deployment.self), default: .budget)
        let averageDecay = optional(
            fields, "averageDecay", .number(.unitClosedOpen), default: 0)
        let significance = optional(
            fields, "deploySignificance", .number(.nonNegative), default: 0)
        guard let period, let validation, let deploy, let averageDecay, let significance else {
            return nil
        }
        if significance > 0 && deploy != .bestValidated {
            report(
                fields.keyPath("deploySignificance"),
                "only with evaluation.deploy: bestValidated (it weighs one tier budget against "
                    + "another on the validation set)")
            return nil
        }
        if validation > 0 {
            if let datasetName, datasetName != "fashion-mnist" {
                report(
                    fields.keyPath("validationSamples"),
                    "only for fashion-mnist (a held-out part of its training split); "
                        + "\(datasetName) data has no shared training split")
                return nil
            }
            if let clients, validation + clients > capacity {
                report(
                    fields.keyPath("validationSamples"),
                    "out of range: \(validation) held out leave "
                        + "\(max(capacity - validation, 0)) training images for \(clients) clients")
                return nil
            }
        }
        if deploy == .bestValidated {
            if strategy == .denseFedAvg {
                report(
                    fields.keyPath("deploy"),
                    "bestValidated is not allowed with denseFedAvg: the dense model has one budget")
                return nil
            }
            if validation == 0 {
                report(
                    fields.keyPath("deploy"),
                    "bestValidated needs evaluation.validationSamples > 0: it judges the tier "
                        + "budgets on the coordinator's validation set, never on the test set")
                return nil
            }
        }
        return Scenario.Evaluation(
            period: period, validationSamples: validation, deploy: deploy,
            averageDecay: averageDecay, deploySignificance: significance)
    }
}
