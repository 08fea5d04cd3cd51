import Fleet
import Testing

@Suite("robustness and adversaries keys")
struct RobustnessKeysTests {
    @Test("Defaults: mean, β 0.1, norm ratio 100, no adversaries; written only when set")
    func defaults() throws {
        let scenario = try Scenario.parse(yaml: minimalYAML)
        #expect(scenario.robustness == Scenario.Robustness())
        #expect(scenario.robustness.aggregation == .mean)
        #expect(scenario.robustness.trimFraction == 0.1)
        #expect(scenario.robustness.maximumUpdateNormRatio == 100)
        #expect(scenario.adversaries == nil)
        #expect(!scenario.yaml().contains("robustness") && !scenario.yaml().contains("adversaries"))
    }

    @Test("Set keys round-trip through YAML")
    func roundTrip() throws {
        let scenario = try Scenario.parse(yaml: minimalYAML).overriding([
            (
                "robustness",
                "{aggregation: trimmedMean, trimFraction: 0.2, maximumUpdateNormRatio: 5}"
            ),
            ("adversaries", "{fraction: 0.1, attack: signFlip, factor: 4}"),
        ])
        #expect(
            scenario.robustness
                == Scenario.Robustness(
                    aggregation: .trimmedMean, trimFraction: 0.2, maximumUpdateNormRatio: 5))
        #expect(
            scenario.adversaries
                == Scenario.Adversaries(fraction: 0.1, attack: .signFlip, factor: 4))
        #expect(try Scenario.parse(yaml: scenario.yaml()) == scenario)
        let median = try Scenario.parse(yaml: minimalYAML).overriding([
            ("robustness.aggregation", "median")
        ])
        #expect(median.robustness.aggregation == .median)
        #expect(try Scenario.parse(yaml: median.yaml()) == median)
    }

    @Test("Bad values name the key and the range")
    func problemsNamed() throws {
        #expect(
            try problems(overriding: [
                ("robustness.trimFraction", "0.5"), ("robustness.aggregation", "trimmedMean"),
            ])
            .map(\.description) == [
                "robustness.trimFraction: out of range: must be in [0, 0.5), found 0.5"
            ])
        #expect(
            try problems(overriding: [("robustness.trimFraction", "0.2")]).map(\.description) == [
                "robustness.trimFraction: only with aggregation: trimmedMean (found aggregation: mean)"
            ])
        #expect(
            try problems(overriding: [("robustness.maximumUpdateNormRatio", "0")]).map(
                \.description)
                == [
                    "robustness.maximumUpdateNormRatio: out of range: must be greater than 0, found 0"
                ])
        #expect(
            try problems(overriding: [("robustness.aggregation", "mode")]).first?.keyPath
                == "robustness.aggregation")
        #expect(
            try problems(overriding: [("adversaries", "{attack: scale}")]).map(\.keyPath)
                == ["adversaries.fraction"])
        #expect(
            try problems(overriding: [("adversaries", "{fraction: 0.1, attack: replace}")]).first?
                .keyPath == "adversaries.attack")
    }
}
