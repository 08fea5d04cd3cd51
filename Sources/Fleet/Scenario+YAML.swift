import Foundation

extension Scenario {
    /// Reads and validates the scenario file at `path`.
    ///
    /// - Throws: ``ScenarioError/unreadable(path:reason:)`` when the file cannot be read,
    ///   ``ScenarioError/syntax(path:line:column:reason:)`` for malformed YAML and
    ///   ``ScenarioError/invalid(path:problems:)`` with every schema problem.
    public static func load(path: String) throws(ScenarioError) -> Scenario {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .unreadable(path: path, reason: "no such file")
        }
        guard !isDirectory.boolValue else {
            throw .unreadable(path: path, reason: "is a directory")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(path: path, reason: "permission denied or read error")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .unreadable(path: path, reason: "not UTF-8 text")
        }
        return try parse(yaml: text, path: path)
    }

    /// Parses and validates scenario YAML; `path` names the source in errors.
    public static func parse(
        yaml: String, path: String = "<string>"
    ) throws(ScenarioError) -> Scenario {
        let root: ScenarioNode?
        do {
            root = try ScenarioNode.parse(yaml: yaml)
        } catch {
            throw .syntax(path: path, line: error.line, column: error.column, reason: error.reason)
        }
        return try validated(root, path: path)
    }

    static func validated(_ root: ScenarioNode?, path: String) throws(ScenarioError) -> Scenario {
        switch ScenarioValidator.validate(root) {
        case .success(let scenario): return scenario
        case .failure(let failure): throw .invalid(path: path, problems: failure.problems)
        }
    }

    /// The scenario as it runs, defaults filled in, in the layout of the shipped files.
    ///
    /// `Scenario.parse(yaml: s.yaml()) == s` for every valid `s`.
    public func yaml() -> String { node.emitted() }

    /// A copy with some keys replaced, validated again: `[("rounds", "2"),
    /// ("tiers[0].availability", "1"), ("dataset.partition", "{scheme: iid}")]`.
    ///
    /// Each value is YAML (a scalar or a flow collection); an empty value removes the key,
    /// so an optional key falls back to its default. Assignments apply in order.
    /// - Throws: ``ScenarioError/invalid(path:problems:)`` naming `source`, with a problem
    ///   for each bad key path or value and every schema problem of the result.
    public func overriding(
        _ assignments: [(keyPath: String, value: String)], source: String = "<overrides>"
    ) throws(ScenarioError) -> Scenario {
        var root = node
        var problems: [ScenarioProblem] = []
        for assignment in assignments {
            let value: ScenarioNode
            do {
                value = try ScenarioNode.parse(yaml: assignment.value) ?? .null
            } catch {
                problems.append(
                    ScenarioProblem(
                        keyPath: assignment.keyPath, reason: "value is not YAML: \(error.reason)"))
                continue
            }
            guard let components = KeyPathComponent.parse(assignment.keyPath) else {
                problems.append(
                    ScenarioProblem(
                        keyPath: assignment.keyPath,
                        reason: "not a key path (write keys joined by '.', indices as [i])"))
                continue
            }
            switch root.setting(value, at: components[...]) {
            case .success(let updated): root = updated
            case .failure(let problem):
                problems.append(
                    ScenarioProblem(keyPath: assignment.keyPath, reason: problem.reason))
            }
        }
        guard problems.isEmpty else { throw .invalid(path: source, problems: problems) }
        return try Self.validated(root, path: source)
    }
}

// MARK: - The scenario as a tree

