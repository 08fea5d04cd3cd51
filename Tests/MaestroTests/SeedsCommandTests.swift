import Foundation
import Testing

@testable import maestro

@Suite("fleet --seeds: one run per seed, compared over seeds")
struct SeedsParsingTests {
    @Test("--seeds reads ranges and lists, in the order given")
    func parsing() throws {
        #expect(try parseSeeds("1-5") == [1, 2, 3, 4, 5])
        #expect(try parseSeeds("1,3,7") == [1, 3, 7])
        #expect(try parseSeeds("1-3,7") == [1, 2, 3, 7])
        #expect(try parseSeeds(" 9 , 4 ") == [9, 4])
        #expect(try parseSeeds("0") == [0])
        #expect(try parseSeeds("4-4") == [4])
        #expect(seedFolder("runs/x", seed: 3) == "runs/x/seed-3")
    }

    @Test(
        "--seeds refuses what is not a seed, a backward range, a repeated seed and too many runs, naming it",
        arguments: [
            ("", "--seeds: '' is not a seed or a range of seeds (write 1-5, 1,3,7 or 1-3,7)"),
            ("a", "--seeds: 'a' is not a seed or a range of seeds (write 1-5, 1,3,7 or 1-3,7)"),
            ("1,", "--seeds: '' is not a seed or a range of seeds (write 1-5, 1,3,7 or 1-3,7)"),
            ("-3", "--seeds: '-3' is not a seed or a range of seeds (write 1-5, 1,3,7 or 1-3,7)"),
            (
                "1-2-3",
                "--seeds: '1-2-3' is not a seed or a range of seeds (write 1-5, 1,3,7 or 1-3,7)"
            ),
            ("5-1", "--seeds: the range 5-1 runs backwards (write 1-5)"),
            ("1,1", "--seeds: seed 1 is given twice"),
            ("1-3,2", "--seeds: seed 2 is given twice"),
            ("1-101", "--seeds 1-101: more than 100 runs; give fewer seeds"),
            ("1-60,100-160", "--seeds 1-60,100-160: more than 100 runs; give fewer seeds"),
            (
                "0-18446744073709551615",
                "--seeds 0-18446744073709551615: more than 100 runs; give fewer seeds"
            ),
        ])
    func errors(text: String, message: String) {
        do {
            let seeds = try parseSeeds(text)
            Issue.record("'\(text)' parsed as \(seeds)")
        } catch {
            #expect("\(error)" == message)
        }
    }
}

