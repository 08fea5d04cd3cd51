import Foundation

/// Small files in the exact formats of the public data sets, made up for tests (no real copy
/// is reachable from the test machines).
public enum GeneratedDataFiles {
    /// The pixel byte at `position` (0..<3072, channel-major) of record `record`: a pattern
    /// that differs per record, channel, row and column.
    public static func cifarPixel(record: Int, position: Int) -> UInt8 {
        UInt8((record * 31 + position * 7 + position / 1024 * 50) % 256)
    }

    /// `labels.count` CIFAR records: each the label bytes of `labels[i]` (one byte for
    /// CIFAR-10, coarse then fine for CIFAR-100), then 3 072 pixels of ``cifarPixel``,
    /// numbered from `firstRecord`.
    public static func cifarRecords(labels: [[UInt8]], firstRecord: Int = 0) -> [UInt8] {
        var bytes: [UInt8] = []
        for (offset, label) in labels.enumerated() {
            bytes += label
            bytes += (0..<3072).map { cifarPixel(record: firstRecord + offset, position: $0) }
        }
        return bytes
    }

    /// A CIFAR-10 folder in `directory`: `perBatch` records in each of the five training
    /// batches (label of record `r`: `r mod 10`) and `testCount` in `test_batch.bin`.
    public static func writeCIFAR10(
        to directory: String, perBatch: Int, testCount: Int
    ) throws {
        for batch in 1...5 {
            let first = (batch - 1) * perBatch
            let labels = (first..<first + perBatch).map { [UInt8($0 % 10)] }
            try Data(cifarRecords(labels: labels, firstRecord: first)).write(
                to: URL(fileURLWithPath: "\(directory)/data_batch_\(batch).bin"))
        }
        let test = (0..<testCount).map { [UInt8(($0 * 3) % 10)] }
        try Data(cifarRecords(labels: test)).write(
            to: URL(fileURLWithPath: "\(directory)/test_batch.bin"))
    }

    /// One writer of a LEAF file: its name, its samples' features and labels.
    public struct Writer {
        public var name: String
        public var x: [[Float]]
        public var y: [Int]

        public init(name: String, x: [[Float]], y: [Int]) {
            self.name = name
            self.x = x
            self.y = y
        }
    }

    /// `count` writers named `f0000_00`, … with `samples(w)` samples of `width` features each
    /// (feature k of sample s of writer w: `((w · 7 + s · 3 + k) mod 256) / 255`, written
    /// with JSON's shortest round-trip digits) and labels `(w + s) mod classCount`.
    public static func leafWriters(
        count: Int, width: Int, classCount: Int, samples: (Int) -> Int
    ) -> [Writer] {
        (0..<count).map { writer in
            let sampleCount = samples(writer)
            return Writer(
                name: "f\(String(format: "%04d", writer))_\(String(format: "%02d", writer % 100))",
                x: (0..<sampleCount).map { sample in
                    (0..<width).map { Float((writer * 7 + sample * 3 + $0) % 256) / 255 }
                },
                y: (0..<sampleCount).map { (writer + $0) % classCount })
        }
    }

    /// The JSON text LEAF writes for `writers`: `users`, `num_samples`, then `user_data`,
    /// with `extra` (raw JSON members) first, as LEAF's FEMNIST carries `hierarchies`.
    public static func leafJSON(_ writers: [Writer], extra: String = "") -> String {
        let users = writers.map { "\"\($0.name)\"" }.joined(separator: ", ")
        let counts = writers.map { "\($0.x.count)" }.joined(separator: ", ")
        let data = writers.map { writer in
            let x = writer.x.map { "[" + $0.map { "\($0)" }.joined(separator: ", ") + "]" }
            let y = writer.y.map(String.init).joined(separator: ", ")
            return "\"\(writer.name)\": {\"x\": [\(x.joined(separator: ", "))], \"y\": [\(y)]}"
        }.joined(separator: ", ")
        return "{\(extra)\"users\": [\(users)], \"num_samples\": [\(counts)], "
            + "\"user_data\": {\(data)}}"
    }
}
