import Federation
import Fleet
import Foundation
import LowRank
import Tensors
import TestSupport
import Testing
import Vocabulary

@testable import Runtime

private let smokePath = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Scenarios/smoke.yaml").path

@Suite("Batch normalisation in the fleet: statistics recomputed per tier budget")
struct BatchNormCalibrationTests {
    /// A 1×1 LoD convolution (2 → 2 channels, rank ≤ 2) on 1×1×2 images, batch norm, and a
    /// dense output layer, with weights written out so statistics can be computed by hand.
    static func tinyNetwork() throws -> Network {
        let architecture = try Architecture(
            name: "tiny",
            layers: [
                .convolution(channels: 2, kernel: 1, stride: 1, padding: 0, factored: true),
                .batchNormalization, .flatten, .dense(outputs: nil, factored: false),
            ], inputShape: [1, 1, 2], classCount: 2, lowRank: true, factoredMinimumWeights: 0)
        // Conv: up (Uᵀ, [rank, outputs]), down (V, [rank, patch]), bias; then BN scale and
        // shift; then the dense weight and bias.
        return Network(
            architecture: architecture,
            parameters: [
                Tensor(shape: [2, 2], scalars: [1, 2, 3, -1]),
                Tensor(shape: [2, 2], scalars: [1, 1, 2, -1]),
                Tensor(shape: [2], scalars: [0.5, 0]),
                Tensor(shape: [2], scalars: [1, 1]), Tensor(zeros: [2]),
                Tensor(shape: [2, 2], scalars: [1, 0, 0, 1]), Tensor(zeros: [2]),
            ], keptRanks: [2])
    }

    /// Three images `(x₀, x₁)`: (1, 2), (3, −1), (0, 1).
    static let samples = TrainingSamples(
        features: [1, 2, 3, -1, 0, 1], labels: [0, 1, 0], featureCount: 2)

    @Test("A tier's statistics are the mean and unbiased variance of its own rank's activations")
    func handComputed() throws {
        let network = try Self.tinyNetwork()
        let calibration = BatchNormCalibration(samples: Self.samples)
        // Rank 1: h = x₀ + x₁ = 3, 2, 1; channel 0 = h + 0.5 = 3.5, 2.5, 1.5 (mean 2.5,
        // variance 1); channel 1 = 2h = 6, 4, 2 (mean 4, variance 4).
        let low = calibration.calibrated(BatchNormCalibration.cut(network, toRanks: [1]))
        #expect(low.keptRanks == [1])
        #expect(isClose(low.state[0], Tensor(shape: [2], scalars: [2.5, 4]), tolerance: 1e-6))
        #expect(isClose(low.state[1], Tensor(shape: [2], scalars: [1, 4]), tolerance: 1e-6))
        // Rank 2 adds h₂ = 2x₀ − x₁ = 0, 7, −1: channel 0 = h + 3h₂ + 0.5 = 3.5, 23.5, −1.5
        // (mean 8.5, variance (25 + 225 + 100) / 2 = 175); channel 1 = 2h − h₂ = 6, −3, 3
        // (mean 2, variance (16 + 25 + 1) / 2 = 21).
        let full = calibration.calibrated(network)
        #expect(isClose(full.state[0], Tensor(shape: [2], scalars: [8.5, 2]), tolerance: 1e-5))
        #expect(isClose(full.state[1], Tensor(shape: [2], scalars: [175, 21]), tolerance: 1e-4))
        #expect(full.parameters == network.parameters)
        // Without batch normalisation or without images, nothing changes.
        #expect(BatchNormCalibration(samples: nil).calibrated(network) == network)
    }

    /// Smoke's fleet with a small batch-normalised CNN under `strategy`, a coordinator for it
    /// and 64 made-up calibration images (the machine does not read data to evaluate).
    static func machine(strategy: String) throws -> (CoordinatorMachine, TrainingSamples) {
        let scenario = try Scenario.load(
            path: smokePath
        ).overriding([
            (
                "model.architecture",
                "[{conv: {channels: 8, kernel: 3, padding: 1}}, relu, maxpool, "
                    + "{conv: {channels: 8, kernel: 3, padding: 1}}, batchnorm, relu, maxpool, "
                    + "flatten, {dense: classes}]"
            ),
            ("model.strategy", strategy), ("evaluation.validationSamples", "64"),
            ("training.sampler", strategy == "orderedLoD" ? "perLayer" : "none"),
            ("training.fullBudgetProbability", strategy == "orderedLoD" ? "0.5" : "0"),
            ("training.coverageDamping", strategy == "orderedLoD" ? "true" : "false"),
        ])
        var generator = SeededGenerator(seed: 3)
        let images = TrainingSamples(
            features: (0..<(64 * 784)).map { _ in Float.random(in: 0..<1, using: &generator) },
            labels: (0..<64).map { Int32($0 % 10) }, featureCount: 784)
        let machine = try CoordinatorMachine(
            scenario: scenario, evaluationSet: images, validationSet: images,
            expectedClients: nil, registrationTimeout: .seconds(10), roundTimeout: .seconds(5),
            maximumMessageSize: 1 << 24, resumingFrom: nil)
        return (machine, images)
    }

    @Test(
        "Ordered LoD: each tier's model is cut to its budget and carries that budget's statistics")
    func rankTiers() throws {
        let (machine, images) = try Self.machine(strategy: "orderedLoD")
        let global = machine.global
        let tiers = try #require(machine.calibratedTierModels(of: global))
        #expect(tiers.count == 2)
        let lowRanks = machine.budgets(tierIndex: 0)
        #expect(tiers[0].keptRanks == lowRanks)
        let expected = BatchNormCalibration.cut(global, toRanks: lowRanks).recalibrated(
            on: images, batchSize: BatchNormCalibration.batchSize)
        #expect(tiers[0] == expected)
        #expect(
            tiers[1] == global.recalibrated(on: images, batchSize: BatchNormCalibration.batchSize))
        #expect(tiers[0].state[0] != tiers[1].state[0], "a quarter of the ranks, other statistics")
        // Deterministic: the same parameters and images give the same statistics, bit for bit.
        #expect(machine.calibratedTierModels(of: global) == tiers)
    }

    @Test("HeteroFL's static batch norm: a tier evaluates with statistics of its own slice")
    func widthTiers() throws {
        let (machine, images) = try Self.machine(strategy: "heteroFL")
        let global = machine.global
        let tiers = try #require(machine.calibratedTierModels(of: global))
        let spaces = try #require(machine.scenario.channelSpaces(of: global.architecture))
        let slice = machine.scenario.deployedWidthPlan(spaces, tier: machine.scenario.tiers[0])
        let low = slice.gather(global)
        #expect(low.parameterCount(ranks: []) < global.parameterCount(ranks: []))
        #expect(tiers[0] == low.recalibrated(on: images, batchSize: BatchNormCalibration.batchSize))
        // Not the full model's statistics cut to the slice's channels: the second convolution
        // of the slice sums over fewer input channels.
        let fullThenSliced = slice.gather(
            global.recalibrated(on: images, batchSize: BatchNormCalibration.batchSize))
        #expect(tiers[0].state[0].scalars != fullThenSliced.state[0].scalars)
        #expect(tiers[0].parameters == fullThenSliced.parameters)
        // Its evaluation runs the calibrated slice.
        let rows = BatchNormCalibration.evaluate(tiers, on: images)
        #expect(rows[0].accuracy == tiers[0].evaluate(on: images).accuracy)
    }
}
