import Fleet
import Testing

@Suite("Width strategies in scenario files")
struct WidthStrategyScenarioTests {
    static let strategies = ["heteroFL", "fjord", "fedRolex", "smallModel"]

    @Test("A width strategy refuses every LoD-only setting, each at its key", arguments: strategies)
    func refusals(strategy: String) throws {
        let found = try problems(overriding: [
            ("model.strategy", strategy), ("model.factoredMinimumWeights", "1000"),
            ("training.sampler", "perLayer"), ("training.groupLasso", "0.001"),
            ("training.fullBudgetProbability", "0.5"), ("training.coverageDamping", "true"),
            ("training.rankAwareServer", "true"), ("training.selfDistillation", "true"),
            ("shrinking", "{threshold: 0.01}"), ("evaluation.validationSamples", "100"),
            ("evaluation.deploy", "bestValidated"),
        ])
        #expect(
            found.map(\.keyPath) == [
                "model.factoredMinimumWeights", "training.sampler", "training.groupLasso",
                "training.fullBudgetProbability", "training.coverageDamping",
                "training.rankAwareServer", "training.selfDistillation", "shrinking.threshold",
                "evaluation.deploy",
            ])
        #expect(found.allSatisfy { $0.reason.contains(strategy) }, "\(found)")
        let growth = try problems(overriding: [
            ("model.strategy", strategy), ("training.sampler", "none"),
            ("training.budgetGrowth", "{caps: [0.5], until: [2]}"),
        ])
        #expect(growth.map(\.keyPath) == ["training.budgetGrowth"])
        #expect(growth.first?.reason.contains("not allowed with \(strategy)") == true)
        let frozen = try problems(overriding: [
            ("model.strategy", strategy), ("training.sampler", "none"),
            ("tiers[0].freezeConvolutions", "true"),
        ])
        #expect(frozen.map(\.keyPath) == ["tiers[0].freezeConvolutions"])
        #expect(frozen.first?.reason.contains("only with orderedLoD") == true)
    }

    @Test("A width strategy takes median and trimmed-mean aggregation", arguments: strategies)
    func robustAggregation(strategy: String) throws {
        let rules: [[(keyPath: String, value: String)]] = [
            [("robustness.aggregation", "median")],
            [("robustness.aggregation", "trimmedMean"), ("robustness.trimFraction", "0.2")],
        ]
        for rule in rules {
            let scenario = try Scenario.parse(yaml: minimalYAML).overriding(
                [("model.strategy", strategy), ("training.sampler", "none")] + rule)
            #expect(scenario.robustness.aggregation.rawValue == rule[0].value)
        }
    }

    @Test("A width strategy defaults to no sampler and runs with momentum", arguments: strategies)
    func defaults(strategy: String) throws {
        let yaml = minimalYAML.replacingOccurrences(
            of: "strategy: orderedLoD", with: "strategy: \(strategy)")
        let scenario = try Scenario.parse(yaml: yaml).overriding([("training.momentum", "0.9")])
        #expect(scenario.training.sampler == .unsampled)
        #expect(scenario.model.strategy.isWidthSliced)
    }

    @Test(
        "smoke-NAME.yaml equals smoke-dense.yaml except name and strategy", arguments: strategies)
    func smokeTwins(strategy: String) throws {
        let twin = try shipped("smoke-\(strategy)")
        let expected = try shipped("smoke-dense").overriding([
            ("name", "smoke-\(strategy)"), ("model.strategy", strategy),
        ])
        #expect(twin == expected)
    }
}