extension Scenario {
    /// Every key, defaults included; small sections as one-line flow mappings.
    var node: ScenarioNode {
        var top: [ScenarioNode.Entry] = [
            .init(key: "name", value: .text(name)),
            .init(key: "seed", value: .scalar(String(seed), isPlain: true)),
            .init(key: "clients", value: .number(clients)),
            .init(key: "rounds", value: .number(rounds)),
            .init(key: "clientsPerRound", value: .number(clientsPerRound)),
            .init(key: "overSelection", value: .number(overSelection)),
            .init(key: "minimumUpdates", value: .number(minimumUpdates)),
            .init(key: "roundFailurePolicy", value: .text(roundFailurePolicy.rawValue)),
        ]
        if let deadlineSeconds {
            top.append(.init(key: "deadlineSeconds", value: .number(deadlineSeconds)))
        }
        top += [
            .init(key: "dataset", value: dataset.node(samplesPerClient: samplesPerClient)),
            .init(
                key: "model",
                value: .block(
                    [
                        ("architecture", model.architecture.node),
                        ("strategy", .text(model.strategy.rawValue)),
                    ]
                        + (model.factoredMinimumWeights > 0
                            ? [("factoredMinimumWeights", .number(model.factoredMinimumWeights))]
                            : []))),
            .init(key: "training", value: training.node),
            .init(
                key: "shrinking",
                value: .flow(
                    [
                        ("threshold", .number(shrinking.threshold)),
                        ("period", .number(shrinking.period)),
                    ] + (shrinking.from > 1 ? [("from", .number(shrinking.from))] : [])
                        + (shrinking.until.map { [("until", .number($0))] } ?? []))),
            .init(
                key: "evaluation",
                value: .flow(
                    [("period", .number(evaluation.period))]
                        + (evaluation.validationSamples > 0
                            ? [("validationSamples", .number(evaluation.validationSamples))] : [])
                        + (evaluation.deploy != .budget
                            ? [("deploy", .text(evaluation.deploy.rawValue))] : [])
                        + (evaluation.averageDecay > 0
                            ? [("averageDecay", .number(evaluation.averageDecay))] : [])
                        + (evaluation.deploySignificance > 0
                            ? [("deploySignificance", .number(evaluation.deploySignificance))]
                            : []))),
            .init(
                key: "security", value: .flow([("requireCurve", .boolean(security.requireCurve))])),
            .init(
                key: "simulation",
                value: .flow([("processPerClient", .boolean(simulation.processPerClient))])),
        ]
        // Written only when set, so the shipped scenarios read back as they were written.
        if robustness != Robustness() {
            top.append(
                .init(
                    key: "robustness",
                    value: .flow(
                        [("aggregation", .text(robustness.aggregation.rawValue))]
                            + (robustness.aggregation == .trimmedMean
                                ? [("trimFraction", .number(robustness.trimFraction))] : [])
                            + [
                                (
                                    "maximumUpdateNormRatio",
                                    .number(robustness.maximumUpdateNormRatio)
                                )
                            ])))
        }
        if let adversaries {
            top.append(
                .init(
                    key: "adversaries",
                    value: .flow([
                        ("fraction", .number(adversaries.fraction)),
                        ("attack", .text(adversaries.attack.rawValue)),
                        ("factor", .number(adversaries.factor)),
                    ])))
        }
        if let reportNode { top.append(.init(key: "report", value: reportNode)) }
        top.append(.init(key: "tiers", value: .sequence(tiers.map(\.node), isFlow: false)))
        return .mapping(top, isFlow: false)
    }
}

extension Scenario.Dataset {
    func node(samplesPerClient: Int?) -> ScenarioNode {
        guard let samplesPerClient, case .mapping(var entries, let isFlow) = node else {
            return node
        }
        entries.append(.init(key: "samplesPerClient", value: .number(samplesPerClient)))
        return .mapping(entries, isFlow: isFlow)
    }

    var node: ScenarioNode {
        switch self {
        case .fashionMNIST(let directory, let partition):
            return .block([
                ("name", .text(name)), ("directory", .text(directory)),
                ("partition", partition.node),
            ])
        case .cifar10(let directory, let partition):
            return .block([
                ("name", .text(name)), ("directory", .text(directory)),
                ("partition", partition.node),
            ])
        case .cifar100(let directory, let labels, let partition):
            return .block([
                ("name", .text(name)), ("directory", .text(directory)),
                ("labels", .text(labels.rawValue)), ("partition", partition.node),
            ])
        case .leaf(let train, let test, let featureShape, let classCount, let partition):
            return .block([
                ("name", .text(name)), ("train", .text(train)), ("test", .text(test)),
                ("shape", .sequence(featureShape.map { .number($0) }, isFlow: true)),
                ("classes", .number(classCount)), ("partition", partition.node),
            ])
        case .synthetic(let alpha, let beta):
            return .block([
                ("name", .text(name)),
                (
                    "synthetic",
                    .flow([
                        ("alpha", .number(alpha)), ("beta", .number(beta)),
                        ("iid", .boolean(false)),
                    ])
                ),
            ])
        case .syntheticIID:
            return .block([("name", .text(name)), ("synthetic", .flow([("iid", .boolean(true))]))])
        }
    }
}

