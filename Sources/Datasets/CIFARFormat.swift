/// The binary versions of CIFAR-10 and CIFAR-100 (Krizhevsky 2009, "Learning Multiple
/// Layers of Features from Tiny Images"): 32 × 32 colour images in files of fixed-size
/// records.
///
/// A record is the label byte(s), then 3 072 pixel bytes, channel-major: the 1 024 red values
/// of the image row by row, then the green, then the blue. CIFAR-10 records hold one label
/// byte (`data_batch_1.bin` … `data_batch_5.bin`, 10 000 records each, and `test_batch.bin`);
/// CIFAR-100 records hold the coarse label (20 superclasses), then the fine label (100
/// classes) (`train.bin`, 50 000 records, and `test.bin`, 10 000).
///
/// Samples come out NHWC, feature shape `[32, 32, 3]` (feature `(h · 32 + w) · 3 + c` is
/// pixel `(h, w)` of channel `c`), each channel standardized with the training set's
/// statistics (``channelMeans``, ``channelStandardDeviations``).
public struct CIFARFormat: Sendable, Equatable {
    /// Which half of the data set.
    public enum Split: String, Sendable, Equatable, CaseIterable {
        case train
        case test
    }

    /// Which of CIFAR-100's two labels a sample carries.
    public enum Labels: String, Sendable, Equatable, CaseIterable {
        /// The 100 classes.
        case fine
        /// The 20 superclasses.
        case coarse
    }

    /// `CIFAR-10` or `CIFAR-100`.
    public let name: String
    /// Label bytes before the pixels of each record: 1 (CIFAR-10) or 2 (CIFAR-100).
    public let labelBytes: Int
    /// Which label byte of a record is the sample's label.
    public let labelByte: Int
    /// The exclusive bound of each label byte, in record order (`[10]`, `[20, 100]`): every
    /// label is checked, the one not used too, so a file of another format is caught.
    public let labelBounds: [Int]
    /// The folder the official archive unpacks to (`cifar-10-batches-bin`).
    public let folderName: String
    /// File names of each split, in the order their records are numbered.
    public let trainFiles: [String]
    public let testFiles: [String]
    /// Per-channel mean (R, G, B) of the training images' pixels scaled to `[0, 1]`.
    public let channelMeans: [Float]
    /// Per-channel standard deviation (R, G, B) of the same pixels (over all pixels, not the
    /// mean of per-image deviations).
    public let channelStandardDeviations: [Float]

    /// CIFAR-10: 50 000 training and 10 000 test images in 10 classes.
    ///
    /// Normalisation: mean (0.4914, 0.4822, 0.4465), standard deviation (0.2470, 0.2435, 0.2616), the statistics
    /// of the 50 000 training images.
    public static let cifar10 = CIFARFormat(
        name: "CIFAR-10", labelBytes: 1, labelByte: 0, labelBounds: [10],
        folderName: "cifar-10-batches-bin",
        trainFiles: (1...5).map { "data_batch_\($0).bin" }, testFiles: ["test_batch.bin"],
        channelMeans: [0.4914, 0.4822, 0.4465], channelStandardDeviations: [0.2470, 0.2435, 0.2616])

    /// CIFAR-100 with its fine (100) or coarse (20) labels.
    ///
    /// Normalisation: mean (0.5071, 0.4865, 0.4409), standard deviation (0.2673, 0.2564, 0.2762), the statistics
    /// of the 50 000 training images.
    public static func cifar100(labels: Labels = .fine) -> CIFARFormat {
        CIFARFormat(
            name: "CIFAR-100", labelBytes: 2, labelByte: labels == .coarse ? 0 : 1,
            labelBounds: [20, 100], folderName: "cifar-100-binary", trainFiles: ["train.bin"],
            testFiles: ["test.bin"], channelMeans: [0.5071, 0.4865, 0.4409],
            channelStandardDeviations: [0.2673, 0.2564, 0.2762])
    }

    /// Image shape per sample, NHWC.
    public static let featureShape = [32, 32, 3]
    /// Pixel bytes per record: 3 channels of 32 × 32.
    public static let pixelBytes = 3 * 1024
    /// Training images in either data set.
    public static let trainingCount = 50_000

    /// Bytes per record: the labels, then the pixels.
    public var recordBytes: Int { labelBytes + Self.pixelBytes }
    /// Number of classes of the label used.
    public var classCount: Int { labelBounds[labelByte] }

    /// The files of `split`: in `directory`, or in its subfolder ``folderName`` when
    /// `directory` is the folder the archive was unpacked in.
    public func paths(split: Split, directory: String) -> [String] {
        let folder = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        let names = split == .train ? trainFiles : testFiles
        let nested = "\(folder)/\(folderName)"
        let base =
            !isDirectory("\(folder)/\(names[0])") && fileExists("\(nested)/\(names[0])")
            ? nested : folder
        return names.map { "\(base)/\($0)" }
    }

    /// The labels of every record of `split`, in record order (what a partition needs).
    ///
    /// - Throws: `fileNotFound`, `unreadable`, `badRecord` for a truncated last record or a
    ///   label byte out of range.
    public func labels(split: Split, directory: String) throws(DatasetError) -> [Int32] {
        var labels: [Int32] = []
        for path in paths(split: split, directory: directory) {
            let bytes = try readWholeFile(path: path)
            labels += try self.labels(records: bytes, path: path)
        }
        return labels
    }

