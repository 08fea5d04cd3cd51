/// Reads an untyped ``ScenarioNode`` tree into a ``Scenario``, collecting every problem.
///
/// Each reader reports what is wrong at its own key and returns `nil` for that value, then
/// the caller goes on, so one pass finds every problem. Cross-field rules run only when
/// the values they compare were themselves valid, so one mistake is reported once.
struct ScenarioValidator {
    private(set) var problems: [ScenarioProblem] = []

    /// Every problem found in one document.
    struct Failure: Error {
        var problems: [ScenarioProblem]
    }

    /// The scenario, or every problem found.
    static func validate(_ root: ScenarioNode?) -> Result<Scenario, Failure> {
        var validator = ScenarioValidator()
        let scenario = validator.scenario(from: root)
        if let scenario, validator.problems.isEmpty {
            // Workers receive the scenario as run in one frame field: one cut short would
            // reach them as broken YAML.
            let bytes = scenario.yaml().utf8.count
            guard bytes <= Scenario.maximumYAMLBytes else {
                validator.report(
                    "",
                    "the scenario as run is \(bytes) bytes of YAML; a scenario may have at most "
                        + "\(Scenario.maximumYAMLBytes) (what a worker assignment carries)")
                return .failure(Failure(problems: validator.problems))
            }
            return .success(scenario)
        }
        return .failure(Failure(problems: validator.problems))
    }

    mutating func report(_ keyPath: String, _ reason: String) {
        problems.append(
            ScenarioProblem(keyPath: keyPath.isEmpty ? "(root)" : keyPath, reason: reason))
    }

    // MARK: Schema

    static let topLevelKeys = [
        "name", "seed", "clients", "rounds", "clientsPerRound", "overSelection", "minimumUpdates",
        "roundFailurePolicy", "deadlineSeconds", "dataset", "model", "training", "shrinking",
        "evaluation", "security", "simulation", "robustness", "adversaries", "tiers",
    ]
    static let datasetKeys = ["name", "directory", "partition", "synthetic", "samplesPerClient"]
    static let partitionKeys = ["scheme", "alpha", "perClient", "tierAlpha"]
    static let syntheticKeys = ["alpha", "beta", "iid"]
    static let modelKeys = ["architecture", "strategy", "factoredMinimumWeights"]
    static let trainingKeys = [
        "localEpochs", "batchSize", "learningRate", "sampler", "groupLasso", "server",
        "momentum", "weightDecay", "fullBudgetProbability", "coverageDamping", "selfDistillation",
        "learningRateSchedule", "rankAwareServer", "budgetGrowth",
    ]
    static let samplerKeys = ["kind", "fractions", "fraction", "scope"]
    static let serverKeys = ["optimizer", "learningRate", "momentum", "beta1", "beta2", "epsilon"]
    static let shrinkingKeys = ["threshold", "period", "from", "until"]
    static let budgetGrowthKeys = ["caps", "until"]
    static let evaluationKeys = [
        "period", "validationSamples", "deploy", "averageDecay", "deploySignificance",
    ]
    static let securityKeys = ["requireCurve"]
    static let simulationKeys = ["processPerClient"]
    static let robustnessKeys = ["aggregation", "trimFraction", "maximumUpdateNormRatio"]
    static let adversaryKeys = ["fraction", "attack", "factor"]
    static let tierKeys = [
        "name", "share", "count", "rankFraction", "gflops", "uplinkMbps", "downlinkMbps",
        "latencyMs", "availability", "freezeConvolutions",
    ]

    /// Tolerance on the sum of tier shares.
    static let shareTolerance = 1e-6

    // MARK: Top level

