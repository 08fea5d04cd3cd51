import Foundation
import Testing

@Suite("A scenario's own layer list, with batch normalisation, in a real fleet", .serialized)
struct ScenarioModelFleetTests {
    /// A small batch-normalised CNN written in the scenario (no preset).
    static let layers =
        "[{conv: {channels: 4, kernel: 3, padding: 1}}, batchnorm, relu, maxpool, "
        + "{conv: {channels: 8, kernel: 3, padding: 1}}, batchnorm, relu, maxpool, flatten, "
        + "{dense: classes}]"

    /// Two rounds of smoke's fleet (in one process) on `layers` under `strategy`.
    func run(_ directory: String, strategy: String) throws -> [String: Any] {
        var arguments = [
            "fleet", "Scenarios/smoke.yaml", "--rounds", "2", "--out", directory,
            "--set", "model.architecture=\(Self.layers)",
            "--set", "evaluation.validationSamples=256",
            "--set", "simulation.processPerClient=false",
            "--set", "model.strategy=\(strategy)",
        ]
        if strategy != "orderedLoD" {
            arguments += [
                "--set", "training.sampler=none", "--set", "training.fullBudgetProbability=0",
                "--set", "training.coverageDamping=false",
            ]
        }
        let result = try maestro(arguments, timeout: 900)
        #expect(result.status == 0, "\(strategy): \(result.error.suffix(2000))")
        return try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: "\(directory)/summary.json")))
            as! [String: Any]
    }

    @Test("Runs end to end; each tier's model file is the model cut to its budget")
    func orderedLoD() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let summary = try run(directory, strategy: "orderedLoD")
        #expect(summary["rounds"] as? Int == 2)
        let accuracy = try #require(summary["final_accuracy_by_tier"] as? [String: Double])
        #expect(accuracy.keys.sorted() == ["full", "low"])
        #expect(accuracy.values.allSatisfy { $0 > 0.1 }, "\(accuracy)")
        for file in ["final.maestro", "final-low.maestro", "final-full.maestro"] {
            #expect(FileManager.default.fileExists(atPath: "\(directory)/\(file)"), "\(file)")
        }
        let eval = try maestro(["eval", "\(directory)/final-low.maestro", "--rank-fractions", "1"])
        #expect(eval.status == 0, "\(eval.error)")
        let show = try maestro(["scenario", "show", "\(directory)/scenario.yaml"])
        #expect(show.status == 0, "\(show.error)")
        #expect(show.output.contains("custom (10 layers)"), "\(show.output)")
    }

    @Test("HeteroFL with batch norm: deterministic per-tier evaluation and tier model files")
    func heteroFL() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try run("\(directory)/a", strategy: "heteroFL")
        let second = try run("\(directory)/b", strategy: "heteroFL")
        let accuracy = try #require(first["final_accuracy_by_tier"] as? [String: Double])
        #expect(accuracy.values.allSatisfy { $0 > 0.1 }, "\(accuracy)")
        #expect(second["final_accuracy_by_tier"] as? [String: Double] == accuracy)
        for file in ["final.maestro", "final-low.maestro", "final-full.maestro"] {
            let a = FileManager.default.contents(atPath: "\(directory)/a/\(file)")
            #expect(a != nil, "\(file) written")
            #expect(a == FileManager.default.contents(atPath: "\(directory)/b/\(file)"), "\(file)")
        }
    }
}
