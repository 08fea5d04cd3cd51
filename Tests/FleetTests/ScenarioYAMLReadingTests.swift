import Fleet
import Foundation
import Testing

/// How the validator reads YAML itself: 16-bit wire fields, key suggestions, quoting, empty
/// documents, nulls, anchors and merge keys.
@Suite("Scenario validation: reading YAML")
struct ScenarioYAMLReadingTests {
    @Test("Fields the wire carries in 16 bits are refused above 65535, not trapped on later")
    func sixteenBitFields() throws {
        #expect(
            try problems(overriding: [("training.batchSize", "70000")]).map(\.description) == [
                "training.batchSize: out of range: must be in [1, 65535], found 70000"
            ])
        #expect(
            try problems(overriding: [("training.localEpochs", "65536")]).map(\.description) == [
                "training.localEpochs: out of range: must be in [1, 65535], found 65536"
            ])
        let largest = try Scenario.parse(yaml: minimalYAML).overriding([
            ("training.batchSize", "65535")
        ])
        #expect(largest.training.batchSize == 65535)
    }

    @Test("An unknown key suggests the known key within two edits, case-insensitively")
    func suggestions() throws {
        let found = problems(
            in: minimalYAML + "clientsPerRuond: 4\nEvaluation: {period: 2}\nseeed: 3\nzzz: 1\n")
        #expect(
            found.map(\.description) == [
                "clientsPerRuond: unknown key; did you mean 'clientsPerRound'?",
                "Evaluation: unknown key; did you mean 'evaluation'?",
                "seeed: unknown key; did you mean 'seed'?",
                "zzz: unknown key; expected one of name, seed, clients, rounds, clientsPerRound, overSelection, "
                    + "minimumUpdates, roundFailurePolicy, deadlineSeconds, dataset, model, training, shrinking, "
                    + "evaluation, security, simulation, robustness, adversaries, tiers, report",
            ])
    }

    @Test("Quoted numbers are strings, so a quoted count is a wrong type")
    func quotedNumbers() {
        let found = problems(
            in: minimalYAML.replacingOccurrences(of: "rounds: 3", with: "rounds: '3'"))
        #expect(
            found == [
                ScenarioProblem(
                    keyPath: "rounds",
                    reason: "wrong type: expected an integer, found the string \"3\"")
            ])
    }

    @Test("Empty documents and non-mapping roots are reported at (root)")
    func roots() {
        #expect(
            problems(in: "") == [
                ScenarioProblem(
                    keyPath: "(root)",
                    reason: "the document is empty; expected a mapping of scenario keys")
            ])
        #expect(problems(in: "# only a comment\n").map(\.keyPath) == ["(root)"])
        #expect(
            problems(in: "- a\n- b\n") == [
                ScenarioProblem(
                    keyPath: "(root)", reason: "wrong type: expected a mapping, found a sequence")
            ])
    }

    @Test("A null value counts as absent: default for optional keys, missing for required ones")
    func nulls() throws {
        let yaml = minimalYAML.replacingOccurrences(
            of: "rounds: 3", with: "rounds:\nminimumUpdates: ~")
        #expect(
            problems(in: yaml) == [
                ScenarioProblem(keyPath: "rounds", reason: "missing required key")
            ])
    }

    @Test("YAML anchors and merge keys share tier settings")
    func mergeKeys() throws {
        let yaml =
            minimalYAML.components(separatedBy: "tiers:\n")[0] + """
                tiers:
                  - &phone {name: small, share: 0.5, rankFraction: 0.25, gflops: 2, uplinkMbps: 5, downlinkMbps: 20}
                  - {<<: *phone, name: large, rankFraction: 1, gflops: 8}
                """
        let scenario = try Scenario.parse(yaml: yaml)
        #expect(scenario.tiers.map(\.gflops) == [2, 8])
        #expect(scenario.tiers.map(\.uplinkMbps) == [5, 5])
        #expect(scenario.tiers.map(\.name) == ["small", "large"])
    }
}
