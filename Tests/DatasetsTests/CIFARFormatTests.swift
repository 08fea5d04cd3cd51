import Datasets
import Foundation
import TestSupport
import Testing

@Suite("CIFAR-10 and CIFAR-100 binary files")
struct CIFARFormatTests {
    /// The feature the loader must produce for pixel `(row, column)` of `channel`.
    func expectedFeature(
        _ format: CIFARFormat, record: Int, row: Int, column: Int, channel: Int
    ) -> Float {
        let byte = GeneratedDataFiles.cifarPixel(
            record: record, position: channel * 1024 + row * 32 + column)
        return (Float(byte) / 255 - format.channelMeans[channel])
            / format.channelStandardDeviations[channel]
    }

    @Test("CIFAR-10 records become NHWC samples standardized per channel")
    func cifar10Records() throws {
        let bytes = GeneratedDataFiles.cifarRecords(labels: [[3], [9], [0]])
        let set = try CIFARFormat.cifar10.dataset(records: bytes, path: "batch")
        #expect(set.count == 3)
        #expect(set.labels == [3, 9, 0])
        #expect(set.featureShape == [32, 32, 3])
        #expect(set.classCount == 10)
        for (record, row, column, channel) in [(0, 0, 0, 0), (1, 5, 17, 1), (2, 31, 31, 2)] {
            let feature = set.features(ofSample: record)[
                set.features(ofSample: record).startIndex + (row * 32 + column) * 3 + channel]
            #expect(
                feature
                    == expectedFeature(
                        .cifar10, record: record, row: row, column: column, channel: channel))
        }
    }

    @Test("CIFAR-100 takes the fine label by default and the coarse one on request")
    func cifar100Labels() throws {
        let bytes = GeneratedDataFiles.cifarRecords(labels: [[4, 72], [19, 99], [0, 0]])
        let fine = try CIFARFormat.cifar100().dataset(records: bytes, path: "train.bin")
        let coarse = try CIFARFormat.cifar100(labels: .coarse).dataset(
            records: bytes, path: "train.bin")
        #expect(fine.labels == [72, 99, 0])
        #expect(fine.classCount == 100)
        #expect(coarse.labels == [4, 19, 0])
        #expect(coarse.classCount == 20)
        #expect(fine.features == coarse.features)
        let pixel = expectedFeature(.cifar100(), record: 1, row: 2, column: 3, channel: 1)
        #expect(fine.features(ofSample: 1)[32 * 3 * 32 + (2 * 32 + 3) * 3 + 1] == pixel)
    }

    @Test("A folder of batches loads whole, by selected records, and from its parent folder")
    func folder() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let nested = directory.path + "/cifar-10-batches-bin"
        try FileManager.default.createDirectory(atPath: nested, withIntermediateDirectories: true)
        try GeneratedDataFiles.writeCIFAR10(to: nested, perBatch: 2, testCount: 3)
        let format = CIFARFormat.cifar10
        let train = try format.load(split: .train, directory: nested)
        #expect(train.count == 10)
        #expect(train.labels == (0..<10).map { Int32($0 % 10) })
        #expect(try format.labels(split: .train, directory: nested) == train.labels)
        let fromParent = try format.load(split: .train, directory: directory.path)
        #expect(fromParent == train)
        let selected = try format.load(split: .train, directory: nested, selecting: [7, 2, 3, 9])
        #expect(selected == train.subset([7, 2, 3, 9]))
        let test = try format.load(split: .test, directory: nested)
        #expect(test.labels == [0, 3, 6])
        #expect(
            test.features(ofSample: 2).first
                == expectedFeature(format, record: 2, row: 0, column: 0, channel: 0))
    }

    @Test("Bad records name the file, the record and the reason")
    func hostileRecords() throws {
        let good = GeneratedDataFiles.cifarRecords(labels: [[1], [2]])
        let cut = Array(good.prefix(3073 + 100))
        #expect(
            throws: DatasetError.badRecord(
                path: "cut.bin", record: 1,
                reason: "truncated: it holds 100 of the 3073 bytes of a CIFAR-10 record")
        ) { try CIFARFormat.cifar10.dataset(records: cut, path: "cut.bin") }
        let label = GeneratedDataFiles.cifarRecords(labels: [[1], [10]])
        #expect(
            throws: DatasetError.badRecord(
                path: "label.bin", record: 1,
                reason: "label 10 is outside 0..<10 (is this a CIFAR-10 file?)")
        ) { try CIFARFormat.cifar10.dataset(records: label, path: "label.bin") }
        let coarse = GeneratedDataFiles.cifarRecords(labels: [[25, 3]])
        #expect(
            throws: DatasetError.badRecord(
                path: "train.bin", record: 0,
                reason: "coarse label 25 is outside 0..<20 (is this a CIFAR-100 file?)")
        ) { try CIFARFormat.cifar100().dataset(records: coarse, path: "train.bin") }
        #expect(
            throws: DatasetError.badRecord(path: "empty", record: 0, reason: "the file is empty")
        ) { try CIFARFormat.cifar10.dataset(records: [], path: "empty") }
        // CIFAR-10 records read as CIFAR-100: 3073-byte records are not whole 3074-byte ones.
        #expect(throws: DatasetError.self) {
            try CIFARFormat.cifar100().dataset(records: good, path: "wrong")
        }
        for length in stride(from: 0, through: good.count, by: 97) {
            _ = try? CIFARFormat.cifar10.dataset(records: Array(good.prefix(length)), path: "p")
        }
    }

    @Test("Missing files and records past the end are reported with their path")
    func missingAndOutOfRange() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        #expect(throws: DatasetError.fileNotFound(path: directory.path + "/data_batch_1.bin")) {
            try CIFARFormat.cifar10.load(split: .train, directory: directory.path)
        }
        try GeneratedDataFiles.writeCIFAR10(to: directory.path, perBatch: 1, testCount: 1)
        #expect(
            throws: DatasetError.itemOutOfRange(
                path: directory.path + "/data_batch_5.bin", index: 5, itemCount: 5)
        ) {
            try CIFARFormat.cifar10.load(
                split: .train, directory: directory.path, selecting: [0, 5])
        }
        let last = directory.path + "/data_batch_5.bin"
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: last)))
        try Data(bytes.prefix(3000)).write(to: URL(fileURLWithPath: last))
        #expect(
            throws: DatasetError.badRecord(
                path: last, record: 0,
                reason: "truncated: it holds 3000 of the 3073 bytes of a CIFAR-10 record")
        ) { try CIFARFormat.cifar10.load(split: .train, directory: directory.path, selecting: [0]) }
    }
}
