/// LEAF's JSON data files: FEMNIST and the other LEAF sets whose samples are vectors of numbers.
///
/// LEAF: Caldas et al. 2018, "LEAF: A Benchmark for Federated Settings".
///
/// A file is one object:
/// `{"users": [u, …], "num_samples": [n, …], "user_data": {u: {"x": [[…], …], "y": […]}}}`
/// (other top-level keys, such as `hierarchies`, are skipped). Each `x` entry is one sample's
/// features, a list of numbers (nested lists are flattened row-major), and each `y` entry its
/// integer label. A split may span several files (LEAF's `data/train/*.json`): they are read
/// in name order and a writer may appear in only one of them.
///
/// Samples are numbered in the order the files hold them: file by file, writer by writer in
/// `user_data` order, each writer's samples in order. A writer's samples are therefore one
/// run of consecutive rows (see ``naturalPartition(samplesPerWriter:clientCount:)``).
///
/// Files are read in chunks of 1 MiB and parsed as they arrive: memory holds one chunk, the
/// writers and labels, and the features of the samples kept, never the JSON text.
public enum LEAFFormat {
    /// What each sample holds: its feature shape and the number of classes.
    public struct Layout: Sendable, Equatable {
        /// The shape of one sample's features (`x` holds `Π featureShape` numbers).
        public let featureShape: [Int]
        /// Labels lie in `0..<classCount`.
        public let classCount: Int

        public init(featureShape: [Int], classCount: Int) {
            precondition(
                !featureShape.isEmpty && featureShape.allSatisfy { $0 > 0 },
                "feature shape \(featureShape) has an empty axis")
            precondition(classCount > 0, "class count \(classCount) must be positive")
            self.featureShape = featureShape
            self.classCount = classCount
        }

        /// FEMNIST: 28 × 28 grey images (`x` holds 784 numbers in `[0, 1]`), 62 classes
        /// (10 digits, 26 upper-case and 26 lower-case letters), 3 550 writers.
        public static let femnist = Layout(featureShape: [28, 28, 1], classCount: 62)

        var featureCount: Int { featureShape.reduce(1, *) }
    }

    /// The writers and labels of a split, without its features.
    public struct Index: Sendable, Equatable {
        /// Writer names (LEAF's `users`), in sample order.
        public var writers: [String] = []
        /// Samples of each writer, in the same order; all positive.
        public var samplesPerWriter: [Int] = []
        /// The label of every sample.
        public var labels: [Int32] = []
        /// The files read, in order.
        public var files: [String] = []
    }

    /// The JSON files of a split: `path` itself, or the `.json` files of the folder `path`
    /// sorted by name.
    ///
    /// - Throws: `fileNotFound`, `unreadable`, and `tooFewSamples` for a folder without
    ///   `.json` files.
    public static func files(at path: String) throws(DatasetError) -> [String] {
        guard fileExists(path) else { throw .fileNotFound(path: path) }
        guard isDirectory(path) else { return [path] }
        let found = try Datasets.files(in: path, endingWith: ".json")
        guard !found.isEmpty else {
            throw .tooFewSamples(path: path, reason: "the folder holds no .json file")
        }
        return found
    }

    /// The writers and labels of the split at `path` (a file or a folder of files); every
    /// sample is parsed and checked, no feature is kept.
    public static func index(path: String, layout: Layout) throws(DatasetError) -> Index {
        var reader = LEAFReader(layout: layout, keeping: [])
        for file in try files(at: path) { try reader.read(FileChunks(path: file), path: file) }
        return reader.index
    }

    /// Loads the split at `path`, whole or only the samples `selection` (numbered as in
    /// ``Index``, returned in the order given).
    ///
    /// - Throws: the errors of ``files(at:)``, the file's read errors, `malformedJSON`,
    ///   `badWriter`, `badSample`, and `itemOutOfRange` for a selected sample past the last.
    public static func load(
        path: String, layout: Layout, selecting selection: [Int]? = nil
    ) throws(DatasetError) -> LabeledDataset {
        let files = try files(at: path)
        var reader = LEAFReader(layout: layout, keeping: selection.map { Array(Set($0)).sorted() })
        for file in files { try reader.read(FileChunks(path: file), path: file) }
        return try reader.dataset(selection: selection, lastFile: files.last ?? path)
    }

    /// The writers and labels of one file's JSON text (the pure half of `index`).
    public static func index(
        json bytes: [UInt8], path: String, layout: Layout
    ) throws(DatasetError) -> Index {
        var reader = LEAFReader(layout: layout, keeping: [])
        try reader.read(InMemoryChunks(bytes), path: path)
        return reader.index
    }

    /// Every sample of one file's JSON text (the pure half of `load`).
    ///
    /// `path` only names the source in errors. Never traps on any input.
    public static func dataset(
        json bytes: [UInt8], path: String, layout: Layout
    ) throws(DatasetError) -> LabeledDataset {
        var reader = LEAFReader(layout: layout, keeping: nil)
        try reader.read(InMemoryChunks(bytes), path: path)
        return try reader.dataset(selection: nil, lastFile: path)
    }
}

