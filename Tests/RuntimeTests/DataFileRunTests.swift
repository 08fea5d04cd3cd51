import Datasets
import Fleet
import Foundation
import Runtime
import TestSupport
import Testing

/// A two-round scenario of `clients` clients on the data set `dataset` (a YAML flow mapping).
func dataFileScenario(dataset: String, clients: Int) throws -> Scenario {
    try Scenario.parse(
        yaml: """
            name: data-files
            seed: 5
            clients: \(clients)
            rounds: 2
            clientsPerRound: \(clients)
            dataset: \(dataset)
            model: {architecture: mlp, strategy: orderedLoD}
            training: {localEpochs: 1, batchSize: 8, learningRate: 0.05}
            evaluation: {period: 1}
            tiers:
              - {name: small, share: 0.5, rankFraction: 0.5, gflops: 1, uplinkMbps: 1, downlinkMbps: 4}
              - {name: large, share: 0.5, rankFraction: 1, gflops: 4, uplinkMbps: 8, downlinkMbps: 16}
            """)
}

@Suite("Federated runs on CIFAR and LEAF files", .serialized)
struct DataFileRunTests {
    @Test("LEAF, natural partition: each client holds whole writers, and a run completes")
    func leafNatural() throws {
        let directory = temporaryRunDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let writers = GeneratedDataFiles.leafWriters(count: 5, width: 16, classCount: 4) {
            $0 % 2 + 2
        }
        try FileManager.default.createDirectory(
            atPath: "\(directory)/train", withIntermediateDirectories: true)
        try GeneratedDataFiles.leafJSON(Array(writers[..<3])).write(
            toFile: "\(directory)/train/a.json", atomically: true, encoding: .utf8)
        try GeneratedDataFiles.leafJSON(Array(writers[3...])).write(
            toFile: "\(directory)/train/b.json", atomically: true, encoding: .utf8)
        try GeneratedDataFiles.leafJSON(writers).write(
            toFile: "\(directory)/test.json", atomically: true, encoding: .utf8)
        let scenario = try dataFileScenario(
            dataset:
                "{name: leaf, train: \(directory)/train, test: \(directory)/test.json, "
                + "shape: [4, 4, 1], classes: 4, partition: natural}",
            clients: 2)
        #expect(scenario.inputShape == [4, 4, 1])
        #expect(scenario.classCount == 4)
        // Writers 0, 2, 4 (2 + 2 + 2 samples) on client 0; writers 1, 3 (3 + 3) on client 1.
        #expect(try scenario.partitionRows() == [[0, 1, 5, 6, 10, 11], [2, 3, 4, 7, 8, 9]])
        let second = try scenario.clientSamples(index: 1)
        #expect(second.labels == [writers[1], writers[3]].flatMap(\.y).map(Int32.init))
        #expect(second.features == [writers[1], writers[3]].flatMap { $0.x.flatMap { $0 } })
        #expect(try scenario.evaluationSamples().count == 12)
        let run = try runInProcess(scenario, startOrder: [0, 1], delayMicroseconds: [0])
        #expect(run.summary.rounds == 2)
        #expect(run.metrics.count == 2)

        let crowded = try dataFileScenario(
            dataset:
                "{name: leaf, train: \(directory)/train, test: \(directory)/test.json, "
                + "shape: [4, 4, 1], classes: 4, partition: natural}",
            clients: 6)
        #expect(
            throws: DatasetError.tooFewSamples(
                path: "\(directory)/train",
                reason:
                    "5 writers cannot give each of 6 clients one (partition natural deals whole "
                    + "writers)")
        ) { try crowded.partitionRows() }
    }

    @Test("CIFAR-10, Dirichlet partition: clients read their own records, and a run completes")
    func cifar10() throws {
        let directory = temporaryRunDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try GeneratedDataFiles.writeCIFAR10(to: directory, perBatch: 8, testCount: 10)
        let scenario = try dataFileScenario(
            dataset: "{name: cifar10, directory: \(directory), partition: {scheme: iid}}",
            clients: 4)
        #expect(scenario.inputShape == [32, 32, 3])
        let rows = try #require(try scenario.partitionRows())
        #expect(rows.map(\.count) == [10, 10, 10, 10])
        #expect(Set(rows.flatMap { $0 }) == Set(0..<40))
        let whole = try CIFARFormat.cifar10.load(split: .train, directory: directory)
        let client = try scenario.clientSamples(index: 2, rows: rows[2].map(UInt32.init))
        #expect(client.features == whole.subset(rows[2]).features)
        #expect(try scenario.clientSamples(index: 2).labels == whole.subset(rows[2]).labels)
        let run = try runInProcess(scenario, startOrder: [3, 1, 0, 2], delayMicroseconds: [0])
        #expect(run.summary.rounds == 2)
    }
}

/// A fresh folder for one test's files.
func temporaryRunDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(
        "maestro-data-\(UUID().uuidString)"
    ).path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
