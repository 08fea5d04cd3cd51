import Federation
import Fleet
import Foundation
import LowRank
import RunRecords
import TestSupport
import Testing
import Transport

@testable import Runtime

/// Width coverage as the coordinator keeps it: recorded from the aggregated rounds' slices,
/// reported in the summary, carried through a checkpoint and checked when resumed.
@Suite("Width coverage through the coordinator and its checkpoint")
struct WidthCoverageRunTests {
    /// The synthetic scenario's 8 clients under fedRolex with the MLP on generated 4×4 LEAF
    /// images (in `directory`), both tiers at 0.3: a window of 90 of the first hidden layer's
    /// 300 units and 30 of the second's 100.
    func overrides(directory: String) throws -> [(keyPath: String, value: String)] {
        let writers = GeneratedDataFiles.leafWriters(count: 8, width: 16, classCount: 4) {
            $0 % 3 + 4
        }
        for file in ["train", "test"] {
            try GeneratedDataFiles.leafJSON(writers).write(
                toFile: "\(directory)/\(file).json", atomically: true, encoding: .utf8)
        }
        return [
            (
                "dataset",
                "{name: leaf, train: \(directory)/train.json, test: \(directory)/test.json, "
                    + "shape: [4, 4, 1], classes: 4, partition: {scheme: iid}}"
            ),
            ("model.strategy", "fedRolex"), ("model.architecture", "mlp"),
            ("training.sampler", "none"), ("rounds", "3"), ("clientsPerRound", "8"),
            ("tiers[1].rankFraction", "0.3"),
        ]
    }

    @Test("Three rounds of a rolling window: counted per unit, kept by the checkpoint")
    func rollingWindowRun() throws {
        let directory = temporaryRunDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let overrides = try overrides(directory: directory)
        var run = try MachineHarness(overrides)
        let checkpoint = run.runThreeRoundsOfEight()
        #expect(run.finished)
        #expect(run.commits.allSatisfy { $0.participants.count == 8 })
        let summary = run.machine.summary(statistics: TransportStatistics(), wallSeconds: 1)
        let coverage = try #require(summary.widthCoverage)
        #expect(coverage.map(\.channels) == [300, 100])
        // Windows start at units 0, 1, 2: units 0…91 of 300 (counts 1, 2, 3 × 88, 2, 1) and
        // units 0…31 of 100 (1, 2, 3 × 28, 2, 1); 270 and 90 unit-rounds in all.
        #expect(coverage.map(\.trainedChannels) == [92, 32])
        #expect(coverage.map(\.roundsMin) == [0, 0])
        #expect(coverage.map(\.roundsMax) == [3, 3])
        #expect(coverage[0].roundsMean == 270.0 / 300)
        #expect(coverage[1].roundsMean == 90.0 / 100)
        #expect(coverage[0].coverage == 92.0 / 300)

        // After round 2 the checkpoint holds windows {0…89} and {1…90} of the first layer.
        let saved = try #require(checkpoint)
        let counts = try #require(saved.header.widthRoundsTrained)
        #expect(counts.count == 4)
        #expect(counts[1].prefix(3) == [1, 2, 2] && counts[1][89...91] == [2, 1, 0])
        let decoded = try CoordinatorCheckpoint(bytes: saved.encoded(), path: "checkpoint.bin")
        #expect(decoded.header.widthRoundsTrained == counts)
        let resumed = try MachineHarness(overrides, resumingFrom: decoded)
        #expect(resumed.machine.totals.widthCoverage?.roundsTrained == counts)

        // Counts that do not fit the model, or exceed the rounds run, are refused.
        let refused: [[[Int]]] = [[[], [1, 2], [], []], counts.map { $0.map { $0 * 2 } }]
        for bad in refused {
            var crafted = saved
            crafted.header.widthRoundsTrained = bad
            #expect(throws: CoordinatorError.self) {
                _ = try MachineHarness(overrides, resumingFrom: crafted)
            }
        }
    }

    @Test("Strategies that do not slice widths report no coverage")
    func noCoverageOutsideWidth() throws {
        let run = try MachineHarness([("rounds", "1")])
        let summary = run.machine.summary(statistics: TransportStatistics(), wallSeconds: 1)
        #expect(summary.widthCoverage == nil)
        let checkpoint = run.machine.checkpoint(statistics: TransportStatistics(), wallSeconds: 1)
        #expect(checkpoint.header.widthRoundsTrained == nil)
    }
}