extension Scenario.Partition {
    var node: ScenarioNode {
        switch self {
        case .iid: .flow([("scheme", .text("iid"))])
        case .dirichlet(let alpha):
            .flow([("scheme", .text("dirichlet")), ("alpha", .number(alpha))])
        case .shards(let perClient):
            .flow([("scheme", .text("shards")), ("perClient", .number(perClient))])
        case .tiered(let alpha, let tierAlpha):
            .flow([
                ("scheme", .text("tiered")), ("alpha", .number(alpha)),
                ("tierAlpha", .number(tierAlpha)),
            ])
        case .natural: .flow([("scheme", .text("natural"))])
        }
    }
}

extension Scenario.Training {
    var node: ScenarioNode {
        let samplerNode: ScenarioNode =
            switch sampler {
            case .perLayer, .acrossLayers, .unsampled: .text(sampler.name)
            case .sharedFraction(let fractions, let scope):
                .flow([
                    ("kind", .text(sampler.name)),
                    ("fractions", .sequence(fractions.map { .number($0) }, isFlow: true)),
                    ("scope", .text(scope.rawValue)),
                ])
            case .fixed(let fraction):
                .flow([("kind", .text(sampler.name)), ("fraction", .number(fraction))])
            }
        let serverNode: ScenarioNode =
            switch server {
            case .fedAvg(let learningRate):
                .flow([("optimizer", .text(server.name)), ("learningRate", .number(learningRate))])
            case .fedAvgM(let learningRate, let momentum):
                .flow([
                    ("optimizer", .text(server.name)), ("learningRate", .number(learningRate)),
                    ("momentum", .number(momentum)),
                ])
            case .fedAdam(let learningRate, let beta1, let beta2, let epsilon):
                .flow([
                    ("optimizer", .text(server.name)), ("learningRate", .number(learningRate)),
                    ("beta1", .number(beta1)), ("beta2", .number(beta2)),
                    ("epsilon", .number(epsilon)),
                ])
            }
        var optionalKeys: [(String, ScenarioNode)] = []
        if let budgetGrowth {
            optionalKeys.append(
                (
                    "budgetGrowth",
                    .flow([
                        ("caps", .sequence(budgetGrowth.caps.map { .number($0) }, isFlow: true)),
                        ("until", .sequence(budgetGrowth.until.map { .number($0) }, isFlow: true)),
                    ])
                ))
        }
        if let widthDistillation {
            optionalKeys.append(
                (
                    "widthDistillation",
                    .flow([
                        ("weight", .number(widthDistillation.weight)),
                        ("temperature", .number(widthDistillation.temperature)),
                    ])
                ))
        }
        return .block(
            [
                ("localEpochs", .number(localEpochs)), ("batchSize", .number(batchSize)),
                ("learningRate", .number(learningRate)), ("sampler", samplerNode),
                ("groupLasso", .number(groupLasso)), ("server", serverNode),
                ("momentum", .number(momentum)), ("weightDecay", .number(weightDecay)),
                ("fullBudgetProbability", .number(fullBudgetProbability)),
                ("coverageDamping", .boolean(coverageDamping)),
                ("selfDistillation", .boolean(selfDistillation)),
                ("learningRateSchedule", .text(learningRateSchedule.rawValue)),
                ("rankAwareServer", .boolean(rankAwareServer)),
            ] + optionalKeys)
    }
}

extension Scenario.Tier {
    var node: ScenarioNode {
        let population: (String, ScenarioNode) =
            switch self.population {
            case .share(let share): ("share", .number(share))
            case .count(let count): ("count", .number(count))
            }
        return .flow(
            [
                ("name", .text(name)), population, ("rankFraction", .number(rankFraction)),
                ("gflops", .number(gflops)), ("uplinkMbps", .number(uplinkMbps)),
                ("downlinkMbps", .number(downlinkMbps)), ("latencyMs", .number(latencyMs)),
                ("availability", .number(availability)),
            ] + (freezeConvolutions ? [("freezeConvolutions", .boolean(true))] : []))
    }
}