@Suite("fleet --seeds and fixedRank end to end", .serialized)
struct SeedsCommandTests {
    @Test("--seeds with --seed, with --resume or with a bad range stops before any run")
    func refusals() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let both = try maestro(
            ["fleet", "Scenarios/smoke.yaml", "--seeds", "1-2", "--seed", "3", "--out", directory])
        #expect(both.status != 0 && both.error.contains("give --seed N or --seeds LIST, not both"))
        let resume = try maestro(["fleet", "--seeds", "1-2", "--resume", directory])
        #expect(resume.status != 0 && resume.error.contains("--seeds starts new runs"))
        let backwards = try maestro(["fleet", "Scenarios/smoke.yaml", "--seeds", "2-1"])
        #expect(backwards.status != 0 && backwards.error.contains("the range 2-1 runs backwards"))
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/seed-1"))
    }

    @Test(
        "--seeds 1-2 runs smoke twice, in seed-1 and seed-2, and prints the figures over both; compare groups them"
    )
    func twoSeeds() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try maestro(
            [
                "fleet", "Scenarios/smoke.yaml", "--seeds", "1-2", "--rounds", "2", "--out",
                directory,
            ],
            timeout: 900)
        #expect(result.status == 0, "\(result.error.suffix(2000))")
        for seed in [1, 2] {
            let summary =
                try JSONSerialization.jsonObject(
                    with: Data(
                        contentsOf: URL(fileURLWithPath: "\(directory)/seed-\(seed)/summary.json")))
                as! [String: Any]
            #expect(summary["seed"] as? Int == seed)
            #expect(summary["rounds"] as? Int == 2)
            #expect(FileManager.default.fileExists(atPath: "\(directory)/seed-\(seed)/report.html"))
        }
        #expect(result.output.contains("seed 1 (1 of 2): \(directory)/seed-1"))
        #expect(result.output.contains("seed 2 (2 of 2): \(directory)/seed-2"))
        #expect(result.output.contains("smoke, seeds 1-2: 2 runs in \(directory)/seed-*"))
        #expect(result.output.contains("over seeds (mean ± sample standard deviation"))
        #expect(result.output.contains("smoke, seeds 1-2 (orderedLoD), n = 2: 2 rounds"))

        // compare groups the two folders: one row over both seeds per target.
        let compare = try maestro(["compare", "\(directory)/seed-1", "\(directory)/seed-2"])
        #expect(compare.status == 0, "\(compare.error)")
        let lines = compare.output.split(separator: "\n")
        #expect(lines.contains { $0.contains("smoke, seeds 1-2") && $0.contains("/2 ") })
        #expect(lines.contains { $0.hasPrefix("smoke, seeds 1-2 (orderedLoD), n = 2") })
        // Running again into the same folders is refused before any run starts.
        let again = try maestro(
            [
                "fleet", "Scenarios/smoke.yaml", "--seeds", "2-3", "--rounds", "2", "--out",
                directory,
            ])
        #expect(again.status != 0 && again.error.contains("seed-2 already holds a run"))
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/seed-3"))
    }

    @Test(
        "fixedRank runs 3 smoke rounds end to end: report written, ledger bytes = summary bytes; --set on smoke.yaml names the keys to drop"
    )
    func fixedRankSmoke() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let refused = try maestro(
            ["fleet", "Scenarios/smoke.yaml", "--set", "model.strategy=fixedRank", "--rounds", "3"])
        #expect(refused.status != 0)
        for key in [
            "training.sampler", "training.fullBudgetProbability", "training.coverageDamping",
        ] {
            #expect(refused.error.contains("\(key): must be"), "\(refused.error)")
        }
        let run = "\(directory)/fixedRank"
        let result = try maestro(
            ["fleet", "Scenarios/smoke-fixedRank.yaml", "--rounds", "3", "--out", run],
            timeout: 600)
        #expect(result.status == 0, "\(result.error.suffix(2000))")
        #expect(FileManager.default.fileExists(atPath: "\(run)/report.html"))
        let summary =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json")))
            as! [String: Any]
        #expect(summary["strategy"] as? String == "fixedRank")
        let total = (summary["bytes_up"] as! Int) + (summary["bytes_down"] as! Int)
        let ledger = try String(contentsOfFile: "\(run)/ledger.csv", encoding: .utf8)
        let rows = ledger.split(separator: "\n").dropFirst()
        #expect(rows.reduce(0) { $0 + Int($1.split(separator: ",").last!)! } == total)
        // The low tier sends its fixed budget: p = 1/4 of 300, 100, 10 ranks.
        let tiers = summary["tiers"] as? [[String: Any]] ?? []
        let low = try #require(tiers.first { $0["tier"] as? String == "low" })
        #expect(low["ranks"] as? [Int] == [75, 25, 3])
        let compare = try maestro(["compare", run])
        #expect(compare.status == 0 && compare.output.contains("(fixedRank)"))
    }
}

@Suite("scenario show: training FLOPs and MACs per tier")
struct ScenarioComputeTableTests {
    /// The compute table's row of `tier`, split into its cells.
    static func row(_ tier: String, in output: String) -> [Substring] {
        let table = output.components(separatedBy: "Compute per sample")
        return (table.count > 1 ? table[1] : "").split(separator: "\n")
            .first { $0.hasPrefix(tier + " ") }?.split(separator: " ") ?? []
    }

    @Test(
        "fixedRank tiers train and run their budgets (the frozen 1/8 tier 0.32 of the full); dense tiers the whole model"
    )
    func computeTable() throws {
        let fixed = try maestro(["scenario", "show", "Scenarios/default-fixedRank.yaml"])
        #expect(fixed.status == 0, "\(fixed.error)")
        #expect(Self.row("low", in: fixed.output) == ["low", "0.125", "0.769", "0.321", "368484"])
        #expect(Self.row("full", in: fixed.output) == ["full", "1", "2.393", "1.000", "416520"])
        let dense = try maestro(["scenario", "show", "Scenarios/dense-fedavg.yaml"])
        #expect(dense.status == 0, "\(dense.error)")
        for tier in ["low", "mid", "high", "full"] {
            #expect(
                Array(Self.row(tier, in: dense.output).dropFirst(2)) == [
                    "2.264", "1.000", "416520",
                ])
        }
    }
}
