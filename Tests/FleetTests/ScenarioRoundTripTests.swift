import Fleet
import Foundation
import Testing

@Suite("yaml(), overrides and Codable")
struct ScenarioRoundTripTests {
    /// Scenarios that exercise every enum case and optional key.
    static let variants: [[(keyPath: String, value: String)]] = [
        [],
        [
            ("deadlineSeconds", "42.5"), ("overSelection", "1.3"), ("minimumUpdates", "3"),
            ("roundFailurePolicy", "abort"),
        ],
        [
            ("training.sampler", "{kind: fixed, fraction: 0.3}"),
            ("training.server", "{optimizer: fedAdam, learningRate: 0.01, epsilon: 1e-6}"),
        ],
        [
            ("training.sampler", "{kind: sharedFraction, fractions: [0.2, 0.6, 1]}"),
            ("training.server", "{optimizer: fedAvgM}"),
        ],
        [
            ("training.sampler", "{kind: sharedFraction, scope: model}"),
            ("dataset.partition", "{scheme: tiered, alpha: 0.5, tierAlpha: 0.2}"),
        ],
        [
            ("training.sampler", "acrossLayers"), ("training.groupLasso", "0.0005"),
            ("shrinking", "{threshold: 0.001, period: 3}"),
        ],
        [
            ("dataset.partition", "{scheme: shards, perClient: 3}"),
            ("dataset.directory", "'/data/my sets/fashion: \"mnist\"'"),
        ],
        [
            ("dataset.partition", "{scheme: dirichlet, alpha: 0.1}"),
            ("security.requireCurve", "true"), ("evaluation.period", "1"),
            ("simulation.processPerClient", "true"),
        ],
        [
            ("dataset", "{name: synthetic, synthetic: {alpha: 0.5, beta: 0}}"),
            ("model.architecture", "logistic"),
        ],
        [
            ("dataset", "{name: synthetic, synthetic: {iid: true}}"),
            ("model.architecture", "logistic"),
        ],
        [("model.strategy", "denseFedAvg"), ("training.sampler", "none"), ("name", "1")],
        [
            (
                "tiers",
                "[{name: only, count: 10, rankFraction: 0.3333333333333333, gflops: 1e-3, uplinkMbps: 0.25, downlinkMbps: 1, latencyMs: 0, availability: 0}]"
            )
        ],
        [("seed", "18446744073709551615"), ("tiers[1].name", "true")],
        [
            ("training.momentum", "0.5"), ("training.weightDecay", "1e-4"),
            ("training.fullBudgetProbability", "0.5"), ("training.coverageDamping", "true"),
            ("training.selfDistillation", "true"),
            ("training.learningRateSchedule", "cosine"), ("training.rankAwareServer", "true"),
            ("shrinking", "{threshold: 0.05, period: 5, until: 30}"),
        ],
        [
            ("rounds", "100"), ("training.budgetGrowth", "{caps: [0.125, 0.5], until: [20, 40]}"),
            ("shrinking", "{threshold: 0.03, period: 10, from: 50, until: 80}"),
        ],
    ]

    @Test("parse(yaml()) gives back the same scenario", arguments: 0..<variants.count)
    func yamlRoundTrip(variant: Int) throws {
        let scenario = try Scenario.parse(yaml: minimalYAML).overriding(Self.variants[variant])
        let text = scenario.yaml()
        #expect(try Scenario.parse(yaml: text) == scenario, "\(text)")
        // Writing again is stable.
        #expect(try Scenario.parse(yaml: text).yaml() == text)
    }

    @Test("yaml() writes the shipped layout: every key, flow mappings for small sections")
    func yamlLayout() throws {
        let text = try Scenario.parse(yaml: minimalYAML).yaml()
        #expect(
            text == """
                name: tiny
                seed: 7
                clients: 10
                rounds: 3
                clientsPerRound: 4
                overSelection: 1
                minimumUpdates: 1
                roundFailurePolicy: skip
                dataset:
                  name: fashion-mnist
                  directory: /usr/share/datasets/fashion-mnist
                  partition: {scheme: iid}
                model:
                  architecture: mlp
                  strategy: orderedLoD
                training:
                  localEpochs: 1
                  batchSize: 16
                  learningRate: 0.1
                  sampler: perLayer
                  groupLasso: 0
                  server: {optimizer: fedAvg, learningRate: 1}
                  momentum: 0
                  weightDecay: 0
                  fullBudgetProbability: 0
                  coverageDamping: false
                  selfDistillation: false
                  learningRateSchedule: constant
                  rankAwareServer: false
                shrinking: {threshold: 0, period: 10}
                evaluation: {period: 10}
                security: {requireCurve: false}
                simulation: {processPerClient: false}
                tiers:
                  - {name: small, share: 0.5, rankFraction: 0.25, gflops: 1, uplinkMbps: 1, downlinkMbps: 2, latencyMs: 0, availability: 1}
                  - {name: large, share: 0.5, rankFraction: 1, gflops: 4, uplinkMbps: 4, downlinkMbps: 8, latencyMs: 0, availability: 1}

                """)
    }

    @Test("Overrides: a new value, an index, a removed optional key, bad paths and values")
    func overrides() throws {
        let base = try Scenario.parse(yaml: minimalYAML).overriding([("deadlineSeconds", "30")])
        let changed = try base.overriding([
            ("rounds", "2"), ("tiers[1].availability", "0.5"), ("deadlineSeconds", ""),
        ])
        #expect(changed.rounds == 2)
        #expect(changed.tiers[1].availability == 0.5)
        #expect(changed.deadlineSeconds == nil)
        do {
            _ = try base.overriding([
                ("tiers[5].gflops", "1"), ("rounds[", "1"), ("rounds.x", "1"), ("rounds", "{a: ["),
            ])
            Issue.record("expected an error")
        } catch {
            guard case .invalid(let source, let problems) = error else {
                Issue.record("expected .invalid, got \(error)")
                return
            }
            #expect(source == "<overrides>")
            #expect(
                problems.map(\.keyPath) == ["tiers[5].gflops", "rounds[", "rounds.x", "rounds"])
            #expect(problems[0].reason == "index 5 is out of range: the sequence has 2 elements")
            #expect(problems[2].reason == "cannot set key 'x' inside '3'")
            #expect(problems[3].reason.hasPrefix("value is not YAML"))
        }
    }

    @Test("JSON encoding round-trips and decoding validates")
    func codable() throws {
        let scenario = try Scenario.parse(yaml: minimalYAML).overriding(Self.variants[2])
        let json = try JSONEncoder().encode(scenario)
        #expect(try JSONDecoder().decode(Scenario.self, from: json) == scenario)
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(object["clients"] as? Int == 10)
        #expect((object["tiers"] as? [[String: Any]])?.first?["rankFraction"] as? Double == 0.25)

        let broken = String(decoding: json, as: UTF8.self).replacingOccurrences(
            of: "\"rounds\":3", with: "\"rounds\":-3")
        #expect(broken != String(decoding: json, as: UTF8.self))
        do {
            _ = try JSONDecoder().decode(Scenario.self, from: Data(broken.utf8))
            Issue.record("expected a decoding error")
        } catch DecodingError.dataCorrupted(let context) {
            #expect(
                context.debugDescription == "rounds: out of range: must be at least 1, found -3")
        }
    }
}
