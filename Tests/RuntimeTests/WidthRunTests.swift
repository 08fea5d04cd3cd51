import Datasets
import Fleet
import Foundation
import Runtime
import TestSupport
import Testing

/// Width strategies over the in-memory transport, end to end: TRAIN, local training, UPDATE,
/// checks, aggregation, evaluation per tier, the ledger and the summary.
@Suite("Federated runs of the width strategies", .serialized)
struct WidthRunTests {
    /// Two rounds of 4 clients (2 per tier, fractions 0.5 and 1) of `architecture` under
    /// `strategy` on `dataset`.
    func scenario(strategy: String, architecture: String, dataset: String) throws -> Scenario {
        try Scenario.parse(
            yaml: """
                name: width-run
                seed: 5
                clients: 4
                rounds: 2
                clientsPerRound: 4
                dataset: \(dataset)
                model: {architecture: \(architecture), strategy: \(strategy)}
                training: {localEpochs: 1, batchSize: 8, learningRate: 0.05, momentum: 0.5}
                evaluation: {period: 1}
                tiers:
                  - {name: small, count: 2, rankFraction: 0.5, gflops: 1, uplinkMbps: 1, downlinkMbps: 4}
                  - {name: large, count: 2, rankFraction: 1, gflops: 4, uplinkMbps: 8, downlinkMbps: 16}
                """)
    }

    @Test(
        "The MLP under each width strategy: the ledger is the bytes moved and the summary's",
        arguments: ["heteroFL", "fjord", "fedRolex", "smallModel"])
    func mlp(strategy: String) throws {
        let directory = temporaryRunDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let writers = GeneratedDataFiles.leafWriters(count: 8, width: 16, classCount: 4) {
            $0 % 3 + 4
        }
        try GeneratedDataFiles.leafJSON(writers).write(
            toFile: "\(directory)/train.json", atomically: true, encoding: .utf8)
        try GeneratedDataFiles.leafJSON(writers).write(
            toFile: "\(directory)/test.json", atomically: true, encoding: .utf8)
        let scenario = try scenario(
            strategy: strategy, architecture: "mlp",
            dataset: "{name: leaf, train: \(directory)/train.json, test: \(directory)/test.json, "
                + "shape: [4, 4, 1], classes: 4, partition: {scheme: iid}}")
        let run = try runInProcess(scenario, startOrder: [2, 0, 3, 1], delayMicroseconds: [0])
        #expect(run.summary.rounds == 2)
        #expect(run.summary.strategy == strategy)
        #expect(run.ledgerBytes == run.transportBytes)
        #expect(run.ledgerBytes == run.summary.bytesUp + run.summary.bytesDown)
        let small = try #require(run.summary.tiers.first { $0.tier == "small" })
        let large = try #require(run.summary.tiers.first { $0.tier == "large" })
        #expect(small.participations == 4 && large.participations == 4)
        // Half of 300 and 100 units: 16·150 + 150 + 150·50 + 50 + 50·4 + 4 parameters.
        #expect(small.parameters == 10_304)
        #expect(large.parameters == (strategy == "smallModel" ? 10_304 : 35_604))
        if strategy == "smallModel" {
            #expect(small.bytes == large.bytes)
            #expect(small.accuracy == large.accuracy)
        } else {
            #expect(small.bytes < large.bytes)
            #expect(try #require(small.macs) < (try #require(large.macs)))
        }
        #expect(small.accuracy != nil && large.accuracy != nil)
        // Coverage of the hidden layers' 300 and 100 units over the 2 rounds: the full tier
        // trains every unit in both, except under smallModel, where only the half prefix is
        // ever trained.
        let coverage = try #require(run.summary.widthCoverage)
        #expect(coverage.map(\.channels) == [300, 100])
        #expect(coverage.allSatisfy { $0.kind == "dense" })
        for layer in coverage {
            if strategy == "smallModel" {
                #expect(layer.trainedChannels == layer.channels / 2)
                #expect(layer.coverage == 0.5)
                #expect((layer.roundsMin, layer.roundsMean, layer.roundsMax) == (0, 1, 2))
            } else {
                #expect(layer.trainedChannels == layer.channels)
                #expect(layer.coverage == 1)
                #expect((layer.roundsMin, layer.roundsMean, layer.roundsMax) == (2, 2, 2))
            }
        }
    }

    @Test(
        "ResNet-8 (identity and projection shortcuts, group norm) under heteroFL and fedRolex",
        arguments: ["heteroFL", "fedRolex"])
    func resnet(strategy: String) throws {
        let directory = temporaryRunDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try GeneratedDataFiles.writeCIFAR10(to: directory, perBatch: 2, testCount: 4)
        let scenario = try scenario(
            strategy: strategy, architecture: "resnet8",
            dataset: "{name: cifar10, directory: \(directory), partition: {scheme: iid}}")
        let run = try runInProcess(scenario, startOrder: [0, 1, 2, 3], delayMicroseconds: [0])
        #expect(run.summary.rounds == 2)
        #expect(run.ledgerBytes == run.transportBytes)
        #expect(run.ledgerBytes == run.summary.bytesUp + run.summary.bytesDown)
        let small = try #require(run.summary.tiers.first { $0.tier == "small" })
        let large = try #require(run.summary.tiers.first { $0.tier == "large" })
        #expect(small.parameters < large.parameters / 3)
        let (smallFLOPs, largeFLOPs) = (
            try #require(small.trainingFlopsPerSample), try #require(large.trainingFlopsPerSample)
        )
        #expect(smallFLOPs < largeFLOPs / 3)
    }
}
