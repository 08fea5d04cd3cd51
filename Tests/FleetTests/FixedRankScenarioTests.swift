import Fleet
import Testing
import Vocabulary

@Suite("model.strategy fixedRank in scenario files")
struct FixedRankScenarioTests {
    @Test("fixedRank without a sampler trains the whole budget; neutral values are accepted")
    func defaultsToNoSampling() throws {
        let yaml = minimalYAML.replacingOccurrences(
            of: "strategy: orderedLoD", with: "strategy: fixedRank")
        let scenario = try Scenario.parse(yaml: yaml)
        #expect(scenario.model.strategy == .fixedRank)
        #expect(scenario.model.strategy.usesLoDFactors)
        #expect(scenario.training.sampler == .unsampled)
        #expect(scenario.training.groupLasso == 0 && scenario.training.budgetGrowth == nil)
        #expect(!scenario.shrinking.isEnabled)
        // Written out as it runs, and read back the same.
        #expect(scenario.yaml().contains("sampler: none"))
        #expect(try Scenario.parse(yaml: scenario.yaml()) == scenario)
        // Neutral values written out are accepted.
        let neutral = try scenario.overriding([
            ("training.sampler", "none"), ("training.groupLasso", "0"),
            ("training.fullBudgetProbability", "0"), ("training.coverageDamping", "false"),
            ("training.selfDistillation", "false"), ("shrinking.threshold", "0"),
        ])
        #expect(neutral == scenario)
    }

    @Test("fixedRank refuses every key that samples, orders, shrinks or grows ranks, by name")
    func refusesConflictingKeys() throws {
        let found = try problems(overriding: [
            ("model.strategy", "fixedRank"), ("training.sampler", "perLayer"),
            ("training.groupLasso", "0.001"), ("training.fullBudgetProbability", "0.5"),
            ("training.selfDistillation", "true"), ("training.coverageDamping", "true"),
            ("shrinking", "{threshold: 0.01}"),
        ])
        #expect(
            found.map(\.keyPath) == [
                "training.sampler", "training.groupLasso", "training.fullBudgetProbability",
                "training.selfDistillation", "training.coverageDamping", "shrinking.threshold",
            ])
        #expect(
            found.first?.reason
                == "must be none with fixedRank: with fixedRank every local step trains the "
                + "client's whole budget (no rank sampling, so no ordering)")
        #expect(
            try problems(overriding: [
                ("model.strategy", "fixedRank"), ("training.sampler", "none"),
                ("training.budgetGrowth", "{caps: [0.5], until: [2]}"),
            ]).map(\.description) == [
                "training.budgetGrowth: not allowed with fixedRank: each tier trains its own "
                    + "fixed budget from the first round"
            ])
        // A fixed-fraction sampler is sampling too. (A scenario overridden keeps the sampler
        // its file's strategy defaulted to, written out: `--set model.strategy=fixedRank`
        // needs `--set training.sampler=none` too, as denseFedAvg does.)
        #expect(
            try problems(overriding: [
                ("model.strategy", "fixedRank"),
                ("training.sampler", "{kind: fixed, fraction: 0.5}"),
            ]).map(\.keyPath) == ["training.sampler"])
    }

    @Test(
        "smoke.yaml with --set model.strategy=fixedRank names the three keys smoke-fixedRank.yaml leaves out"
    )
    func smokeNeedsItsTwin() throws {
        let smoke = try shipped("smoke")
        let found = problems { () throws(ScenarioError) in
            try smoke.overriding([("model.strategy", "fixedRank")])
        }
        #expect(
            found.map(\.keyPath) == [
                "training.sampler", "training.fullBudgetProbability", "training.coverageDamping",
            ])
        let twin = try shipped("smoke-fixedRank")
        #expect(twin.model.strategy == .fixedRank && twin.training.sampler == .unsampled)
        #expect(
            try smoke.overriding([
                ("name", "smoke-fixedRank"), ("model.strategy", "fixedRank"),
                ("training.sampler", ""), ("training.fullBudgetProbability", ""),
                ("training.coverageDamping", ""),
            ]) == twin)
    }

    @Test("scenario show: a fixedRank tier sends and receives its rank budget, as orderedLoD's")
    func tierBytesAreTheBudget() throws {
        let lod = try shipped("smoke")
        let fixed = try shipped("smoke-fixedRank")
        let lodReport = ScenarioReport(scenario: lod, layers: mlp)
        let report = ScenarioReport(scenario: fixed, layers: mlp)
        // p = 1/4 of 300, 100, 10: 75, 25, 3 components; p = 1: every one.
        #expect(report.tiers.map(\.budgets) == [[75, 25, 3], [300, 100, 10]])
        #expect(report.tiers.map(\.traffic) == lodReport.tiers.map(\.traffic))
        // k·(m + n) + bias per layer, float32 each way.
        let low = 75 * (300 + 784) + 300 + 25 * (100 + 300) + 100 + 3 * (10 + 100) + 10
        #expect(report.tiers[0].traffic.parameters == low)
        #expect(report.tiers[0].traffic.downloadBytes == 4 * low)
        #expect(report.tiers[0].traffic.bytesPerRound < report.dense.bytesPerRound)
        #expect(report.cappedPhases.isEmpty)
    }
}
