import Foundation
import Testing

@Suite("Sized to the device: bench --profile, export for a budget, eval --pareto", .serialized)
struct BudgetCommandTests {
    /// A LoD MLP trained one epoch on synthetic data (seconds in a debug build).
    func trainedModel(in directory: String) throws -> String {
        let model = "\(directory)/mlp.maestro"
        let trained = try maestro([
            "train", "--dataset", "synthetic", "--model", "mlp", "--epochs", "1", "--seed", "1",
            "--out", model,
        ])
        try #require(trained.status == 0, "\(trained.error.suffix(500))")
        return model
    }

    func macs(of model: String) throws -> Int {
        let result = try maestro(["eval", model, "--rank-fractions", "1", "--json"])
        let rows =
            try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as! [[String: Any]]
        return rows[0]["macs"] as! Int
    }

    @Test(
        "export --macs and --parameters write a model within the budget with per-layer ranks; contradictory or impossible budgets are refused"
    )
    func exportForBudget() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let model = try trainedModel(in: directory)
        let full = try macs(of: model)
        let small = "\(directory)/small.maestro"
        let exported = try maestro([
            "export", model, "--macs", "\(full / 3)", "--check", "--out", small,
        ])
        #expect(exported.status == 0, "\(exported.error)")
        #expect(exported.output.contains("check split (5000 samples)"), "\(exported.output)")
        #expect(exported.output.contains(", layer curves "), "\(exported.output)")
        #expect(try macs(of: small) <= full / 3)
        // The kept ranks, evaluated by eval --ranks, cost what eval says at the full fraction.
        let kept = try #require(
            exported.output.components(separatedBy: "(of ").last?.split(separator: ")").first)
        let byRanks = try maestro(["eval", model, "--ranks", String(kept), "--json"])
        #expect(byRanks.status == 0, "\(byRanks.error)")
        let rows =
            try JSONSerialization.jsonObject(with: Data(byRanks.output.utf8)) as! [[String: Any]]
        #expect(rows.count == 1 && rows[0]["macs"] as? Int == full)
        let onCheck = try maestro(["eval", model, "--ranks", String(kept), "--split", "check"])
        #expect(onCheck.status == 0 && onCheck.output.contains("loss"), "\(onCheck.error)")
        let wrongCount = try maestro(["eval", model, "--ranks", "1"])
        #expect(wrongCount.status != 0 && wrongCount.error.contains("LoD layers"))
        let tooHigh = try maestro([
            "eval", model, "--ranks",
            kept.split(separator: "/").map { _ in "100000" }
                .joined(separator: "/"),
        ])
        #expect(tooHigh.status != 0 && tooHigh.error.contains("is not a rank from 1"))
        let byParameters = try maestro([
            "export", model, "--parameters", "60000", "--importance", "energy", "--out",
            "\(directory)/p.maestro",
        ])
        #expect(byParameters.status == 0, "\(byParameters.error)")
        let both = try maestro([
            "export", model, "--macs", "1000", "--parameters", "10", "--out",
            "\(directory)/x.maestro",
        ])
        #expect(both.status != 0 && both.error.contains("exactly one of"))
        let tiny = try maestro(["export", model, "--macs", "10", "--out", "\(directory)/x.maestro"])
        #expect(tiny.status != 0 && tiny.error.contains("above the budget of 10"), "\(tiny.error)")
        let noProfile = try maestro([
            "export", model, "--latency-ms", "1", "--out", "\(directory)/x.maestro",
        ])
        #expect(noProfile.status != 0 && noProfile.error.contains("--profile"))
    }

    @Test("bench --profile prints a tier line; export --latency-ms uses its GFLOP/s")
    func profileAndLatency() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let profiled = try maestro([
            "bench", "--profile", "--model", "mlp", "--seconds", "0.1", "--name", "pi4",
        ])
        #expect(profiled.status == 0, "\(profiled.error)")
        let line = try #require(
            profiled.output.split(separator: "\n").first { $0.hasPrefix("- {name: pi4") })
        let gflops = try #require(
            line.split(separator: ",").first { $0.contains("gflops:") }
                .flatMap {
                    Double(
                        $0.split(separator: ":")[1].trimmingCharacters(
                            in: CharacterSet(charactersIn: " }")))
                })
        #expect(gflops > 0)
        #expect(profiled.output.contains("MB of memory"))
        let profile = "\(directory)/pi4.yaml"
        try profiled.output.write(toFile: profile, atomically: true, encoding: .utf8)
        let model = try trainedModel(in: directory)
        let full = try macs(of: model)
        // A latency budget of a third of the full model's time on that device.
        let milliseconds = Double(full) * 2 / (gflops * 1e9) * 1e3 / 3
        let out = "\(directory)/fast.maestro"
        let exported = try maestro([
            "export", model, "--latency-ms", "\(milliseconds)", "--profile", profile, "--out", out,
        ])
        #expect(exported.status == 0, "\(exported.error)")
        #expect(try macs(of: out) <= full / 3 + 1)
        let broken = "\(directory)/broken.yaml"
        try "- {name: x}\n".write(toFile: broken, atomically: true, encoding: .utf8)
        let refused = try maestro([
            "export", model, "--latency-ms", "1", "--profile", broken, "--out", out + "2",
        ])
        #expect(refused.status != 0 && refused.error.contains("broken.yaml"))
    }

    @Test(
        "eval --pareto --json: every point within its budget, the frontier marked, the checked choice recorded"
    )
    func pareto() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let model = try trainedModel(in: directory)
        let result = try maestro(["eval", model, "--pareto", "--points", "5", "--json"])
        #expect(result.status == 0, "\(result.error)")
        let rows =
            try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as! [[String: Any]]
        #expect(rows.count == 5)
        for row in rows {
            #expect((row["greedy_cost"] as! Int) <= (row["budget"] as! Int))
            #expect((row["uniform_cost"] as! Int) <= (row["budget"] as! Int))
            #expect(["greedy", "uniform"].contains(row["chosen"] as! String))
        }
        #expect(rows.first?["on_frontier"] as? Bool == true)
        let accuracies = rows.map { $0["chosen_accuracy"] as! Double }
        #expect(accuracies.last! >= accuracies.first!)
    }
}
