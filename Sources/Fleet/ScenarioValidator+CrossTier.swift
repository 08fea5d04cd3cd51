/// The rules that weigh the tiers against each other and against the model, read from the
/// document directly, so that they are reported with every other problem of the file instead
/// of only once the rest is fixed (the main pass stops short of them when any value they
/// compare, or any other key, is invalid). A problem the main pass already reported is not
/// repeated.
extension ScenarioValidator {
    static func sharesSumReason(_ sum: Double) -> String {
        "shares sum to \(format(sum)), expected 1"
    }

    static func countsSumReason(_ sum: Int, clients: Int) -> String {
        "counts sum to \(sum), expected clients (\(clients))"
    }

    mutating func reportCrossTierProblems(_ root: ScenarioNode?) {
        guard case .mapping(let top, _)? = root,
            case .sequence(let items, _)? = top.first(where: { $0.key == "tiers" })?.value,
            !items.isEmpty
        else { return }
        func value<Value>(_ node: ScenarioNode?, _ field: Field<Value>) -> Value? {
            guard let node, node != .null, case .success(let value) = field.read(node) else {
                return nil
            }
            return value
        }
        let tiers = items.map { item -> [ScenarioNode.Entry]? in
            if case .mapping(let entries, _) = item { entries } else { nil }
        }
        func entry(_ tier: [ScenarioNode.Entry]?, _ key: String) -> ScenarioNode? {
            tier?.first { $0.key == key }?.value
        }
        var found: [ScenarioProblem] = []

        // Frozen convolutions need LoD, a model with convolutions, and a tier that trains them.
        let model = top.first { $0.key == "model" }?.value
        let strategy = model?["strategy"]?.text.flatMap(Scenario.Strategy.init(rawValue:))
        let architecture = model?["architecture"]?.text.flatMap(
            Scenario.Architecture.init(rawValue:))
        let freezing = tiers.indices.filter {
            value(entry(tiers[$0], "freezeConvolutions"), .boolean) == true
        }
        if let first = freezing.first {
            let key = "tiers[\(first)].freezeConvolutions"
            if strategy == .denseFedAvg {
                found.append(
                    ScenarioProblem(
                        keyPath: key,
                        reason:
                            "only with orderedLoD: dense FedAvg trains the whole model on every client"
                    ))
            } else if let strategy, strategy.isWidthSliced {
                found.append(
                    ScenarioProblem(
                        keyPath: key,
                        reason: "only with orderedLoD: \(strategy.rawValue) trains every layer "
                            + "of its width slice"
                    ))
            } else if let described = model?["architecture"], described.text == nil,
                described != .null
            {
                found.append(
                    ScenarioProblem(
                        keyPath: key,
                        reason:
                            "model.architecture is a layer description: frozen convolutions are supported for lenet only"
                    ))
            } else if let architecture, architecture != .leNet {
                // The clients' frozen prefix (the layers through the last convolution) is
                // measured and budgeted for LeNet only.
                let convolutional = architecture != .mlp && architecture != .logistic
                found.append(
                    ScenarioProblem(
                        keyPath: key,
                        reason: convolutional
                            ? "model.architecture \(architecture.rawValue): frozen convolutions are supported for lenet only"
                            : "model.architecture \(architecture.rawValue) has no convolutions to freeze"
                    ))
            } else if freezing.count == items.count {
                found.append(
                    ScenarioProblem(
                        keyPath: key,
                        reason: "every tier freezes the convolutions, so no client would train them"
                    ))
            }
        }

        // Shares sum to 1, counts to the fleet: checked on every tier whose population reads,
        // even when another key of some tier is wrong.
        let shares = tiers.map { value(entry($0, "share"), .number(.unitOpenClosed)) }
        let counts = tiers.map { value(entry($0, "count"), .count) }
        let clients = value(top.first { $0.key == "clients" }?.value, .count)
        if shares.allSatisfy({ $0 != nil }), counts.allSatisfy({ $0 == nil }) {
            let sum = shares.compactMap { $0 }.reduce(0, +)
            if abs(sum - 1) > Self.shareTolerance {
                found.append(ScenarioProblem(keyPath: "tiers", reason: Self.sharesSumReason(sum)))
            }
        } else if counts.allSatisfy({ $0 != nil }), shares.allSatisfy({ $0 == nil }),
            let clients, counts.compactMap({ $0 }).reduce(0, +) != clients
        {
            let sum = counts.compactMap { $0 }.reduce(0, +)
            found.append(
                ScenarioProblem(
                    keyPath: "tiers", reason: Self.countsSumReason(sum, clients: clients)))
        }
        for problem in found where !problems.contains(problem) {
            report(problem.keyPath, problem.reason)
        }
    }
}
