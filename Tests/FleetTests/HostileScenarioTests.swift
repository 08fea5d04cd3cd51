import Fleet
import Foundation
import Testing

/// Scenarios written to trap the validator or the code after it: every number is range
/// checked before any arithmetic, names fit the wire, the scenario as run fits a worker
/// assignment, and merge keys cost linear time.
@Suite("Hostile scenarios")
struct HostileScenarioTests {
    @Test(
        "Numbers whose arithmetic would overflow or have no Int are refused at their key, never trapped on",
        arguments: [
            (
                "overSelection", "1e308",
                "overSelection: out of range: selects ceil(4 × 1e+308) clients per round but the fleet has 10"
            ),
            (
                "evaluation.validationSamples", "9223372036854775807",
                "evaluation.validationSamples: out of range: must be in [0, 60000], found 9223372036854775807"
            ),
            (
                "clients", "9223372036854775807",
                "clients: out of range: must be in [1, 1000000], found 9223372036854775807"
            ),
            (
                "rounds", "9223372036854775807",
                "rounds: out of range: must be in [1, 1000000], found 9223372036854775807"
            ),
            (
                "minimumUpdates", "9223372036854775807",
                "minimumUpdates: out of range: must be in [1, 1000000], found 9223372036854775807"
            ),
            (
                "dataset.partition", "{scheme: shards, perClient: 9223372036854775807}",
                "dataset.partition.perClient: out of range: must be in [1, 60000], found 9223372036854775807"
            ),
            (
                "dataset.samplesPerClient", "9223372036854775807",
                "dataset.samplesPerClient: out of range: must be in [1, 4294967295], found 9223372036854775807"
            ),
            (
                "evaluation.period", "9223372036854775807",
                "evaluation.period: out of range: must be in [1, 1000000], found 9223372036854775807"
            ),
            (
                "training.learningRate", "1e39",
                "training.learningRate: out of range: must be in (0, 3.4028234663852886e+38], found 1e39"
            ),
            (
                "tiers[0].gflops", "1e-300",
                "tiers[0].gflops: out of range: must be in [0.001, 1000000000], found 1e-300"
            ),
            (
                "tiers[0].uplinkMbps", "5e-324",
                "tiers[0].uplinkMbps: out of range: must be in [0.001, 1000000000], found 5e-324"
            ),
            (
                "tiers[0].latencyMs", "1e308",
                "tiers[0].latencyMs: out of range: must be in [0, 3600000], found 1e308"
            ),
            (
                "deadlineSeconds", "1e308",
                "deadlineSeconds: out of range: must be in (0, 31536000], found 1e308"
            ),
        ])
    func outOfRange(keyPath: String, value: String, expected: String) throws {
        #expect(try problems(overriding: [(keyPath, value)]).map(\.description) == [expected])
    }

    @Test("Tier counts that would overflow their sum are refused one by one")
    func tierCounts() throws {
        let found = try problems(overriding: [
            ("tiers[0].share", ""), ("tiers[1].share", ""),
            ("tiers[0].count", "9223372036854775807"), ("tiers[1].count", "9223372036854775807"),
        ]).map(\.description)
        #expect(
            found == [
                "tiers[0].count: out of range: must be in [1, 1000000], found 9223372036854775807",
                "tiers[1].count: out of range: must be in [1, 1000000], found 9223372036854775807",
            ])
    }

    @Test("A tier name is at most 255 bytes, what REGISTER carries; so is the scenario's name")
    func nameLength() throws {
        let longest = String(repeating: "t", count: 255)
        let scenario = try Scenario.parse(yaml: minimalYAML).overriding([("tiers[0].name", longest)]
        )
        #expect(scenario.tiers[0].name == longest)
        #expect(
            try problems(overriding: [("tiers[0].name", longest + "t")]).map(\.description) == [
                "tiers[0].name: too long: 256 bytes; a name may have at most 255 (what REGISTER carries)"
            ])
        #expect(
            try problems(overriding: [("name", String(repeating: "n", count: 300))]).map(\.keyPath)
                == ["name"])
    }

    /// `minimalYAML` with `count` tiers of one client each.
    static func manyTiers(_ count: Int) -> String {
        let head = minimalYAML.components(separatedBy: "tiers:\n")[0]
            .replacingOccurrences(of: "clients: 10", with: "clients: \(count)")
        let tiers = (0..<count).map {
            "  - {name: tier\($0), count: 1, rankFraction: 1, gflops: 1.25, uplinkMbps: 2.5, "
                + "downlinkMbps: 10.5, latencyMs: 20, availability: 0.95}"
        }
        return head + "tiers:\n" + tiers.joined(separator: "\n") + "\n"
    }

    @Test(
        "A scenario whose YAML as run exceeds what a worker assignment carries (60000 bytes) is refused, naming the limit"
    )
    func yamlAsRunFitsTheWire() throws {
        let fits = try Scenario.parse(yaml: Self.manyTiers(100))
        #expect(fits.yaml().utf8.count < Scenario.maximumYAMLBytes)
        let found = problems(in: Self.manyTiers(600))
        #expect(found.count == 1)
        #expect(found.first?.keyPath == "(root)")
        #expect(
            found.first?.reason.hasPrefix("the scenario as run is ") == true
                && found.first?.reason.hasSuffix(
                    "bytes of YAML; a scenario may have at most 60000 (what a worker assignment carries)"
                )
                    == true,
            "\(found)")
    }

    @Test("A merge key over a 30000-key anchor takes linear time (it took over a minute)")
    func largeMerge() throws {
        let lines =
            ["base: &big"] + (0..<30_000).map { "  k\($0): \($0)" } + [
                "merged:", "  <<: *big", "  k7: own",
            ]
        let yaml = lines.joined(separator: "\n") + "\n"
        let clock = ContinuousClock()
        var found: [ScenarioProblem] = []
        let elapsed = clock.measure { found = problems(in: yaml) }
        #expect(elapsed < .seconds(10), "\(elapsed)")
        // The two unknown top-level keys, and the required keys missing: one pass.
        #expect(found.map(\.keyPath).prefix(2) == ["base", "merged"])
    }
}