    /// Loads `split`, whole or only the records `selection` (numbered across the split's
    /// files in order, returned in the order given), by positioned reads.
    ///
    /// - Throws: the errors of ``labels(split:directory:)``, and `itemOutOfRange` (naming the
    ///   split's last file) for a selected record the files do not hold.
    public func load(
        split: Split, directory: String, selecting selection: [Int]? = nil
    ) throws(DatasetError) -> LabeledDataset {
        let paths = paths(split: split, directory: directory)
        guard let selection else {
            var features: [Float] = []
            var labels: [Int32] = []
            for path in paths {
                let part = try dataset(records: readWholeFile(path: path), path: path)
                features += part.features
                labels += part.labels
            }
            return LabeledDataset(
                features: features, labels: labels, featureShape: Self.featureShape,
                classCount: classCount)
        }
        // Record counts from the sizes, then one file at a time, only its selected records.
        var descriptors: [Int32] = []
        defer { descriptors.forEach(closeDescriptor) }
        var firstRecords = [0]
        for path in paths {
            let descriptor = try openForReading(path)
            descriptors.append(descriptor)
            let size = try fileSize(descriptor, path: path)
            try checkWhole(size: size, path: path)
            firstRecords.append(firstRecords.last! + size / recordBytes)
        }
        let total = firstRecords.last!
        if let bad = selection.first(where: { $0 < 0 || $0 >= total }) {
            throw .itemOutOfRange(path: paths.last!, index: bad, itemCount: total)
        }
        var features = [Float](repeating: 0, count: selection.count * Self.pixelBytes)
        var labels = [Int32](repeating: 0, count: selection.count)
        for (file, path) in paths.enumerated() {
            let range = firstRecords[file]..<firstRecords[file + 1]
            let rows = selection.indices.filter { range.contains(selection[$0]) }
            guard !rows.isEmpty else { continue }
            guard
                let bytes = try readRecords(
                    descriptors[file], records: rows.map { selection[$0] - range.lowerBound },
                    recordBytes: recordBytes, path: path)
            else {
                throw .badRecord(
                    path: path, record: range.count - 1, reason: "the file ended while reading it")
            }
            let part = try dataset(
                records: bytes, path: path,
                recordNumbers: rows.map {
                    selection[$0] - range.lowerBound
                })
            for (position, row) in rows.enumerated() {
                labels[row] = part.labels[position]
                features.replaceSubrange(
                    (row * Self.pixelBytes)..<((row + 1) * Self.pixelBytes),
                    with: part.features(ofSample: position))
            }
        }
        return LabeledDataset(
            features: features, labels: labels, featureShape: Self.featureShape,
            classCount: classCount)
    }

    /// Parses whole records into samples (the pure half of `load`); `path` only names the
    /// source in errors, `recordNumbers` the records' numbers in it (default: `0, 1, …`).
    ///
    /// - Throws: `badRecord` when the bytes end inside a record or a label byte is out of
    ///   range. Never traps on any input.
    public func dataset(
        records bytes: [UInt8], path: String, recordNumbers: [Int]? = nil
    ) throws(DatasetError) -> LabeledDataset {
        try checkWhole(size: bytes.count, path: path)
        let labels = try self.labels(records: bytes, path: path, recordNumbers: recordNumbers)
        let count = labels.count
        let pixels = Self.pixelBytes
        let plane = pixels / 3
        var tables: [[Float]] = []
        for channel in 0..<3 {
            let mean = channelMeans[channel]
            let deviation = channelStandardDeviations[channel]
            tables.append((0..<256).map { (Float($0) / 255 - mean) / deviation })
        }
        let recordBytes = recordBytes
        let labelBytes = labelBytes
        let features = [Float](unsafeUninitializedCapacity: count * pixels) { buffer, done in
            bytes.withUnsafeBufferPointer { source in
                for record in 0..<count {
                    let input = record * recordBytes + labelBytes
                    let output = record * pixels
                    for channel in 0..<3 {
                        tables[channel].withUnsafeBufferPointer { table in
                            for position in 0..<plane {
                                let value = table[Int(source[input + channel * plane + position])]
                                buffer.initializeElement(
                                    at: output + position * 3 + channel, to: value)
                            }
                        }
                    }
                }
            }
            done = count * pixels
        }
        return LabeledDataset(
            features: features, labels: labels, featureShape: Self.featureShape,
            classCount: classCount)
    }

    /// The used label of each record of `bytes`, every label byte checked.
    func labels(
        records bytes: [UInt8], path: String, recordNumbers: [Int]? = nil
    ) throws(DatasetError) -> [Int32] {
        try checkWhole(size: bytes.count, path: path)
        let count = bytes.count / recordBytes
        var labels = [Int32](repeating: 0, count: count)
        for record in 0..<count {
            for (position, bound) in labelBounds.enumerated() {
                let label = Int(bytes[record * recordBytes + position])
                guard label < bound else {
                    let which =
                        labelBounds.count == 1
                        ? "label" : position == 0 ? "coarse label" : "fine label"
                    throw .badRecord(
                        path: path, record: recordNumbers?[record] ?? record,
                        reason:
                            "\(which) \(label) is outside 0..<\(bound) (is this a \(name) file?)")
                }
            }
            labels[record] = Int32(bytes[record * recordBytes + labelByte])
        }
        return labels
    }

    /// Throws unless `size` bytes are a whole number of records.
    private func checkWhole(size: Int, path: String) throws(DatasetError) {
        let partial = size % recordBytes
        guard partial == 0 else {
            throw .badRecord(
                path: path, record: size / recordBytes,
                reason:
                    "truncated: it holds \(partial) of the \(recordBytes) bytes of a \(name) record"
            )
        }
        guard size > 0 else {
            throw .badRecord(path: path, record: 0, reason: "the file is empty")
        }
    }
}
