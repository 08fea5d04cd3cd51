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
        validator.reportCrossTierProblems(root)
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
        "evaluation", "security", "simulation", "robustness", "adversaries", "tiers", "report",
    ]
    static let datasetKeys = ["name", "directory", "partition", "synthetic", "samplesPerClient"]
    static let partitionKeys = ["scheme", "alpha", "perClient", "tierAlpha"]
    static let syntheticKeys = ["alpha", "beta", "iid"]
    static let modelKeys = ["architecture", "strategy", "factoredMinimumWeights"]
    static let trainingKeys = [
        "localEpochs", "batchSize", "learningRate", "sampler", "groupLasso", "server",
        "momentum", "weightDecay", "fullBudgetProbability", "coverageDamping", "selfDistillation",
        "learningRateSchedule", "rankAwareServer", "budgetGrowth", "widthDistillation",
    ]
    static let samplerKeys = ["kind", "fractions", "fraction", "scope"]
    static let serverKeys = ["optimizer", "learningRate", "momentum", "beta1", "beta2", "epsilon"]
    static let shrinkingKeys = ["threshold", "period", "from", "until"]
    static let budgetGrowthKeys = ["caps", "until"]
    static let widthDistillationKeys = ["weight", "temperature"]
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

    mutating func scenario(from root: ScenarioNode?) -> Scenario? {
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

        let dataset = dataFileSection(top, clients: clients) ?? self.dataset(top, clients: clients)
        var samplesPerClient: Int?? = .some(nil)
        if let node = top.node("dataset")?["samplesPerClient"] {
            samplesPerClient = read(
                node, at: "dataset.samplesPerClient",
                .integer(atLeast: 1, atMost: Int(UInt32.max))
            ).map { .some($0) }
        }
        let model = self.model(
            top, datasetName: dataset?.name ?? top.node("dataset")?["name"]?.text,
            dataset: dataset)
        var training = self.training(top, strategy: model?.strategy)
        let shrinking = self.shrinking(top, strategy: model?.strategy)
        if model?.strategy == .fixedRank {
            applyFixedRank(
                training: &training, shrinking: shrinking,
                samplerGiven: top.node("training")?["sampler"].map { $0 != .null } ?? false)
        }
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
        let reportSettings = self.reportSettings(root)

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
        // Frozen convolutions against the model and the other tiers: reportCrossTierProblems.
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
        if model.architecture.usesBatchNormalization, evaluation.validationSamples == 0 {
            report(
                "evaluation.validationSamples",
                "must be > 0 with batch normalisation in model.architecture: the coordinator "
                    + "recomputes each tier's statistics on these held-out training images")
        }
        guard let samplesPerClient, let simulation, let robustness, let adversaries,
            let reportSettings
        else {
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
        scenario.report = reportSettings
        reportWidthStrategyProblems(scenario)
        return scenario
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

    mutating func fields(_ node: ScenarioNode, at path: String, known: [String]) -> Fields?
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

    mutating func requiredNode(_ fields: Fields, _ key: String) -> ScenarioNode? {
        guard let node = fields.node(key) else {
            report(fields.keyPath(key), "missing required key")
            return nil
        }
        return node
    }

    mutating func required<Value>(
        _ fields: Fields, _ key: String, _ field: Field<Value>
    ) -> Value? {
        requiredNode(fields, key).flatMap { read($0, at: fields.keyPath(key), field) }
    }

    /// The value of an optional key: its default when absent, `nil` when invalid.
    mutating func optional<Value>(
        _ fields: Fields, _ key: String, _ field: Field<Value>, default value: Value
    ) -> Value? {
        guard let node = fields.node(key) else { return value }
        return read(node, at: fields.keyPath(key), field)
    }

    mutating func read<Value>(
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
    mutating func rejectUnused(_ fields: Fields, _ keys: [String], because context: String)
    {
        for key in keys where fields.has(key) {
            report(fields.keyPath(key), "not used by \(context)")
        }
    }
}