/// Reads LEAF files one after the other, checking each against the format and the layout,
/// and keeps the features of the wanted samples.
struct LEAFReader {
    let layout: LEAFFormat.Layout
    /// Ascending sample numbers whose features are kept (`nil`: all).
    private let wanted: [Int]?
    private var cursor = 0
    private(set) var index = LEAFFormat.Index()
    /// The kept samples' features, in sample order.
    private var features: [Float] = []
    /// The file each writer was read from, to report a writer listed in two files.
    private var fileOfWriter: [String: String] = [:]

    init(layout: LEAFFormat.Layout, keeping wanted: [Int]?) {
        self.layout = layout
        self.wanted = wanted
    }

    /// Whether the features of sample `row` are kept.
    private mutating func keeps(_ row: Int) -> Bool {
        guard let wanted else { return true }
        guard cursor < wanted.count, wanted[cursor] == row else { return false }
        cursor += 1
        return true
    }

    /// Reads one file from `source`.
    mutating func read(_ source: some ByteChunks, path: String) throws(DatasetError) {
        var json = JSONReader(source, path: path)
        var listed: [String]?
        var counts: [Int]?
        var found: [(writer: String, samples: Int)] = []
        try json.expect(0x7B, "'{' (a LEAF file is one JSON object)")
        var isFirst = true
        while let key = try json.nextMember(isFirst: &isFirst) {
            switch key {
            case "users":
                guard listed == nil else { throw json.failure("a second \"users\" key") }
                var names: [String] = []
                try json.expect(0x5B, "a list of user names after \"users\"")
                var isFirstName = true
                while try json.nextElement(closing: 0x5D, isFirst: &isFirstName) {
                    names.append(try json.readString())
                }
                listed = names
            case "num_samples":
                guard counts == nil else { throw json.failure("a second \"num_samples\" key") }
                var values: [Int] = []
                try json.expect(0x5B, "a list of counts after \"num_samples\"")
                var isFirstCount = true
                while try json.nextElement(closing: 0x5D, isFirst: &isFirstCount) {
                    guard case .success(let count) = try json.readInteger(), count >= 0 else {
                        throw json.failure("a \"num_samples\" entry that is not a count")
                    }
                    values.append(count)
                }
                counts = values
            case "user_data":
                guard found.isEmpty else { throw json.failure("a second \"user_data\" key") }
                try json.expect(0x7B, "a mapping of users after \"user_data\"")
                var isFirstWriter = true
                while let writer = try json.nextMember(isFirst: &isFirstWriter) {
                    if let other = fileOfWriter[writer] {
                        throw .badWriter(
                            path: path, writer: writer,
                            reason: other == path
                                ? "appears twice in user_data" : "also appears in \(other)")
                    }
                    fileOfWriter[writer] = path
                    found.append((writer, try readWriter(writer, from: &json)))
                }
            default:
                try json.skipValue()
            }
        }
        try json.expectEnd()
        try check(found, listed: listed, counts: counts, json: json)
        index.files.append(path)
    }

    /// Reads one writer's `{"x": …, "y": …}`; returns its sample count.
    private mutating func readWriter(
        _ writer: String, from json: inout JSONReader<some ByteChunks>
    ) throws(DatasetError) -> Int {
        let path = json.path
        let firstRow = index.labels.count
        var sampleCount: Int?
        var labels: [Int32]?
        try json.expect(0x7B, "a mapping with \"x\" and \"y\" for user \"\(writer)\"")
        var isFirst = true
        while let key = try json.nextMember(isFirst: &isFirst) {
            switch key {
            case "x":
                guard sampleCount == nil else { throw json.failure("a second \"x\" key") }
                sampleCount = try readFeatures(writer, firstRow: firstRow, from: &json)
            case "y":
                guard labels == nil else { throw json.failure("a second \"y\" key") }
                var values: [Int32] = []
                try json.expect(0x5B, "a list of labels after \"y\"")
                var isFirstLabel = true
                while try json.nextElement(closing: 0x5D, isFirst: &isFirstLabel) {
                    let sample = values.count
                    switch try json.readInteger() {
                    case .success(let label):
                        guard label >= 0 && label < layout.classCount else {
                            throw .badSample(
                                path: path, writer: writer, sample: sample,
                                reason: "label \(label) is outside 0..<\(layout.classCount)")
                        }
                        values.append(Int32(label))
                    case .failure(let number):
                        throw .badSample(
                            path: path, writer: writer, sample: sample,
                            reason: "label \(number.text) is not an integer")
                    }
                }
                labels = values
            default:
                try json.skipValue()
            }
        }
        guard let sampleCount else {
            throw .badWriter(path: path, writer: writer, reason: "has no \"x\" (features)")
        }
        guard let labels else {
            throw .badWriter(path: path, writer: writer, reason: "has no \"y\" (labels)")
        }
        guard labels.count == sampleCount else {
            throw .badWriter(
                path: path, writer: writer,
                reason: "\"x\" holds \(sampleCount) samples but \"y\" \(labels.count) labels")
        }
        guard sampleCount > 0 else {
            throw .badWriter(path: path, writer: writer, reason: "has no samples")
        }
        index.writers.append(writer)
        index.samplesPerWriter.append(sampleCount)
        index.labels += labels
        return sampleCount
    }

