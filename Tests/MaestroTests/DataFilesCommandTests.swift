import Foundation
import TestSupport
import Testing

@Suite("train and eval on CIFAR-10 and FEMNIST files")
struct DataFilesCommandTests {
    @Test("maestro train --dataset cifar10 trains on a generated folder, and eval reads it back")
    func cifar10() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try GeneratedDataFiles.writeCIFAR10(to: directory, perBatch: 12, testCount: 20)
        let model = "\(directory)/cifar.maestro"
        let train = try maestro([
            "train", "--dataset", "cifar10", "--data-dir", directory, "--model", "lenet",
            "--epochs", "1", "--batch-size", "16", "--out", model,
        ])
        #expect(train.status == 0, "\(train.error)")
        #expect(train.output.contains("training LoD lenet on cifar10: 60 train / 20 test samples"))
        let evaluation = try maestro(["eval", model])
        #expect(evaluation.status == 0, "\(evaluation.error)")
        #expect(evaluation.output.contains("fraction  accuracy"))
        // A damaged batch is named, with the record and the reason.
        let batch = "\(directory)/data_batch_3.bin"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: batch))
        try bytes.prefix(bytes.count - 10).write(to: URL(fileURLWithPath: batch))
        let damaged = try maestro([
            "train", "--dataset", "cifar10", "--data-dir", directory, "--model", "mlp",
            "--epochs", "1", "--out", model,
        ])
        #expect(damaged.status != 0)
        #expect(
            damaged.error.contains(
                "\(batch): record 11: truncated: it holds 3063 of the 3073 bytes"))
    }

    @Test("maestro train --dataset femnist reads LEAF's train and test folders")
    func femnist() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (split, count) in [("train", 4), ("test", 2)] {
            try FileManager.default.createDirectory(
                atPath: "\(directory)/\(split)", withIntermediateDirectories: true)
            let writers = GeneratedDataFiles.leafWriters(count: count, width: 784, classCount: 62) {
                $0 + 2
            }
            try GeneratedDataFiles.leafJSON(writers).write(
                toFile: "\(directory)/\(split)/all_data_0_\(split).json", atomically: true,
                encoding: .utf8)
        }
        let result = try maestro([
            "train", "--dataset", "femnist", "--data-dir", directory, "--model", "lenet",
            "--epochs", "1", "--batch-size", "4", "--out", "\(directory)/femnist.maestro",
        ])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("on femnist: 14 train / 5 test samples"))
    }
}