    private mutating func scenario(from root: ScenarioNode?) -> Scenario? {
        guard let root, root != .null else {
            report("", "the document is empty; expected a mapping of scenario keys")
            return nil
        }
        guard let top = fields(root, at: "", known: Self.topLevelKeys) else { return nil }

        let name = required(top, "name", .identifier)
        let seed = required(top, "seed", .seed)
        let clients = required(top, "clients", .count)
        let rounds = required(top, "rounds", .round)
        let clientsPerRound = required(top, "clientsPerRound", .count)
        let overSelection = optional(top, "overSelection", .number(.atLeast(1)), default: 1.0)
        let minimumUpdates = optional(top, "minimumUpdates", .count, default: 1)
        let roundFailurePolicy = optional(
            top, "roundFailurePolicy", .choice(Scenario.RoundFailurePolicy.self), default: .skip)
        let deadlineSeconds = optional(
            top, "deadlineSeconds", Field.number(.seconds).map { Optional($0) }, default: nil)

        if let clients, let clientsPerRound, clientsPerRound > clients {
            report(
                "clientsPerRound",
                "out of range: must be at most clients (\(clients)), found \(clientsPerRound)")
        }
        if let clientsPerRound, let minimumUpdates, minimumUpdates > clientsPerRound {
            report(
                "minimumUpdates",
                "out of range: must be at most clientsPerRound (\(clientsPerRound)), "
                    + "found \(minimumUpdates)")
        }
        if let clients, let clientsPerRound, let overSelection, clientsPerRound <= clients {
            // Compared as a real number first: `1e308 · clientsPerRound` has no Int.
            let wanted = (Double(clientsPerRound) * overSelection - 1e-9).rounded(.up)
            if wanted > Double(clients) {
                let selected = wanted < 1e15 ? " = \(Int(wanted))" : ""
                report(
                    "overSelection",
                    "out of range: selects ceil(\(clientsPerRound) × \(format(overSelection)))"
                        + "\(selected) clients per round but the fleet has \(clients)")
            }
        }

        let dataset = self.dataset(top, clients: clients)
        var samplesPerClient: Int?? = .some(nil)
        if let node = top.node("dataset")?["samplesPerClient"] {
            samplesPerClient = read(
                node, at: "dataset.samplesPerClient",
                .integer(atLeast: 1, atMost: Int(UInt32.max))
            ).map { .some($0) }
        }
        let model = self.model(
            top, datasetName: dataset?.name ?? top.node("dataset")?["name"]?.text)
        let training = self.training(top, strategy: model?.strategy)
        let shrinking = self.shrinking(top, strategy: model?.strategy)
        let evaluation = self.evaluation(
            top, strategy: model?.strategy,
            datasetName: dataset?.name ?? top.node("dataset")?["name"]?.text, clients: clients)
        let security = self.security(top)
        let simulation = self.simulation(top)
        let robustness = self.robustness(top)
        var adversaries: Scenario.Adversaries?? = .some(nil)
        if let node = top.node("adversaries") {
            adversaries = self.adversaries(node).map { .some($0) }
        }
        let tiers = self.tiers(top, clients: clients)

        guard let name, let seed, let clients, let rounds, let clientsPerRound, let overSelection,
            let minimumUpdates, let roundFailurePolicy, let deadlineSeconds, let dataset,
            let model, var training, let shrinking, let evaluation, let security, let tiers
        else { return nil }

        if case .sharedFraction(let fractions, let scope) = training.sampler, fractions.isEmpty {
            // Default: the distinct rank fractions of the tiers, smallest first.
            let tierFractions = Set(tiers.map(\.rankFraction)).sorted()
            training.sampler = .sharedFraction(fractions: tierFractions, scope: scope)
        }
        if let growth = training.budgetGrowth, shrinking.isEnabled,
            shrinking.from <= growth.lastCappedRound
        {
            report(
                "shrinking.from",
                "must come after training.budgetGrowth's last capped round "
                    + "\(growth.lastCappedRound) (found \(shrinking.from)): components opened "
                    + "at zero would be cut before they train")
        }
        let freezing = tiers.indices.filter { tiers[$0].freezeConvolutions }
        if let first = freezing.first {
            let key = "tiers[\(first)].freezeConvolutions"
            if model.strategy == .denseFedAvg {
                report(
                    key, "only with orderedLoD: dense FedAvg trains the whole model on every client"
                )
            } else if model.architecture != .leNet {
                report(
                    key,
                    "model.architecture \(model.architecture.rawValue) has no convolutions to freeze"
                )
            } else if freezing.count == tiers.count {
                report(key, "every tier freezes the convolutions, so no client would train them")
            }
        }
        if evaluation.validationSamples > 0,
            case .fashionMNIST(_, .shards(let perClient)) = dataset,
            clients * perClient
                > Scenario.Dataset.fashionMNISTTrainingCount - evaluation.validationSamples
        {
            report(
                "evaluation.validationSamples",
                "out of range: \(evaluation.validationSamples) held out leave too few training "
                    + "images for \(clients) clients × \(perClient) shards")
        }
        guard let samplesPerClient, let simulation, let robustness, let adversaries else {
            return nil
        }
        var scenario = Scenario(
            name: name, seed: seed, clients: clients, rounds: rounds,
            clientsPerRound: clientsPerRound, overSelection: overSelection,
            minimumUpdates: minimumUpdates, roundFailurePolicy: roundFailurePolicy,
            deadlineSeconds: deadlineSeconds, dataset: dataset, model: model, training: training,
            shrinking: shrinking, evaluation: evaluation, security: security, tiers: tiers)
        scenario.samplesPerClient = samplesPerClient
        scenario.simulation = simulation
        scenario.robustness = robustness
        scenario.adversaries = adversaries
        return scenario
    }