    /// Reads one writer's `x`, keeping the wanted samples' features; returns the count.
    private mutating func readFeatures(
        _ writer: String, firstRow: Int, from json: inout JSONReader<some ByteChunks>
    ) throws(DatasetError) -> Int {
        let width = layout.featureCount
        try json.expect(0x5B, "a list of samples after \"x\"")
        var sample = 0
        var isFirst = true
        while try json.nextElement(closing: 0x5D, isFirst: &isFirst) {
            let kept = keeps(firstRow + sample)
            var numbers = 0
            try readNumbers(
                writer, sample: sample, depth: 0, kept: kept, numbers: &numbers, from: &json)
            guard numbers == width else {
                throw .badSample(
                    path: json.path, writer: writer, sample: sample,
                    reason:
                        "x holds \(numbers) numbers, expected \(width) (shape "
                        + "\(layout.featureShape.map(String.init).joined(separator: " × ")))")
            }
            sample += 1
        }
        return sample
    }

    /// Reads one sample's (possibly nested) list of numbers.
    private mutating func readNumbers(
        _ writer: String, sample: Int, depth: Int, kept: Bool, numbers: inout Int,
        from json: inout JSONReader<some ByteChunks>
    ) throws(DatasetError) {
        let width = layout.featureCount
        guard depth < 8 else {
            throw .badSample(
                path: json.path, writer: writer, sample: sample,
                reason: "x is nested more than 8 lists deep")
        }
        guard try json.peekSignificant() == 0x5B else {
            throw .badSample(
                path: json.path, writer: writer, sample: sample,
                reason: "x is not a list of numbers")
        }
        try json.expect(0x5B, "a list")
        var isFirst = true
        while try json.nextElement(closing: 0x5D, isFirst: &isFirst) {
            if try json.peekSignificant() == 0x5B {
                try readNumbers(
                    writer, sample: sample, depth: depth + 1, kept: kept, numbers: &numbers,
                    from: &json)
                continue
            }
            let value = try json.readFloat()
            guard value.isFinite else {
                throw .badSample(
                    path: json.path, writer: writer, sample: sample,
                    reason: "x[\(numbers)] is \(value.isNaN ? "NaN" : "not finite (\(value))")")
            }
            numbers += 1
            guard numbers <= width else {
                throw .badSample(
                    path: json.path, writer: writer, sample: sample,
                    reason: "x holds more than the \(width) numbers of the layout (ragged)")
            }
            if kept { features.append(value) }
        }
    }

    /// Checks `users` and `num_samples` against what `user_data` held.
    private func check(
        _ found: [(writer: String, samples: Int)], listed: [String]?, counts: [Int]?,
        json: JSONReader<some ByteChunks>
    ) throws(DatasetError) {
        let path = json.path
        guard let listed else { throw json.failure("the object has no \"users\" list") }
        guard let counts else { throw json.failure("the object has no \"num_samples\" list") }
        guard listed.count == counts.count else {
            throw json.failure(
                "\"users\" lists \(listed.count) users but \"num_samples\" \(counts.count) counts")
        }
        var samplesOf: [String: Int] = [:]
        for (writer, samples) in found { samplesOf[writer] = samples }
        var seen = Set<String>()
        for (writer, count) in zip(listed, counts) {
            guard seen.insert(writer).inserted else {
                throw .badWriter(path: path, writer: writer, reason: "appears twice in users")
            }
            guard let samples = samplesOf[writer] else {
                throw .badWriter(path: path, writer: writer, reason: "has no user_data entry")
            }
            guard samples == count else {
                throw .badWriter(
                    path: path, writer: writer,
                    reason: "num_samples says \(count), but user_data holds \(samples) samples")
            }
        }
        if let extra = found.first(where: { !seen.contains($0.writer) }) {
            throw .badWriter(
                path: path, writer: extra.writer, reason: "has user_data but is not in users")
        }
        if found.isEmpty {
            throw .tooFewSamples(path: path, reason: "the file holds no user")
        }
    }

    /// The kept samples, in the order of `selection` (all samples when `nil`).
    func dataset(selection: [Int]?, lastFile: String) throws(DatasetError) -> LabeledDataset {
        let labels = index.labels
        guard let selection else {
            return LabeledDataset(
                features: features, labels: labels, featureShape: layout.featureShape,
                classCount: layout.classCount)
        }
        if let bad = selection.first(where: { $0 < 0 || $0 >= labels.count }) {
            throw .itemOutOfRange(path: lastFile, index: bad, itemCount: labels.count)
        }
        // `wanted` is the selection sorted without repeats, and all of it was read.
        let kept = wanted ?? []
        let read = LabeledDataset(
            features: features, labels: kept.map { labels[$0] },
            featureShape: layout.featureShape, classCount: layout.classCount)
        var position: [Int: Int] = [:]
        for (offset, row) in kept.enumerated() { position[row] = offset }
        return read.subset(selection.map { position[$0] ?? 0 })
    }
}
