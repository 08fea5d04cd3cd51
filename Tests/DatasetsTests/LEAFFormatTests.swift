import Foundation
import TestSupport
import Testing

@testable import Datasets

@Suite("LEAF JSON files and the natural partition")
struct LEAFFormatTests {
    let layout = LEAFFormat.Layout(featureShape: [2, 2, 1], classCount: 5)

    func writers(_ count: Int = 3) -> [GeneratedDataFiles.Writer] {
        GeneratedDataFiles.leafWriters(count: count, width: 4, classCount: 5) { $0 + 1 }
    }

    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test("A LEAF file parses into its writers' samples, in user_data order")
    func parse() throws {
        let writers = writers()
        let json = GeneratedDataFiles.leafJSON(writers, extra: "\"hierarchies\": [], ")
        let set = try LEAFFormat.dataset(json: bytes(json), path: "train.json", layout: layout)
        #expect(set.count == 6)
        #expect(set.featureShape == [2, 2, 1])
        #expect(set.classCount == 5)
        #expect(set.labels == writers.flatMap(\.y).map(Int32.init))
        #expect(set.features == writers.flatMap { $0.x.flatMap { $0 } })
        let index = try LEAFFormat.index(json: bytes(json), path: "train.json", layout: layout)
        #expect(index.writers == writers.map(\.name))
        #expect(index.samplesPerWriter == [1, 2, 3])
        #expect(index.labels == set.labels)
    }

    @Test("Nested x lists flatten row-major, keys come in any order, chunks split anywhere")
    func layoutsAndChunks() throws {
        let nested = """
            {"user_data": {"b": {"y": [4], "x": [[[0.5, 1e-1], [2, -3.25E+0]]]}},
             "num_samples": [1], "users": ["b"], "extra": {"k": [true, null, "s\\u00e9"]}}
            """
        let set = try LEAFFormat.dataset(json: bytes(nested), path: "n.json", layout: layout)
        #expect(set.features == [0.5, 0.1, 2, -3.25])
        #expect(set.labels == [4])
        let json = bytes(GeneratedDataFiles.leafJSON(writers()))
        let whole = try LEAFFormat.dataset(json: json, path: "w.json", layout: layout)
        for chunk in [1, 7, 64] {
            let directory = try TemporaryDirectory()
            defer { directory.cleanUp() }
            let path = try directory.write(json, to: "w.json")
            var reader = LEAFReader(layout: layout, keeping: nil)
            try reader.read(FileChunks(path: path, chunkBytes: chunk), path: path)
            #expect(try reader.dataset(selection: nil, lastFile: path) == whole)
        }
    }

