import Foundation
import Report
import RunRecords
import Testing

/// A scenario file as a run folder holds it, with `seed` and `learningRate` to vary.
func scenarioYAML(seed: Int, learningRate: Double = 0.1) -> String {
    """
    name: fixture
    seed: \(seed)
    clients: 6
    rounds: 6
    clientsPerRound: 3
    dataset:
      name: fashion-mnist
      partition: {scheme: iid}
    model: {architecture: mlp, strategy: orderedLoD}
    training: {localEpochs: 1, batchSize: 16, learningRate: \(learningRate)}
    tiers:
      - {name: low, count: 3, rankFraction: 0.25, gflops: 1, uplinkMbps: 1, downlinkMbps: 2}
      - {name: full, count: 3, rankFraction: 1, gflops: 4, uplinkMbps: 4, downlinkMbps: 8}

    """
}

/// `fixture` as run with `seed` (its summary and scenario identity say so).
func seeded(_ fixture: FixtureRun, seed: UInt64, in parent: String) throws -> RunData {
    var run = try RunData.load(directory: try fixture.write(in: parent))
    run.summary.seed = seed
    run.scenarioIdentity = "fixture"
    return run
}

/// Seed 2 of the LoD fixture: the best tier reaches 0.80 at round 2 (200 bytes, 1.5 s per
/// round), and ends at 0.84 on the full tier.
let lodSeed2 = FixtureRun(
    name: "lod-seed-2",
    evaluations: [
        2: ["low": 0.70, "full": 0.81], 4: ["low": 0.80, "full": 0.83],
        6: ["low": 0.82, "full": 0.84],
    ], bytesPerRound: 200)

@Suite("Runs of one scenario over seeds: grouped, mean ± standard deviation")
struct SeedGroupTests {
    @Test("Mean and sample standard deviation by hand")
    func meanDeviation() throws {
        let four = try #require(MeanDeviation([1, 2, 3, 4]))
        #expect(four.count == 4 && four.mean == 2.5)
        // Squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, over n − 1 = 3.
        #expect(abs(four.deviation - (5.0 / 3).squareRoot()) < 1e-12)
        #expect(four.text { String(format: "%.2f", $0) } == "2.50 ± 1.29")
        let one = try #require(MeanDeviation([7]))
        #expect(one.deviation == 0 && one.text { String(format: "%.1f", $0) } == "7.0")
        #expect(MeanDeviation([]) == nil)
    }

    @Test("Seeds are written as ranges where consecutive")
    func seedText() {
        #expect(formatSeeds([1, 2, 3, 4, 5]) == "1-5")
        #expect(formatSeeds([1, 3, 7]) == "1, 3, 7")
        #expect(formatSeeds([1, 2, 3, 7]) == "1-3, 7")
        #expect(formatSeeds([4]) == "4")
    }