extension ScenarioNode {
    static func text(_ text: String) -> ScenarioNode {
        .scalar(text, isPlain: quoted(text) == text)
    }
    static func number(_ value: Int) -> ScenarioNode { .scalar(String(value), isPlain: true) }
    static func number(_ value: Double) -> ScenarioNode { .scalar(format(value), isPlain: true) }
    static func boolean(_ value: Bool) -> ScenarioNode { .scalar(String(value), isPlain: true) }

    static func block(_ pairs: [(String, ScenarioNode)]) -> ScenarioNode {
        .mapping(pairs.map { Entry(key: $0.0, value: $0.1) }, isFlow: false)
    }

    static func flow(_ pairs: [(String, ScenarioNode)]) -> ScenarioNode {
        .mapping(pairs.map { Entry(key: $0.0, value: $0.1) }, isFlow: true)
    }
}

// MARK: - Overrides

/// One step of a key path: a mapping key or a sequence index.
enum KeyPathComponent: Equatable {
    case key(String)
    case index(Int)

    /// `tiers[2].rankFraction` → key tiers, index 2, key rankFraction; `nil` if malformed.
    static func parse(_ keyPath: String) -> [KeyPathComponent]? {
        var components: [KeyPathComponent] = []
        for part in keyPath.split(separator: ".", omittingEmptySubsequences: false) {
            var rest = part[...]
            let key = rest.prefix { $0 != "[" }
            guard !key.isEmpty else { return nil }
            components.append(.key(String(key)))
            rest = rest.dropFirst(key.count)
            while !rest.isEmpty {
                guard rest.first == "[", let close = rest.firstIndex(of: "]"),
                    let index = Int(rest[rest.index(after: rest.startIndex)..<close]), index >= 0
                else { return nil }
                components.append(.index(index))
                rest = rest[rest.index(after: close)...]
            }
        }
        return components.isEmpty ? nil : components
    }
}

extension ScenarioNode {
    /// A copy with `value` at `path`; missing mapping keys are created.
    func setting(
        _ value: ScenarioNode, at path: ArraySlice<KeyPathComponent>
    ) -> Result<ScenarioNode, FieldProblem> {
        guard let first = path.first else { return .success(value) }
        let rest = path.dropFirst()
        switch (first, self) {
        case (.key(let key), .mapping(var entries, let isFlow)):
            if let position = entries.firstIndex(where: { $0.key == key }) {
                return entries[position].value.setting(value, at: rest).map {
                    entries[position].value = $0
                    return .mapping(entries, isFlow: isFlow)
                }
            }
            return ScenarioNode.mapping([], isFlow: true).setting(value, at: rest).map {
                entries.append(Entry(key: key, value: $0))
                return .mapping(entries, isFlow: isFlow)
            }
        case (.key, .null):
            return ScenarioNode.mapping([], isFlow: true).setting(value, at: path)
        case (.index(let index), .sequence(var items, let isFlow)):
            guard index < items.count else {
                return .failure(
                    .init(
                        reason:
                            "index \(index) is out of range: the sequence has \(items.count) elements"
                    ))
            }
            return items[index].setting(value, at: rest).map {
                items[index] = $0
                return .sequence(items, isFlow: isFlow)
            }
        case (.key(let key), _):
            return .failure(.init(reason: "cannot set key '\(key)' inside \(kindDescription)"))
        case (.index(let index), _):
            return .failure(.init(reason: "cannot index [\(index)] into \(kindDescription)"))
        }
    }
}

// MARK: - Codable

extension Scenario: Codable {
    /// Decodes any keyed format (JSON, property lists, YAML) through the same validator as
    /// ``parse(yaml:path:)``; every problem goes into one `DecodingError.dataCorrupted`.
    public init(from decoder: any Decoder) throws {
        let root = try ScenarioNode(from: decoder)
        switch ScenarioValidator.validate(root) {
        case .success(let scenario):
            self = scenario
        case .failure(let failure):
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: failure.problems.map(\.description).joined(separator: "\n")))
        }
    }

    /// Encodes the same keys and values as ``yaml()``.
    public func encode(to encoder: any Encoder) throws {
        try node.encode(to: encoder)
    }
}
