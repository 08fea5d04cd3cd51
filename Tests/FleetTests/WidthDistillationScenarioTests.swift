import Fleet
import Testing

@Suite("training.widthDistillation: FjORD's self-distillation in scenario files")
struct WidthDistillationScenarioTests {
    let fjord: [(keyPath: String, value: String)] = [
        ("model.strategy", "fjord"), ("training.sampler", "none"),
    ]

    @Test("Read under fjord, temperature 1 when left out, off when the key is absent")
    func reads() throws {
        let base = try Scenario.parse(yaml: minimalYAML).overriding(fjord)
        #expect(base.training.widthDistillation == nil)
        let on = try base.overriding([
            ("training.widthDistillation", "{weight: 0.5, temperature: 2}")
        ])
        #expect(
            on.training.widthDistillation
                == Scenario.WidthDistillation(weight: 0.5, temperature: 2))
        let plain = try base.overriding([("training.widthDistillation", "{weight: 1}")])
        #expect(plain.training.widthDistillation?.temperature == 1)
        let zero = try base.overriding([("training.widthDistillation", "{weight: 0}")])
        #expect(zero.training.widthDistillation?.weight == 0)
    }

    @Test("The setting survives the YAML a run folder and a worker get; off writes no key")
    func roundTrip() throws {
        let on = try Scenario.parse(yaml: minimalYAML).overriding(
            fjord + [("training.widthDistillation", "{weight: 0.25, temperature: 3}")])
        let yaml = on.yaml()
        #expect(yaml.contains("widthDistillation: {weight: 0.25, temperature: 3}"))
        #expect(try Scenario.parse(yaml: yaml) == on)
        let off = try Scenario.parse(yaml: minimalYAML).overriding(fjord)
        #expect(!off.yaml().contains("widthDistillation"))
    }

    @Test("Weight and temperature refused out of range, each at its key, with the reason")
    func ranges() throws {
        let cases: [(value: String, key: String, reason: String)] = [
            ("{weight: -0.5}", "training.widthDistillation.weight", "-0.5"),
            ("{weight: .nan}", "training.widthDistillation.weight", "nan"),
            ("{weight: .inf}", "training.widthDistillation.weight", "inf"),
            ("{weight: 1, temperature: 0}", "training.widthDistillation.temperature", "0"),
            ("{weight: 1, temperature: -2}", "training.widthDistillation.temperature", "-2"),
            ("{weight: 1, temperature: .inf}", "training.widthDistillation.temperature", "inf"),
            ("{temperature: 2}", "training.widthDistillation.weight", "missing"),
            ("{weight: 1, temprature: 2}", "training.widthDistillation.temprature", "unknown"),
            ("true", "training.widthDistillation", "mapping"),
        ]
        for (value, key, reason) in cases {
            let found = try problems(overriding: fjord + [("training.widthDistillation", value)])
            #expect(found.map(\.keyPath) == [key], "\(value): \(found)")
            #expect(
                found.first.map { $0.description.lowercased().contains(reason) } == true,
                "\(value): \(found)")
        }
    }

    @Test(
        "Only fjord samples widths: every other strategy refuses the key",
        arguments: ["orderedLoD", "denseFedAvg", "heteroFL", "fedRolex", "smallModel", "fixedRank"])
    func otherStrategies(strategy: String) throws {
        let sampler = strategy == "orderedLoD" ? "perLayer" : "none"
        let found = try problems(overriding: [
            ("model.strategy", strategy), ("training.sampler", sampler),
            ("training.widthDistillation", "{weight: 1, temperature: 2}"),
        ])
        #expect(found.map(\.keyPath) == ["training.widthDistillation"], "\(found)")
        #expect(found.first?.reason.contains("only with fjord, not \(strategy)") == true)
    }

    @Test("fjord's refusal of the LoD self-distillation names the key that distils widths")
    func lodKeyUnderFjord() throws {
        let found = try problems(overriding: fjord + [("training.selfDistillation", "true")])
        #expect(found.map(\.keyPath) == ["training.selfDistillation"])
        #expect(found.first?.reason.contains("training.widthDistillation") == true)
    }

    @Test("scenario show prints the setting, and nothing when it is off")
    func shown() throws {
        let layers = [
            LayerShape(
                name: "fc", outputs: 10, inputs: 784, isLowRank: false, rank: 10,
                sharedParameterCount: 10)
        ]
        let on = try Scenario.parse(yaml: minimalYAML).overriding(
            fjord + [("training.widthDistillation", "{weight: 0.5, temperature: 2}")])
        let text = ScenarioReport(scenario: on, layers: layers).render()
        #expect(text.contains("Self-distillation over widths: weight 0.5, temperature 2"))
        let off = try Scenario.parse(yaml: minimalYAML).overriding(fjord)
        #expect(!ScenarioReport(scenario: off, layers: layers).render().contains("distillation"))
    }
}