    // MARK: Dataset

    private mutating func dataset(_ top: Fields, clients: Int?) -> Scenario.Dataset? {
        guard let node = requiredNode(top, "dataset"),
            let fields = fields(node, at: "dataset", known: Self.datasetKeys)
        else { return nil }
        let name = required(fields, "name", .choice(["fashion-mnist", "synthetic"]))
        switch name {
        case "fashion-mnist":
            let directory = optional(
                fields, "directory", .nonEmptyText,
                default: Scenario.Dataset.defaultFashionMNISTDirectory)
            if fields.has("synthetic") {
                report("dataset.synthetic", "only allowed with name: synthetic")
            }
            let partition = requiredNode(fields, "partition").flatMap {
                self.partition($0, at: "dataset.partition", clients: clients)
            }
            guard let directory, let partition else { return nil }
            return .fashionMNIST(directory: directory, partition: partition)
        case "synthetic":
            if let partition = fields.node("partition") {
                _ = self.partition(partition, at: "dataset.partition", clients: nil)
                report(
                    "dataset.partition",
                    "not allowed for synthetic data: each client is one generated device")
            }
            if fields.has("directory") {
                report("dataset.directory", "not allowed for synthetic data: it is generated")
            }
            return requiredNode(fields, "synthetic").flatMap { self.synthetic($0) }
        default:
            // Unknown name: still check what is inside, without cross-field rules.
            if let node = fields.node("partition") {
                _ = self.partition(node, at: "dataset.partition", clients: nil)
            }
            if let node = fields.node("synthetic") { _ = self.synthetic(node) }
            if let node = fields.node("directory") {
                _ = read(node, at: "dataset.directory", .nonEmptyText)
            }
            return nil
        }
    }

    private mutating func partition(
        _ node: ScenarioNode, at path: String, clients: Int?
    ) -> Scenario.Partition? {
        // `partition: iid` is short for `partition: {scheme: iid}`.
        let schemes = ["iid", "dirichlet", "shards", "tiered"]
        let fields: Fields
        let scheme: String?
        if case .scalar = node {
            fields = Fields(path: path, entries: [])
            scheme = read(node, at: path, .choice(schemes))
        } else {
            guard let mapping = self.fields(node, at: path, known: Self.partitionKeys) else {
                return nil
            }
            fields = mapping
            scheme = required(fields, "scheme", .choice(schemes))
        }
        let capacity = Scenario.Dataset.fashionMNISTTrainingCount
        switch scheme {
        case "iid", "dirichlet", "tiered":
            rejectUnused(fields, ["perClient"], because: "scheme \(scheme ?? "")")
            if scheme != "tiered" {
                rejectUnused(fields, ["tierAlpha"], because: "scheme \(scheme ?? "")")
            }
            if let clients, clients > capacity {
                report(
                    "clients",
                    "out of range: \(clients) clients exceed the \(capacity) training images")
            }
            if scheme == "iid" {
                rejectUnused(fields, ["alpha"], because: "scheme iid")
                return .iid
            }
            if scheme == "tiered" {
                let alpha = required(fields, "alpha", .number(.positive))
                let tierAlpha = required(fields, "tierAlpha", .number(.positive))
                guard let alpha, let tierAlpha else { return nil }
                return .tiered(alpha: alpha, tierAlpha: tierAlpha)
            }
            return required(fields, "alpha", .number(.positive)).map { .dirichlet(alpha: $0) }
        case "shards":
            rejectUnused(fields, ["alpha", "tierAlpha"], because: "scheme shards")
            let perClient = optional(
                fields, "perClient", .integer(atLeast: 1, atMost: capacity), default: 2)
            if let clients, let perClient, clients * perClient > capacity {
                report(
                    fields.keyPath("perClient"),
                    "out of range: \(clients) clients × \(perClient) shards exceed the "
                        + "\(capacity) training images")
            }
            return perClient.map { .shards(perClient: $0) }
        default:
            if let node = fields.node("alpha") {
                _ = read(node, at: fields.keyPath("alpha"), .number(.positive))
            }
            if let node = fields.node("perClient") {
                _ = read(
                    node, at: fields.keyPath("perClient"), .integer(atLeast: 1, atMost: capacity))
            }
            if let node = fields.node("tierAlpha") {
                _ = read(node, at: fields.keyPath("tierAlpha"), .number(.positive))
            }
            return nil
        }
    }