    @Test("A folder of files loads in name order, whole or by selected samples")
    func folder() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let all = writers(5)
        _ = try directory.write(bytes(GeneratedDataFiles.leafJSON(Array(all[3...]))), to: "b.json")
        _ = try directory.write(bytes(GeneratedDataFiles.leafJSON(Array(all[..<3]))), to: "a.json")
        _ = try directory.write([0xFF], to: "notes.txt")
        let set = try LEAFFormat.load(path: directory.path, layout: layout)
        #expect(set.count == 15)
        #expect(set.features == all.flatMap { $0.x.flatMap { $0 } })
        let index = try LEAFFormat.index(path: directory.path, layout: layout)
        #expect(index.writers == all.map(\.name))
        #expect(index.files == [directory.path + "/a.json", directory.path + "/b.json"])
        let selection = [14, 0, 7, 6, 7]
        let selected = try LEAFFormat.load(
            path: directory.path, layout: layout, selecting: selection)
        #expect(selected == set.subset(selection))
        #expect(
            throws: DatasetError.itemOutOfRange(
                path: directory.path + "/b.json", index: 15, itemCount: 15)
        ) { try LEAFFormat.load(path: directory.path, layout: layout, selecting: [15]) }
        let empty = directory.path + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        #expect(
            throws: DatasetError.tooFewSamples(
                path: empty, reason: "the folder holds no .json file")
        ) { try LEAFFormat.load(path: empty, layout: layout) }
    }

    /// The error of parsing `json`, or nil.
    func error(_ json: String) -> DatasetError? {
        do {
            _ = try LEAFFormat.dataset(json: bytes(json), path: "bad.json", layout: layout)
            return nil
        } catch { return error }
    }

    @Test("Every malformed input names the file, the user or sample, and the reason")
    func hostile() throws {
        func file(_ data: String, users: String = "[\"u\"]", counts: String = "[2]") -> String {
            "{\"users\": \(users), \"num_samples\": \(counts), \"user_data\": {\(data)}}"
        }
        let row = "[0.1, 0.2, 0.3, 0.4]"
        let cases: [(String, DatasetError)] = [
            (
                file("\"u\": {\"x\": [\(row), [0.1, 0.2, 0.3]], \"y\": [1, 2]}"),
                .badSample(
                    path: "bad.json", writer: "u", sample: 1,
                    reason: "x holds 3 numbers, expected 4 (shape 2 × 2 × 1)")
            ),
            (
                file("\"u\": {\"x\": [\(row), [0.1, 0.2, 0.3, 0.4, 0.5]], \"y\": [1, 2]}"),
                .badSample(
                    path: "bad.json", writer: "u", sample: 1,
                    reason: "x holds more than the 4 numbers of the layout (ragged)")
            ),
            (
                file("\"u\": {\"x\": [\(row), [0.1, NaN, 0.3, 0.4]], \"y\": [1, 2]}"),
                .badSample(path: "bad.json", writer: "u", sample: 1, reason: "x[1] is NaN")
            ),
            (
                file("\"u\": {\"x\": [[1e999, 0, 0, 0], \(row)], \"y\": [1, 2]}"),
                .badSample(
                    path: "bad.json", writer: "u", sample: 0, reason: "x[0] is not finite (inf)")
            ),
            (
                file("\"u\": {\"x\": [\(row), \(row)], \"y\": [1, 5]}"),
                .badSample(
                    path: "bad.json", writer: "u", sample: 1, reason: "label 5 is outside 0..<5")
            ),
            (
                file("\"u\": {\"x\": [\(row), \(row)], \"y\": [1, 2.5]}"),
                .badSample(
                    path: "bad.json", writer: "u", sample: 1, reason: "label 2.5 is not an integer")
            ),
            (
                file("\"u\": {\"x\": [\(row), 7], \"y\": [1, 2]}"),
                .badSample(
                    path: "bad.json", writer: "u", sample: 1, reason: "x is not a list of numbers")
            ),
            (
                file("\"u\": {\"x\": [], \"y\": []}", counts: "[0]"),
                .badWriter(path: "bad.json", writer: "u", reason: "has no samples")
            ),
            (
                file("\"u\": {\"x\": [\(row), \(row)], \"y\": [1]}"),
                .badWriter(
                    path: "bad.json", writer: "u",
                    reason: "\"x\" holds 2 samples but \"y\" 1 labels")
            ),
            (
                file("\"u\": {\"x\": [\(row), \(row)]}"),
                .badWriter(path: "bad.json", writer: "u", reason: "has no \"y\" (labels)")
            ),
            (
                file(
                    "\"u\": {\"x\": [\(row)], \"y\": [1]}, \"u\": {\"x\": [\(row)], \"y\": [1]}",
                    counts: "[1]"),
                .badWriter(path: "bad.json", writer: "u", reason: "appears twice in user_data")
            ),
            (
                file(
                    "\"u\": {\"x\": [\(row), \(row)], \"y\": [1, 2]}", users: "[\"u\", \"u\"]",
                    counts: "[2, 2]"),
                .badWriter(path: "bad.json", writer: "u", reason: "appears twice in users")
            ),
            (
                file("\"u\": {\"x\": [\(row), \(row)], \"y\": [1, 2]}", counts: "[3]"),
                .badWriter(
                    path: "bad.json", writer: "u",
                    reason: "num_samples says 3, but user_data holds 2 samples")
            ),
            (
                file("\"v\": {\"x\": [\(row), \(row)], \"y\": [1, 2]}"),
                .badWriter(path: "bad.json", writer: "u", reason: "has no user_data entry")
            ),
        ]
        for (json, expected) in cases {
            #expect(error(json) == expected, "\(json)")
        }
        let malformed = [
            "", "[]", "{\"users\": [\"u\"]", file("\"u\": {\"x\": [\(row),], \"y\": [1]}"),
            file("\"u\": {\"x\": [\(row)], \"y\": [1]}", counts: "[1]") + " trailing",
            file("\"u\": {\"x\": [[+1, 0, 0, 0]], \"y\": [0]}", counts: "[1]"),
            file("\"u\": {\"x\": [[01, 0, 0, 0]], \"y\": [0]}", counts: "[1]"),
            file("\"u\": {\"x\": [[0x1, 0, 0, 0]], \"y\": [0]}", counts: "[1]"),
            file("\"u\": {\"x\": [[inf, 0, 0, 0]], \"y\": [0]}", counts: "[1]"),
            "{\"users\": [\"\\ud800\"]}",
            String(repeating: "[", count: 100),
        ]
        for json in malformed {
            guard case .malformedJSON(let path, _, _) = error(json) else {
                Issue.record(
                    "\(json): expected malformedJSON, got \(String(describing: error(json)))")
                continue
            }
            #expect(path == "bad.json")
        }
        #expect(error("{\"hierarchies\": \(String(repeating: "[", count: 100))") != nil)
        #expect(
            error(
                file("\"u\": {\"x\": [\(row), \(row)], \"y\": [1, 2]}", users: "[]", counts: "[]"))
                == .badWriter(
                    path: "bad.json", writer: "u", reason: "has user_data but is not in users"))
    }

    @Test("A writer in two files of a split is reported with both files")
    func writerInTwoFiles() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let all = writers(3)
        _ = try directory.write(bytes(GeneratedDataFiles.leafJSON(Array(all[..<2]))), to: "a.json")
        _ = try directory.write(bytes(GeneratedDataFiles.leafJSON(Array(all[1...]))), to: "b.json")
        #expect(
            throws: DatasetError.badWriter(
                path: directory.path + "/b.json", writer: all[1].name,
                reason: "also appears in \(directory.path)/a.json")
        ) { try LEAFFormat.index(path: directory.path, layout: layout) }
    }

    @Test("Every prefix and many corruptions of a valid file throw or parse, never trap")
    func neverTraps() throws {
        let original = bytes(GeneratedDataFiles.leafJSON(writers(2)))
        for length in 0..<original.count {
            #expect(error(String(decoding: original.prefix(length), as: UTF8.self)) != nil)
        }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var parsed = 0
        for _ in 0..<1_000 {
            var damaged = original
            for _ in 0..<2 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                damaged[Int(state >> 33) % damaged.count] = UInt8(truncatingIfNeeded: state >> 20)
            }
            if (try? LEAFFormat.dataset(json: damaged, path: "d", layout: layout)) != nil {
                parsed += 1
            }
        }
        #expect(parsed < 1_000)
    }

    @Test("The natural partition deals writers round-robin, each writer on one client")
    func natural() {
        let counts = [3, 1, 2, 4, 1]
        #expect(
            naturalPartition(samplesPerWriter: counts, clientCount: 5)
                == [[0, 1, 2], [3], [4, 5], [6, 7, 8, 9], [10]])
        #expect(
            naturalPartition(samplesPerWriter: counts, clientCount: 2)
                == [[0, 1, 2, 4, 5, 10], [3, 6, 7, 8, 9]])
        #expect(naturalPartition(samplesPerWriter: counts, clientCount: 1) == [Array(0..<11)])
    }
}
