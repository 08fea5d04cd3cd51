import Fleet
import Foundation
import Testing

/// A small valid scenario; variants below break it on purpose.
let minimalYAML = """
    name: tiny
    seed: 7
    clients: 10
    rounds: 3
    clientsPerRound: 4
    dataset:
      name: fashion-mnist
      partition: {scheme: iid}
    model: {architecture: mlp, strategy: orderedLoD}
    training: {localEpochs: 1, batchSize: 16, learningRate: 0.1}
    tiers:
      - {name: small, share: 0.5, rankFraction: 0.25, gflops: 1, uplinkMbps: 1, downlinkMbps: 2}
      - {name: large, share: 0.5, rankFraction: 1, gflops: 4, uplinkMbps: 4, downlinkMbps: 8}

    """

/// The problems `body` throws, or an issue if it does not throw `.invalid`.
func problems(_ body: () throws(ScenarioError) -> Scenario) -> [ScenarioProblem] {
    do {
        let scenario = try body()
        Issue.record("expected problems, got a valid scenario \(scenario.name)")
    } catch {
        if case .invalid(_, let problems) = error { return problems }
        Issue.record("expected .invalid, got \(error)")
    }
    return []
}

func problems(in yaml: String) -> [ScenarioProblem] {
    problems { () throws(ScenarioError) in try Scenario.parse(yaml: yaml, path: "broken.yaml") }
}

func problems(
    overriding assignments: [(keyPath: String, value: String)]
) throws -> [ScenarioProblem] {
    let base = try Scenario.parse(yaml: minimalYAML)
    return problems { () throws(ScenarioError) in try base.overriding(assignments) }
}

