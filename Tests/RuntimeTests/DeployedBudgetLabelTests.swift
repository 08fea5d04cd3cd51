import Fleet
import Foundation
import Runtime
import Testing

@Suite("The deployed budget's label says what a tier runs", .serialized)
struct DeployedBudgetLabelTests {
    static let yaml = """
        name: grow
        seed: 5
        clients: 4
        rounds: 2
        clientsPerRound: 2
        dataset: {name: fashion-mnist, partition: {scheme: iid}, samplesPerClient: 64}
        model: {architecture: mlp, strategy: orderedLoD}
        training:
          localEpochs: 1
          batchSize: 32
          learningRate: 0.05
          budgetGrowth: {caps: [0.25], until: [3]}
        evaluation: {period: 1, validationSamples: 2000, deploy: bestValidated}
        tiers:
          - {name: low, count: 2, rankFraction: 0.5, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
          - {name: full, count: 2, rankFraction: 1.0, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
        """

    @Test("A tier under a growth cap below its own fraction is labelled with the cap")
    func labels() throws {
        let scenario = try Scenario.parse(yaml: Self.yaml)
        #expect(scenario.deployedBudgetLabel("full", round: 1) == "full@1/4")
        #expect(scenario.deployedBudgetLabel("full", round: 3) == "full@1/4")
        #expect(scenario.deployedBudgetLabel("full", round: 4) == "full")
        #expect(scenario.deployedBudgetLabel("low", round: 1) == "low@1/4")
        // A tier whose own fraction is within the cap runs its own budget.
        let small = try scenario.overriding([("tiers[0].rankFraction", "0.125")])
        #expect(small.deployedBudgetLabel("low", round: 1) == "low")
        let odd = try scenario.overriding([("training.budgetGrowth", "{caps: [0.3], until: [3]}")])
        #expect(odd.deployedBudgetLabel("full", round: 2) == "full@0.3")
    }

    @Test("A run that ends during budget growth: the summary says the full tier runs the cap")
    func summaryDuringGrowth() throws {
        let scenario = try Scenario.parse(yaml: Self.yaml)
        let result = try runInProcess(scenario, startOrder: Array(0..<4), delayMicroseconds: [0])
        let deployed = Dictionary(
            uniqueKeysWithValues: result.summary.tiers.map { ($0.tier, $0.deployedBudget) })
        // Both tiers' budgets are the same 1/4 prefix: each keeps its own, cut to the cap,
        // and says so instead of "full".
        #expect(deployed["full"] == "full@1/4")
        #expect(deployed["low"] == "low@1/4")
    }
}