    private mutating func synthetic(_ node: ScenarioNode) -> Scenario.Dataset? {
        guard let fields = fields(node, at: "dataset.synthetic", known: Self.syntheticKeys) else {
            return nil
        }
        guard let isIID = optional(fields, "iid", .boolean, default: false) else { return nil }
        if isIID {
            rejectUnused(fields, ["alpha", "beta"], because: "iid: true")
            return .syntheticIID
        }
        let alpha = required(fields, "alpha", .number(.nonNegative))
        let beta = required(fields, "beta", .number(.nonNegative))
        guard let alpha, let beta else { return nil }
        return .synthetic(alpha: alpha, beta: beta)
    }

    // MARK: Model and training

    private mutating func model(_ top: Fields, datasetName: String?) -> Scenario.Model? {
        guard let node = requiredNode(top, "model"),
            let fields = fields(node, at: "model", known: Self.modelKeys)
        else { return nil }
        let architecture = required(fields, "architecture", .choice(Scenario.Architecture.self))
        let strategy = required(fields, "strategy", .choice(Scenario.Strategy.self))
        checkModelFitsImages(architecture, datasetName: datasetName)
        if datasetName == "synthetic", let architecture, architecture != .logistic {
            report(
                "model.architecture",
                "\(architecture.rawValue) needs 28×28 images; synthetic data has 60 features "
                    + "(use logistic)")
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

    private mutating func training(
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
        let sampler: Scenario.RankSampler? =
            if let node = fields.node("sampler") {
                self.sampler(node, strategy: strategy)
            } else {
                strategy == .denseFedAvg ? .unsampled : .perLayer
            }
        let groupLasso = optional(fields, "groupLasso", .number(.nonNegativeFloat), default: 0)
        if strategy == .denseFedAvg, let groupLasso, groupLasso > 0 {
            report(
                "training.groupLasso",
                "must be 0 with denseFedAvg: the group lasso acts on low-rank factors")
        }
        let server: Scenario.ServerOptimizer? =
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
        guard let localEpochs, let batchSize, let learningRate, let sampler, let groupLasso,
            let server, let momentum, let weightDecay, let fullBudgetProbability,
            let coverageDamping, let selfDistillation, let schedule, let rankAwareServer,
            let budgetGrowth
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
        return training
    }

    /// `training.budgetGrowth: {caps: [0.125, 0.5], until: [40, 80]}`.
    private mutating func budgetGrowth(
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

    private mutating func sampler(
        _ node: ScenarioNode, strategy: Scenario.Strategy?
    ) -> Scenario.RankSampler? {
        let path = "training.sampler"
        // `sampler: perLayer` is short for `sampler: {kind: perLayer}`.
        let fields: Fields
        let kind: String?
        if case .scalar = node {
            fields = Fields(path: path, entries: [])
            kind = read(node, at: path, .choice(Scenario.RankSampler.kinds))
        } else {
            guard let mapping = self.fields(node, at: path, known: Self.samplerKeys) else {
                return nil
            }
            fields = mapping
            kind = required(fields, "kind", .choice(Scenario.RankSampler.kinds))
        }
        guard let kind else { return nil }
        if strategy == .denseFedAvg, kind != "none" {
            report(path, "must be none with denseFedAvg: the dense model has no ranks to sample")
        }
        switch kind {
        case "sharedFraction":
            rejectUnused(fields, ["fraction"], because: "sampler sharedFraction")
            let scope = optional(
                fields, "scope", .choice(Scenario.FractionScope.self), default: .budget)
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

    private mutating func server(_ node: ScenarioNode) -> Scenario.ServerOptimizer? {
        guard let fields = fields(node, at: "training.server", known: Self.serverKeys),
            let optimizer = required(fields, "optimizer", .choice(Scenario.ServerOptimizer.names))
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

    private mutating func shrinking(
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

    private mutating func evaluation(
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

    private mutating func simulation(_ top: Fields) -> Scenario.Simulation? {
        guard let node = top.node("simulation") else {
            return Scenario.Simulation(processPerClient: false)
        }
        guard let fields = fields(node, at: "simulation", known: Self.simulationKeys) else {
            return nil
        }
        return optional(fields, "processPerClient", .boolean, default: false)
            .map(Scenario.Simulation.init(processPerClient:))
    }

    /// `robustness: {aggregation: trimmedMean, trimFraction: 0.1, maximumUpdateNormRatio: 10}`.
    private mutating func robustness(_ top: Fields) -> Scenario.Robustness? {
        guard let node = top.node("robustness") else { return Scenario.Robustness() }
        guard let fields = fields(node, at: "robustness", known: Self.robustnessKeys) else {
            return nil
        }
        let aggregation = optional(
            fields, "aggregation", .choice(Scenario.Robustness.Aggregation.self), default: .mean)
        let trimFraction = optional(
            fields, "trimFraction", .number(Interval(lower: 0, upper: 0.5, upperIncluded: false)),
            default: 0.1)
        let ratio = optional(
            fields, "maximumUpdateNormRatio", .number(.positive),
            default: Scenario.Robustness.defaultMaximumUpdateNormRatio)
        guard let aggregation, let trimFraction, let ratio else { return nil }
        if aggregation != .trimmedMean, fields.has("trimFraction") {
            report(
                fields.keyPath("trimFraction"),
                "only with aggregation: trimmedMean (found aggregation: \(aggregation.rawValue))")
            return nil
        }
        return Scenario.Robustness(
            aggregation: aggregation, trimFraction: trimFraction, maximumUpdateNormRatio: ratio)
    }

    /// `adversaries: {fraction: 0.1, attack: scale, factor: 10}` (simulated attackers).
    private mutating func adversaries(_ node: ScenarioNode) -> Scenario.Adversaries? {
        guard let fields = fields(node, at: "adversaries", known: Self.adversaryKeys) else {
            return nil
        }
        let fraction = required(fields, "fraction", .number(.unitOpenClosed))
        let attack = required(fields, "attack", .choice(Scenario.Adversaries.Attack.self))
        let factor = optional(fields, "factor", .number(.positive), default: 1)
        guard let fraction, let attack, let factor else { return nil }
        return Scenario.Adversaries(fraction: fraction, attack: attack, factor: factor)
    }

    private mutating func security(_ top: Fields) -> Scenario.Security? {
        guard let node = top.node("security") else { return Scenario.Security(requireCurve: false) }
        guard let fields = fields(node, at: "security", known: Self.securityKeys) else {
            return nil
        }
        return optional(fields, "requireCurve", .boolean, default: false)
            .map(Scenario.Security.init(requireCurve:))
    }

    // MARK: Tiers

    private mutating func tiers(_ top: Fields, clients: Int?) -> [Scenario.Tier]? {
        guard let node = requiredNode(top, "tiers") else { return nil }
        guard case .sequence(let items, _) = node else {
            report(
                "tiers", "wrong type: expected a sequence of tiers, found \(node.kindDescription)")
            return nil
        }
        guard !items.isEmpty else {
            report("tiers", "must list at least one tier")
            return nil
        }
        var tiers: [Scenario.Tier?] = []
        var firstUse: [String: Int] = [:]
        var sharesAt: [Int] = []
        var countsAt: [Int] = []
        for (index, item) in items.enumerated() {
            let path = "tiers[\(index)]"
            guard let fields = fields(item, at: path, known: Self.tierKeys) else {
                tiers.append(nil)
                continue
            }
            let name = required(fields, "name", .identifier)
            if let name {
                if let first = firstUse[name] {
                    report(
                        fields.keyPath("name"),
                        "duplicate tier name '\(name)' (first used by tiers[\(first)])")
                } else {
                    firstUse[name] = index
                }
            }
            var population: Scenario.Tier.Population?
            switch (fields.node("share"), fields.node("count")) {
            case (.some, .some):
                report(path, "has both share and count; give one")
                sharesAt.append(index)
                countsAt.append(index)
            case (.some(let share), nil):
                sharesAt.append(index)
                population = read(share, at: fields.keyPath("share"), .number(.unitOpenClosed))
                    .map { .share($0) }
            case (nil, .some(let count)):
                countsAt.append(index)
                population = read(count, at: fields.keyPath("count"), .count)
                    .map { .count($0) }
            case (nil, nil):
                report(path, "missing share or count (give one)")
            }
            let rankFraction = required(fields, "rankFraction", .number(.unitOpenClosed))
            let gflops = required(fields, "gflops", .number(.speed))
            let uplinkMbps = required(fields, "uplinkMbps", .number(.speed))
            let downlinkMbps = required(fields, "downlinkMbps", .number(.speed))
            let latencyMs = optional(fields, "latencyMs", .number(.latency), default: 0)
            let availability = optional(fields, "availability", .number(.unit), default: 1)
            let freezeConvolutions = optional(
                fields, "freezeConvolutions", .boolean, default: false)
            guard let name, let population, let rankFraction, let gflops, let uplinkMbps,
                let downlinkMbps, let latencyMs, let availability, let freezeConvolutions
            else {
                tiers.append(nil)
                continue
            }
            var tier = Scenario.Tier(
                name: name, population: population, rankFraction: rankFraction,
                gflops: gflops, uplinkMbps: uplinkMbps, downlinkMbps: downlinkMbps,
                latencyMs: latencyMs, availability: availability)
            tier.freezeConvolutions = freezeConvolutions
            tiers.append(tier)
        }

        let onlyShares = Set(sharesAt).subtracting(countsAt).sorted()
        let onlyCounts = Set(countsAt).subtracting(sharesAt).sorted()
        if !onlyShares.isEmpty, !onlyCounts.isEmpty {
            func list(_ indices: [Int]) -> String {
                indices.map { "tiers[\($0)]" }.joined(separator: ", ")
            }
            report(
                "tiers",
                "mixes share (\(list(onlyShares))) and count (\(list(onlyCounts))); "
                    + "use one of them for every tier")
            return nil
        }
        let valid = tiers.compactMap { $0 }
        guard valid.count == items.count else { return nil }

        let shares = valid.compactMap { if case .share(let s) = $0.population { s } else { nil } }
        let counts = valid.compactMap { if case .count(let c) = $0.population { c } else { nil } }
        if !shares.isEmpty {
            let sum = shares.reduce(0, +)
            if abs(sum - 1) > Self.shareTolerance {
                report("tiers", "shares sum to \(format(sum)), expected 1")
                return nil
            }
            if let clients {
                let sizes = Scenario.apportion(clients, shares: shares)
                for (index, size) in sizes.enumerated() where size == 0 {
                    report(
                        "tiers[\(index)].share",
                        "\(format(shares[index])) of \(clients) clients rounds to no client")
                }
            }
        } else if let clients, counts.reduce(0, +) != clients {
            report("tiers", "counts sum to \(counts.reduce(0, +)), expected clients (\(clients))")
            return nil
        }
        return valid
    }

    // MARK: Reading helpers

    /// The entries of a mapping under `path`, with unknown keys already reported.
    struct Fields {
        let path: String
        let entries: [ScenarioNode.Entry]

        func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

        /// The value of `key`; `nil` when the key is absent or its value is null.
        func node(_ key: String) -> ScenarioNode? {
            guard let value = entries.first(where: { $0.key == key })?.value, value != .null else {
                return nil
            }
            return value
        }

        func has(_ key: String) -> Bool { node(key) != nil }
    }

    private mutating func fields(_ node: ScenarioNode, at path: String, known: [String]) -> Fields?
    {
        guard case .mapping(let entries, _) = node else {
            report(path, "wrong type: expected a mapping, found \(node.kindDescription)")
            return nil
        }
        let fields = Fields(path: path, entries: entries)
        for entry in entries where !known.contains(entry.key) {
            var reason = "unknown key"
            if let suggestion = closestMatch(to: entry.key, among: known) {
                reason += "; did you mean '\(suggestion)'?"
            } else {
                reason += "; expected one of " + known.joined(separator: ", ")
            }
            report(fields.keyPath(entry.key), reason)
        }
        return fields
    }

    private mutating func requiredNode(_ fields: Fields, _ key: String) -> ScenarioNode? {
        guard let node = fields.node(key) else {
            report(fields.keyPath(key), "missing required key")
            return nil
        }
        return node
    }

    private mutating func required<Value>(
        _ fields: Fields, _ key: String, _ field: Field<Value>
    ) -> Value? {
        requiredNode(fields, key).flatMap { read($0, at: fields.keyPath(key), field) }
    }

    /// The value of an optional key: its default when absent, `nil` when invalid.
    private mutating func optional<Value>(
        _ fields: Fields, _ key: String, _ field: Field<Value>, default value: Value
    ) -> Value? {
        guard let node = fields.node(key) else { return value }
        return read(node, at: fields.keyPath(key), field)
    }

    private mutating func read<Value>(
        _ node: ScenarioNode, at path: String, _ field: Field<Value>
    ) -> Value? {
        switch field.read(node) {
        case .success(let value):
            return value
        case .failure(let problem):
            report(path, problem.reason)
            return nil
        }
    }

    /// Reports each of `keys` present in `fields` as not applying in this context.
    private mutating func rejectUnused(_ fields: Fields, _ keys: [String], because context: String)
    {
        for key in keys where fields.has(key) {
            report(fields.keyPath(key), "not used by \(context)")
        }
    }
}

// MARK: - Fields: how one scalar or list is read and checked

/// The reason a value was rejected.
struct FieldProblem: Error {
    var reason: String
}

/// Reads one node as a typed, range-checked value.
struct Field<Value> {
    let read: (ScenarioNode) -> Result<Value, FieldProblem>

    func map<Other>(_ transform: @escaping (Value) -> Other) -> Field<Other> {
        Field<Other> { node in read(node).map(transform) }
    }
}

extension ScenarioNode {
    /// The scalar's text, whatever its style.
    var text: String? {
        if case .scalar(let text, _) = self { text } else { nil }
    }

    /// The text of a plain scalar, the only kind that may spell a number or a Boolean.
    var plainText: String? {
        if case .scalar(let text, true) = self { text } else { nil }
    }

    /// What was found, for "wrong type" messages: quoted strings say so.
    var foundDescription: String {
        if case .scalar(let text, false) = self { return "the string \"\(text)\"" }
        return kindDescription
    }
}

/// An interval of real numbers, for range checks and their messages.
struct Interval {
    var lower: Double?
    var lowerIncluded = true
    var upper: Double?
    var upperIncluded = true

    static let positive = Interval(lower: 0, lowerIncluded: false)
    static let nonNegative = Interval(lower: 0)
    static let unit = Interval(lower: 0, upper: 1)
    static let unitOpenClosed = Interval(lower: 0, lowerIncluded: false, upper: 1)
    static let unitClosedOpen = Interval(lower: 0, upper: 1, upperIncluded: false)
    static func atLeast(_ bound: Double) -> Interval { Interval(lower: bound) }
    /// Sent to clients as a 32-bit float: a larger value would arrive as infinity.
    static let positiveFloat = Interval(
        lower: 0, lowerIncluded: false, upper: Scenario.maximumFloat)
    static let nonNegativeFloat = Interval(lower: 0, upper: Scenario.maximumFloat)
    /// GFLOP/s and Mbit/s: a microcontroller to a data centre, so that the virtual clock's
    /// times stay finite.
    static let speed = Interval(lower: 0.001, upper: 1e9)
    /// Milliseconds: at most an hour.
    static let latency = Interval(lower: 0, upper: 3_600_000)
    /// Virtual seconds: at most a year.
    static let seconds = Interval(lower: 0, lowerIncluded: false, upper: 31_536_000)

    func contains(_ x: Double) -> Bool {
        if let lower, lowerIncluded ? x < lower : x <= lower { return false }
        if let upper, upperIncluded ? x > upper : x >= upper { return false }
        return true
    }

    /// "in (0, 1]", "greater than 0", "at least 1".
    var phrase: String {
        switch (lower, upper) {
        case (let lower?, let upper?):
            "in \(lowerIncluded ? "[" : "(")\(format(lower)), \(format(upper))\(upperIncluded ? "]" : ")")"
        case (let lower?, nil):
            lowerIncluded ? "at least \(format(lower))" : "greater than \(format(lower))"
        case (nil, let upper?):
            upperIncluded ? "at most \(format(upper))" : "less than \(format(upper))"
        case (nil, nil): "finite"
        }
    }
}

extension Field where Value == Double {
    /// A finite number (plain scalar) inside `interval`.
    static func number(_ interval: Interval) -> Field {
        Field { node in
            guard let text = node.plainText, let value = Double(text), value.isFinite else {
                return .failure(
                    .init(reason: "wrong type: expected a number, found \(node.foundDescription)"))
            }
            guard interval.contains(value) else {
                return .failure(
                    .init(reason: "out of range: must be \(interval.phrase), found \(text)"))
            }
            return .success(value)
        }
    }
}

extension Field where Value == Int {
    /// An integer (plain scalar) of at least `lower` and, where the wire or the code carries
    /// it in fewer bits, at most `upper`.
    static func integer(atLeast lower: Int, atMost upper: Int? = nil) -> Field {
        Field { node in
            guard let text = node.plainText, let value = Int(text) else {
                return .failure(
                    .init(reason: "wrong type: expected an integer, found \(node.foundDescription)")
                )
            }
            guard value >= lower else {
                return .failure(
                    .init(reason: "out of range: must be at least \(lower), found \(text)"))
            }
            if let upper, value > upper {
                return .failure(
                    .init(reason: "out of range: must be in [\(lower), \(upper)], found \(text)"))
            }
            return .success(value)
        }
    }
}

extension Field where Value == Int {
    /// A number of clients: `1...Scenario.maximumClients`.
    static var count: Field { integer(atLeast: 1, atMost: Scenario.maximumClients) }
    /// A round number or a number of rounds: `1...Scenario.maximumRounds`.
    static var round: Field { integer(atLeast: 1, atMost: Scenario.maximumRounds) }
}

extension Field where Value == UInt64 {
    /// A seed: an integer in 0...2⁶⁴−1.
    static var seed: Field {
        Field { node in
            guard let text = node.plainText, Int64(text) != nil || UInt64(text) != nil else {
                return .failure(
                    .init(reason: "wrong type: expected an integer, found \(node.foundDescription)")
                )
            }
            guard let value = UInt64(text) else {
                return .failure(
                    .init(reason: "out of range: must be in [0, 2^64 - 1], found \(text)"))
            }
            return .success(value)
        }
    }
}

extension Field where Value == Bool {
    /// `true` or `false` (plain scalar).
    static var boolean: Field {
        Field { node in
            switch node.plainText {
            case "true", "True", "TRUE": .success(true)
            case "false", "False", "FALSE": .success(false)
            default:
                .failure(
                    .init(
                        reason: "wrong type: expected true or false, found \(node.foundDescription)"
                    ))
            }
        }
    }
}

extension Field where Value == String {
    /// Any non-empty scalar, quoted or not.
    static var nonEmptyText: Field {
        Field { node in
            guard let text = node.text else {
                return .failure(
                    .init(reason: "wrong type: expected a string, found \(node.kindDescription)"))
            }
            guard !text.isEmpty else { return .failure(.init(reason: "must not be empty")) }
            return .success(text)
        }
    }

    /// A name usable in file names: ASCII letters, digits, `.`, `_`, `-`.
    static var identifier: Field {
        Field { node in
            guard let text = node.text else {
                return .failure(
                    .init(reason: "wrong type: expected a name, found \(node.kindDescription)"))
            }
            let allowed = text.unicodeScalars.allSatisfy {
                $0.isASCII
                    && ($0.properties.isAlphabetic || ("0"..."9").contains($0)
                        || "._-".unicodeScalars.contains($0))
            }
            guard !text.isEmpty, allowed else {
                return .failure(
                    .init(reason: "invalid name \"\(text)\": use letters, digits, '.', '_' and '-'")
                )
            }
            guard text.utf8.count <= Scenario.maximumNameBytes else {
                return .failure(
                    .init(
                        reason:
                            "too long: \(text.utf8.count) bytes; a name may have at most \(Scenario.maximumNameBytes) (what REGISTER carries)"
                    ))
            }
            return .success(text)
        }
    }

    /// One of `choices`, spelled exactly; a near miss gets a suggestion.
    static func choice(_ choices: [String]) -> Field {
        Field { node in
            guard let text = node.text else {
                return .failure(
                    .init(
                        reason:
                            "wrong type: expected one of \(choices.joined(separator: ", ")), found \(node.kindDescription)"
                    ))
            }
            guard choices.contains(text) else {
                var reason =
                    "unknown value '\(text)'; expected one of \(choices.joined(separator: ", "))"
                if let suggestion = closestMatch(to: text, among: choices) {
                    reason += " (did you mean '\(suggestion)'?)"
                }
                return .failure(.init(reason: reason))
            }
            return .success(text)
        }
    }
}

extension Field where Value: RawRepresentable<String> & CaseIterable {
    /// A case of `type`, by raw value.
    static func choice(_ type: Value.Type) -> Field {
        Field<String>.choice(type.allCases.map(\.rawValue)).map { Value(rawValue: $0)! }
    }
}

extension Field {
    /// A sequence whose every element reads as `element`; reports the first bad element.
    static func list<Element>(of element: Field<Element>) -> Field where Value == [Element] {
        Field { node in
            guard case .sequence(let items, _) = node else {
                return .failure(
                    .init(reason: "wrong type: expected a sequence, found \(node.kindDescription)"))
            }
            var values: [Element] = []
            for (index, item) in items.enumerated() {
                switch element.read(item) {
                case .success(let value): values.append(value)
                case .failure(let problem):
                    return .failure(.init(reason: "element \(index): \(problem.reason)"))
                }
            }
            return .success(values)
        }
    }
}

/// `x` as written in YAML: integral values without a fraction (`2`, not `2.0`).
func format(_ x: Double) -> String {
    if x == x.rounded(), abs(x) < 1e15 { return String(Int(x)) }
    return "\(x)"
}

// MARK: - Suggestions

/// The candidate nearest to `word` by case-insensitive edit distance (adjacent swaps count
/// one), if it is at most 2 edits away; ties go to the earlier candidate.
public func closestMatch(to word: String, among candidates: [String]) -> String? {
    var best: (candidate: String, distance: Int)?
    // Lengths 3 apart are more than 2 edits apart: a long key costs no table.
    let length = word.count
    for candidate in candidates where abs(candidate.count - length) <= 2 {
        let distance = editDistance(word.lowercased(), candidate.lowercased())
        if distance <= 2, distance < (best?.distance ?? .max) {
            best = (candidate, distance)
        }
    }
    return best?.candidate
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of
/// adjacent characters each cost 1 (Damerau, 1964).
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { table[i][0] = i }
    for j in 0...b.count { table[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
            }
        }
    }
    return table[a.count][b.count]
}