@Suite("Scenario validation")
struct ScenarioValidationTests {
    @Test("Optional keys take their documented defaults")
    func defaults() throws {
        let scenario = try Scenario.parse(yaml: minimalYAML)
        #expect(scenario.overSelection == 1)
        #expect(scenario.minimumUpdates == 1)
        #expect(scenario.roundFailurePolicy == .skip)
        #expect(scenario.deadlineSeconds == nil)
        #expect(
            scenario.dataset
                == .fashionMNIST(directory: "/usr/share/datasets/fashion-mnist", partition: .iid))
        #expect(scenario.training.sampler == .perLayer)
        #expect(scenario.training.groupLasso == 0)
        #expect(scenario.training.server == .fedAvg(learningRate: 1))
        #expect(scenario.shrinking.period == 10)
        #expect(scenario.shrinking.threshold == 0)
        #expect(scenario.evaluation.period == 10)
        #expect(scenario.security.requireCurve == false)
        #expect(scenario.tiers[0].latencyMs == 0)
        #expect(scenario.tiers[0].availability == 1)
        #expect(scenario.tiers[0].population == .share(0.5))
    }

    @Test("Out-of-range values: every one reported at its key path, in schema order")
    func outOfRange() {
        let found = problems(
            in: """
                name: ranges
                seed: -1
                clients: 10
                rounds: 0
                clientsPerRound: 12
                overSelection: 0.5
                minimumUpdates: 0
                roundFailurePolicy: retry
                deadlineSeconds: -5
                dataset:
                  name: fashion-mnist
                  partition: {scheme: dirichlet, alpha: 0}
                model: {architecture: lenet, strategy: orderedLoD}
                training: {localEpochs: 0, batchSize: 16, learningRate: -0.1, groupLasso: -1}
                shrinking: {threshold: 1.5, period: 0}
                evaluation: {period: 0}
                tiers:
                  - {name: a, share: 0.5, rankFraction: 0, gflops: 0, uplinkMbps: -1, downlinkMbps: 2, latencyMs: -3, availability: 1.2}
                  - {name: b, share: 0.5, rankFraction: 1.5, gflops: 4, uplinkMbps: 4, downlinkMbps: 0, availability: -0.1}
                """)
        #expect(
            found.map(\.keyPath) == [
                "seed", "rounds", "overSelection", "minimumUpdates", "deadlineSeconds",
                "clientsPerRound",
                "dataset.partition.alpha", "training.localEpochs", "training.learningRate",
                "training.groupLasso", "shrinking.threshold", "shrinking.period",
                "evaluation.period",
                "tiers[0].rankFraction", "tiers[0].gflops", "tiers[0].uplinkMbps",
                "tiers[0].latencyMs",
                "tiers[0].availability", "tiers[1].rankFraction", "tiers[1].downlinkMbps",
                "tiers[1].availability",
            ])
        #expect(found.allSatisfy { $0.reason.hasPrefix("out of range") })
        let reasons = Dictionary(
            found.map { ($0.keyPath, $0.reason) }, uniquingKeysWith: { a, _ in a })
        #expect(reasons["tiers[1].rankFraction"] == "out of range: must be in (0, 1], found 1.5")
        #expect(reasons["tiers[0].availability"] == "out of range: must be in [0, 1], found 1.2")
        #expect(
            reasons["tiers[0].gflops"]
                == "out of range: must be in [0.001, 1000000000], found 0")
        #expect(
            reasons["clientsPerRound"] == "out of range: must be at most clients (10), found 12")
        #expect(reasons["shrinking.threshold"] == "out of range: must be in [0, 1), found 1.5")
        #expect(reasons["rounds"] == "out of range: must be at least 1, found 0")
    }

    @Test("Missing keys, wrong types, unknown keys, duplicates and misplaced sections together")
    func structure() {
        let found = problems(
            in: """
                colour: blue
                name: structure
                seed: 1
                clients: many
                clientsPerRound: "4"
                dataset:
                  name: synthetic
                  partition: {scheme: iid}
                  synthetic: {alpha: 1}
                model: {architecture: lenet}
                training: {localEpochs: 1, batchSize: 3.5, learningRate: 0.1, sampler: perlayer}
                tiers:
                  - {name: a, share: 0.5, rankFracton: 0.5, gflops: 1, uplinkMbps: 1, downlinkMbps: 2}
                  - {name: a, share: 0.5, rankFraction: 1, gflops: 4, uplinkMbps: 4, downlinkMbps: 8}
                  - fast
                """)
        #expect(
            found.map(\.keyPath) == [
                "colour", "clients", "rounds", "clientsPerRound", "dataset.partition",
                "dataset.synthetic.beta", "model.strategy", "model.architecture",
                "training.batchSize",
                "training.sampler", "tiers[0].rankFracton", "tiers[0].rankFraction",
                "tiers[1].name",
                "tiers[2]",
            ])
        let reasons = Dictionary(
            found.map { ($0.keyPath, $0.reason) }, uniquingKeysWith: { a, _ in a })
        #expect(
            reasons["colour"]?.hasPrefix("unknown key; expected one of name, seed, clients") == true
        )
        #expect(reasons["clients"] == "wrong type: expected an integer, found 'many'")
        #expect(reasons["rounds"] == "missing required key")
        #expect(
            reasons["clientsPerRound"] == "wrong type: expected an integer, found the string \"4\"")
        #expect(
            reasons["dataset.partition"]
                == "not allowed for synthetic data: each client is one generated device")
        #expect(reasons["model.architecture"]?.hasPrefix("lenet needs 28×28 images") == true)
        #expect(reasons["training.batchSize"] == "wrong type: expected an integer, found '3.5'")
        #expect(reasons["training.sampler"]?.hasSuffix("(did you mean 'perLayer'?)") == true)
        #expect(reasons["tiers[0].rankFracton"] == "unknown key; did you mean 'rankFraction'?")
        #expect(reasons["tiers[1].name"] == "duplicate tier name 'a' (first used by tiers[0])")
        #expect(reasons["tiers[2]"] == "wrong type: expected a mapping, found 'fast'")
    }

    @Test(
        "Tier populations: sums, mixing, both, neither, empty tiers",
        arguments: [
            (
                "- {name: a, share: 0.5, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}\n"
                    + "- {name: b, share: 0.4, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}",
                [ScenarioProblem(keyPath: "tiers", reason: "shares sum to 0.9, expected 1")]
            ),
            (
                "- {name: a, count: 3, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}\n"
                    + "- {name: b, count: 4, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}",
                [
                    ScenarioProblem(
                        keyPath: "tiers", reason: "counts sum to 7, expected clients (10)")
                ]
            ),
            (
                "- {name: a, share: 0.5, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}\n"
                    + "- {name: b, count: 5, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}",
                [
                    ScenarioProblem(
                        keyPath: "tiers",
                        reason:
                            "mixes share (tiers[0]) and count (tiers[1]); use one of them for every tier"
                    )
                ]
            ),
            (
                "- {name: a, share: 0.5, count: 5, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}\n"
                    + "- {name: b, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}",
                [
                    ScenarioProblem(
                        keyPath: "tiers[0]", reason: "has both share and count; give one"),
                    ScenarioProblem(
                        keyPath: "tiers[1]", reason: "missing share or count (give one)"),
                ]
            ),
            (
                "- {name: a, share: 0.98, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}\n"
                    + "- {name: b, share: 0.02, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}",
                [
                    ScenarioProblem(
                        keyPath: "tiers[1].share", reason: "0.02 of 10 clients rounds to no client")
                ]
            ),
            ("[]", [ScenarioProblem(keyPath: "tiers", reason: "must list at least one tier")]),
            (
                "{name: a}",
                [
                    ScenarioProblem(
                        keyPath: "tiers",
                        reason: "wrong type: expected a sequence of tiers, found a mapping")
                ]
            ),
        ])
    func tierPopulations(tiers: String, expected: [ScenarioProblem]) {
        let yaml =
            minimalYAML.components(separatedBy: "tiers:\n")[0] + "tiers:\n"
            + tiers.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n"
        #expect(problems(in: yaml) == expected)
    }

    @Test("Shares within 1e-6 of 1 are accepted")
    func shareTolerance() throws {
        let yaml = minimalYAML.replacingOccurrences(
            of: "share: 0.5, rankFraction: 1,", with: "share: 0.5000005, rankFraction: 1,")
        #expect(try Scenario.parse(yaml: yaml).clientsPerTier == [5, 5])
    }

    @Test("denseFedAvg refuses rank sampling, group lasso, shrinking and partly dense models")
    func denseRestrictions() throws {
        let found = try problems(overriding: [
            ("model.strategy", "denseFedAvg"), ("model.factoredMinimumWeights", "1000"),
            ("training.sampler", "perLayer"), ("training.groupLasso", "0.001"),
            ("shrinking", "{threshold: 0.01}"),
        ])
        #expect(
            found.map(\.keyPath) == [
                "model.factoredMinimumWeights", "training.sampler", "training.groupLasso",
                "shrinking.threshold",
            ])
        // Without an explicit sampler, denseFedAvg defaults to none.
        let yaml = minimalYAML.replacingOccurrences(
            of: "strategy: orderedLoD", with: "strategy: denseFedAvg")
        #expect(try Scenario.parse(yaml: yaml).training.sampler == .unsampled)
    }

    @Test(
        "Sampler and server variants",
        arguments: [
            ("training.sampler", "fixed", "training.sampler.fraction: missing required key"),
            (
                "training.sampler", "{kind: perLayer, fraction: 0.5}",
                "training.sampler.fraction: not used by sampler perLayer"
            ),
            (
                "training.sampler", "{kind: sharedFraction, fractions: [0.5, 2]}",
                "training.sampler.fractions: element 1: out of range: must be in (0, 1], found 2"
            ),
            (
                "training.sampler", "{kind: sharedFraction, fractions: []}",
                "training.sampler.fractions: must list at least one fraction"
            ),
            (
                "training.sampler", "{kind: sharedFraction, scope: tier}",
                "training.sampler.scope: unknown value 'tier'; expected one of budget, model"
            ),
            (
                "training.sampler", "{kind: fixed, fraction: 0.5, scope: model}",
                "training.sampler.scope: not used by sampler fixed"
            ),
            (
                "dataset.partition", "{scheme: tiered, alpha: 0.5}",
                "dataset.partition.tierAlpha: missing required key"
            ),
            (
                "dataset.partition", "{scheme: dirichlet, alpha: 0.5, tierAlpha: 1}",
                "dataset.partition.tierAlpha: not used by scheme dirichlet"
            ),
            (
                "dataset.partition", "{scheme: tiered, alpha: 0.5, tierAlpha: 0}",
                "dataset.partition.tierAlpha: out of range: must be greater than 0, found 0"
            ),
            (
                "training.server", "{optimizer: fedAdam}",
                "training.server.learningRate: missing required key"
            ),
            (
                "training.server", "{optimizer: fedAvg, momentum: 0.9}",
                "training.server.momentum: not used by optimizer fedAvg"
            ),
            (
                "training.server", "{optimizer: fedAvgM, momentum: 1}",
                "training.server.momentum: out of range: must be in [0, 1), found 1"
            ),
            (
                "training.server", "fedAvg",
                "training.server: wrong type: expected a mapping, found 'fedAvg'"
            ),
            ("dataset.partition", "dirichlet", "dataset.partition.alpha: missing required key"),
            (
                "dataset.partition", "{scheme: iid, alpha: 1}",
                "dataset.partition.alpha: not used by scheme iid"
            ),
            (
                "dataset.partition", "{scheme: shards, perClient: 7000}",
                "dataset.partition.perClient: out of range: 10 clients × 7000 shards exceed the 60000 training images"
            ),
            (
                "dataset.partition", "shard",
                "dataset.partition: unknown value 'shard'; expected one of iid, dirichlet, shards, "
                    + "tiered (did you mean 'shards'?)"
            ),
            (
                "dataset.synthetic", "{alpha: 1, beta: 1}",
                "dataset.synthetic: only allowed with name: synthetic"
            ),
            (
                "overSelection", "3",
                "overSelection: out of range: selects ceil(4 × 3) = 12 clients per round but the fleet has 10"
            ),
            (
                "minimumUpdates", "5",
                "minimumUpdates: out of range: must be at most clientsPerRound (4), found 5"
            ),
            (
                "roundFailurePolicy", "retyr",
                "roundFailurePolicy: unknown value 'retyr'; expected one of retry, skip, abort (did you mean 'retry'?)"
            ),
            (
                "security.requireCurve", "yes",
                "security.requireCurve: wrong type: expected true or false, found 'yes'"
            ),
            (
                "name", "my run",
                "name: invalid name \"my run\": use letters, digits, '.', '_' and '-'"
            ),
            ("clients", "1e3", "clients: wrong type: expected an integer, found '1e3'"),
            (
                "training.learningRate", ".nan",
                "training.learningRate: wrong type: expected a number, found '.nan'"
            ),
        ])
    func variants(keyPath: String, value: String, expected: String) throws {
        let found = try problems(overriding: [(keyPath, value)])
        #expect(found.map(\.description) == [expected])
    }

    @Test("Valid sampler and server forms read as the documented values")
    func validVariants() throws {
        let base = try Scenario.parse(yaml: minimalYAML)
        #expect(
            try base.overriding([("training.sampler", "{kind: fixed, fraction: 0.5}")]).training
                .sampler == .fixed(fraction: 0.5))
        #expect(
            try base.overriding([("training.sampler", "sharedFraction")]).training.sampler
                == .sharedFraction(fractions: [0.25, 1]))
        #expect(
            try base.overriding([("training.sampler", "{kind: sharedFraction, scope: model}")])
                .training.sampler == .sharedFraction(fractions: [0.25, 1], scope: .model))
        #expect(
            try base.overriding([("training.sampler", "acrossLayers")]).training.sampler
                == .acrossLayers)
        #expect(
            try base.overriding([("training.server", "{optimizer: fedAdam, learningRate: 0.01}")])
                .training.server
                == .fedAdam(learningRate: 0.01, beta1: 0.9, beta2: 0.99, epsilon: 0.001))
        #expect(
            try base.overriding([("dataset.partition", "{scheme: shards}")]).dataset
                == .fashionMNIST(
                    directory: "/usr/share/datasets/fashion-mnist", partition: .shards(perClient: 2)
                ))
        let synthetic = try base.overriding([
            ("dataset", "{name: synthetic, synthetic: {iid: true}}"),
            ("model.architecture", "logistic"),
        ])
        #expect(synthetic.dataset == .syntheticIID)
        #expect(
            try problems(overriding: [
                ("dataset", "{name: synthetic, synthetic: {iid: true, alpha: 1}}"),
                ("model.architecture", "logistic"),
            ]).map(\.description) == ["dataset.synthetic.alpha: not used by iid: true"])
    }

    @Test("Budget growth and a shrinking start: read as written, bad ones named by key")
    func budgetGrowth() throws {
        let base = try Scenario.parse(yaml: minimalYAML).overriding([("rounds", "100")])
        let grown = try base.overriding([
            ("training.budgetGrowth", "{caps: [0.125, 0.5], until: [20, 40]}"),
            ("shrinking", "{threshold: 0.03, from: 50}"),
        ])
        let growth = try #require(grown.training.budgetGrowth)
        #expect(growth == Scenario.BudgetGrowth(caps: [0.125, 0.5], until: [20, 40]))
        #expect(
            [1, 20, 21, 40, 41, 100].map(growth.cap(atRound:)) == [0.125, 0.125, 0.5, 0.5, 1, 1])
        #expect(grown.shrinking.from == 50)
        #expect(
            [40, 50, 60, 65].map { grown.shrinking.shrinks(atRound: $0, lastRound: 100) }
                == [false, true, true, false])
        #expect(base.training.budgetGrowth == nil && base.shrinking.from == 1)
        func reasons(_ assignments: [(keyPath: String, value: String)]) throws -> [String] {
            let found = problems { () throws(ScenarioError) in try base.overriding(assignments) }
            return found.map(\.description)
        }
        #expect(
            try reasons([("training.budgetGrowth", "{caps: [0.5, 0.25], until: [10]}")]) == [
                "training.budgetGrowth.caps: must increase",
                "training.budgetGrowth.until: must list one last round per cap (2), found 1",
            ])
        #expect(
            try reasons([("training.budgetGrowth", "{caps: [1], until: [100]}")]) == [
                "training.budgetGrowth.caps: every cap must be below 1 (1 is no cap)"
            ])
        // A run shorter than the growth (a quick `--rounds 5`) stays capped throughout.
        let short = try base.overriding([
            ("rounds", "5"), ("training.budgetGrowth", "{caps: [0.25], until: [100]}"),
        ])
        #expect(short.training.budgetGrowth?.cap(atRound: 5) == 0.25)
        #expect(
            try reasons([("training.budgetGrowth", "{caps: [0.25]}")]) == [
                "training.budgetGrowth.until: missing required key"
            ])
        #expect(
            try reasons([
                ("training.budgetGrowth", "{caps: [0.25], until: [30]}"),
                ("shrinking", "{threshold: 0.03, from: 30}"),
            ]) == [
                "shrinking.from: must come after training.budgetGrowth's last capped round 30 (found 30): components opened at zero would be cut before they train"
            ])
        #expect(
            try reasons([("shrinking", "{threshold: 0.03, from: 30, until: 20}")]) == [
                "shrinking.from: round 30 comes after shrinking.until (20)"
            ])
        #expect(
            try reasons([
                ("model.strategy", "denseFedAvg"), ("training.sampler", "none"),
                ("training.budgetGrowth", "{caps: [0.25], until: [30]}"),
            ]) == [
                "training.budgetGrowth: not allowed with denseFedAvg: the dense model has no rank budgets"
            ])
    }

    @Test("Validation set and deployment: read as written, impossible ones named by key")
    func validationAndDeployment() throws {
        let base = try Scenario.parse(yaml: minimalYAML)
        #expect(base.evaluation == Scenario.Evaluation(period: 10))
        let held = try base.overriding([
            ("evaluation", "{period: 5, validationSamples: 5000, deploy: bestValidated}")
        ])
        #expect(
            held.evaluation
                == Scenario.Evaluation(period: 5, validationSamples: 5000, deploy: .bestValidated))
        #expect(try Scenario.parse(yaml: held.yaml()) == held)
        func reasons(_ assignments: [(keyPath: String, value: String)]) throws -> [String] {
            let found = problems { () throws(ScenarioError) in try base.overriding(assignments) }
            return found.map(\.description)
        }
        #expect(
            try reasons([("evaluation.deploy", "bestValidated")]) == [
                "evaluation.deploy: bestValidated needs evaluation.validationSamples > 0: it judges the tier budgets on the coordinator's validation set, never on the test set"
            ])
        #expect(
            try reasons([("evaluation.validationSamples", "59995")]) == [
                "evaluation.validationSamples: out of range: 59995 held out leave 5 training images for 10 clients"
            ])
        #expect(
            try reasons([
                ("dataset.partition", "{scheme: shards, perClient: 2}"),
                ("evaluation.validationSamples", "59990"),
            ]) == [
                "evaluation.validationSamples: out of range: 59990 held out leave too few training images for 10 clients × 2 shards"
            ])
        #expect(
            try reasons([
                ("model.strategy", "denseFedAvg"), ("training.sampler", "none"),
                ("evaluation", "{validationSamples: 100, deploy: bestValidated}"),
            ]) == [
                "evaluation.deploy: bestValidated is not allowed with denseFedAvg: the dense model has one budget"
            ])
        #expect(
            try reasons([
                ("dataset", "{name: synthetic, synthetic: {alpha: 1, beta: 1}}"),
                ("model.architecture", "logistic"), ("evaluation.validationSamples", "100"),
            ]) == [
                "evaluation.validationSamples: only for fashion-mnist (a held-out part of its training split); synthetic data has no shared training split"
            ])
        #expect(try reasons([("evaluation.deploy", "best")]).count == 1)
        let averaging = try base.overriding([("evaluation.averageDecay", "0.8")])
        #expect(averaging.evaluation == Scenario.Evaluation(period: 10, averageDecay: 0.8))
        #expect(try Scenario.parse(yaml: averaging.yaml()) == averaging)
        #expect(
            try reasons([("evaluation.averageDecay", "1")]) == [
                "evaluation.averageDecay: out of range: must be in [0, 1), found 1"
            ])
        #expect(try reasons([("evaluation.averageDecay", "-0.1")]).count == 1)
        let evidence = try held.overriding([("evaluation.deploySignificance", "2")])
        #expect(evidence.evaluation.deploySignificance == 2)
        #expect(try Scenario.parse(yaml: evidence.yaml()) == evidence)
        #expect(
            try reasons([("evaluation.deploySignificance", "2")]) == [
                "evaluation.deploySignificance: only with evaluation.deploy: bestValidated (it weighs one tier budget against another on the validation set)"
            ])
        #expect(try reasons([("evaluation.deploySignificance", "-1")]).count == 1)
        // The dense twin may hold the same validation set out (same client data).
        let dense = try base.overriding([
            ("model.strategy", "denseFedAvg"), ("training.sampler", "none"),
            ("evaluation.validationSamples", "100"),
        ])
        #expect(dense.evaluation.validationSamples == 100)
    }

    @Test(
        "freezeConvolutions: read per tier, round-trips; refused where there is nothing to freeze")
    func frozenConvolutions() throws {
        let base = try Scenario.parse(yaml: minimalYAML).overriding([
            ("model.architecture", "lenet")
        ])
        #expect(base.tiers.map(\.freezeConvolutions) == [false, false])
        let frozen = try base.overriding([("tiers[0].freezeConvolutions", "true")])
        #expect(frozen.tiers.map(\.freezeConvolutions) == [true, false])
        #expect(try Scenario.parse(yaml: frozen.yaml()) == frozen)
        func reasons(_ assignments: [(keyPath: String, value: String)]) throws -> [String] {
            let found = problems { () throws(ScenarioError) in try base.overriding(assignments) }
            return found.map(\.description)
        }
        #expect(
            try reasons([("tiers[0].freezeConvolutions", "true"), ("model.architecture", "mlp")])
                == [
                    "tiers[0].freezeConvolutions: model.architecture mlp has no convolutions to freeze"
                ])
        #expect(
            try reasons([
                ("tiers[1].freezeConvolutions", "true"), ("model.strategy", "denseFedAvg"),
                ("training.sampler", "none"),
            ]) == [
                "tiers[1].freezeConvolutions: only with orderedLoD: dense FedAvg trains the whole model on every client"
            ])
        #expect(
            try reasons([
                ("tiers[0].freezeConvolutions", "true"), ("tiers[1].freezeConvolutions", "true"),
            ]) == [
                "tiers[0].freezeConvolutions: every tier freezes the convolutions, so no client would train them"
            ])
        #expect(try reasons([("tiers[0].freezeConvolutions", "1")]).count == 1)
    }
}