    @Test(
        "Run folders of one scenario with different seeds group; another learning rate or a repeated seed does not"
    )
    func groupingByScenarioFile() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        func run(_ name: String, seed: Int, learningRate: Double = 0.1) throws -> RunData {
            var fixture = lodFixture
            fixture.name = name
            let directory = try fixture.write(in: parent)
            try scenarioYAML(seed: seed, learningRate: learningRate).write(
                toFile: "\(directory)/scenario.yaml", atomically: true, encoding: .utf8)
            var data = try RunData.load(directory: directory)
            data.summary.seed = UInt64(seed)
            return data
        }
        let runs = [
            try run("a1", seed: 1), try run("b1", seed: 1, learningRate: 0.2),
            try run("a2", seed: 2), try run("a1-again", seed: 1), try run("a3", seed: 3),
        ]
        #expect(runs[0].scenarioIdentity != nil)
        #expect(runs[0].scenarioIdentity == runs[2].scenarioIdentity)
        #expect(runs[0].scenarioIdentity != runs[1].scenarioIdentity)
        let groups = SeedGroup.grouping(runs)
        #expect(groups.map { $0.runs.map(\.name) } == [["a1", "a2", "a3"], ["b1"], ["a1-again"]])
        #expect(groups.map(\.name) == ["fixture, seeds 1-3", "b1", "a1-again"])
        // A folder without its scenario is a group of its own.
        var bare = runs[0]
        bare.scenarioIdentity = nil
        #expect(SeedGroup.grouping([bare, runs[2]]).count == 2)
    }

    @Test("Figures over two seeds by hand: to a target and per tier at the end")
    func figuresByHand() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let group = try #require(
            SeedGroup.grouping([
                try seeded(lodFixture, seed: 1, in: parent),
                try seeded(lodSeed2, seed: 2, in: parent),
            ]).first)
        #expect(group.seeds == [1, 2])
        // 0.80: seed 1 at round 4 (400 B, 6 s), seed 2 at round 2 (400 B, 3 s).
        let reach = group.reach(0.80)
        #expect(reach.reached == 2)
        #expect(reach.round == MeanDeviation([4, 2]))
        #expect(reach.round?.mean == 3 && abs(reach.round!.deviation - 2.0.squareRoot()) < 1e-12)
        #expect(reach.bytes?.mean == 400 && reach.bytes?.deviation == 0)
        #expect(reach.time?.mean == 4.5)
        // 0.87: seed 1 at round 6 only.
        let high = group.reach(0.87)
        #expect(high.reached == 1 && high.round == MeanDeviation([6]))
        // Final full-tier accuracy 0.88 and 0.84: 0.86 ± 0.0283.
        let accuracy = try #require(group.tierFigure("full", \.accuracy))
        #expect(abs(accuracy.mean - 0.86) < 1e-12)
        #expect(abs(accuracy.deviation - 0.04 / 2.0.squareRoot()) < 1e-12)
        // Bytes: 600 and 1200.
        let bytes = group.figure { Double($0.bytesUp + $0.bytesDown) }
        #expect(bytes.mean == 900 && abs(bytes.deviation - 600 / 2.0.squareRoot()) < 1e-9)
    }

    @Test(
        "compare prints the figures over seeds after the runs; one seed per scenario prints as before"
    )
    func compareText() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let one = try seeded(lodFixture, seed: 1, in: parent)
        let two = try seeded(lodSeed2, seed: 2, in: parent)
        let dense = try RunData.load(directory: try denseFixture.write(in: parent))
        let targets = [0.80, 0.87]
        let single = CompareReport(runs: [one, dense], targets: targets, baseline: 1)
        #expect(!single.text().contains("over seeds"))
        #expect(single.seedText().isEmpty)
        let report = CompareReport(runs: [one, two, dense], targets: targets, baseline: 2)
        let text = report.text()
        // Every run as before, then the figures over seeds.
        #expect(text.contains("\nlod-seed-2: fixture (orderedLoD), seed 2, 6 rounds"))
        #expect(text.hasSuffix("\n" + report.seedText()))
        let lines = report.seedText().split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("over seeds (mean ± sample standard deviation") == true)
        #expect(lines.first?.hasSuffix("baseline dense)") == true)
        // 80 %: rounds 4 and 2, 400 B both, 6 s and 3 s; dense reached it at round 2 (600 B).
        let row80 = try #require(lines.first { $0.hasPrefix("80.0%") })
        #expect(row80.contains("fixture, seeds 1-2"))
        #expect(row80.contains("2/2"))
        #expect(row80.contains("3.0 ± 1.4"))
        #expect(row80.contains("400 B ± 0 B"))
        #expect(row80.contains("4.5 s ± 2.1 s"))
        #expect(row80.hasSuffix("66.7%"))
        let dense80 = try #require(lines.first { $0.contains(" dense ") && $0.contains("1/1") })
        #expect(dense80.hasSuffix("baseline"))
        // The group's per-tier table: full tier 86.00 % ± 2.83 %.
        #expect(lines.contains { $0.hasPrefix("fixture, seeds 1-2 (orderedLoD), n = 2: 6 rounds") })
        let full = try #require(lines.first { $0.hasPrefix("full ") })
        #expect(full.contains("86.00% ± 2.83%"))
        // JSON: the same figures as numbers.
        let json =
            try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as! [String: Any]
        let groups = try #require(json["seed_groups"] as? [[String: Any]])
        #expect(groups.count == 2 && groups[0]["n"] as? Int == 2)
        #expect(groups[0]["seeds"] as? [Int] == [1, 2])
        let targets0 = try #require(groups[0]["targets"] as? [[String: Any]])
        let round = try #require(targets0[0]["round"] as? [String: Any])
        #expect(round["mean"] as? Double == 3 && round["n"] as? Int == 2)
    }

    @Test("The HTML report has a section over seeds only when a scenario ran with several seeds")
    func htmlSection() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let one = try seeded(lodFixture, seed: 1, in: parent)
        let two = try seeded(lodSeed2, seed: 2, in: parent)
        let grouped = HTMLReport(runs: [one, two], targets: [0.8], baseline: 1, generator: "t")
            .render()
        #expect(grouped.contains("Over seeds: mean ± standard deviation"))
        #expect(grouped.contains("fixture, seeds 1-2"))
        #expect(grouped.contains("3.0 ± 1.4"))
        let alone = HTMLReport(runs: [one], targets: [0.8], baseline: 0, generator: "t").render()
        #expect(!alone.contains("Over seeds"))
    }
}
