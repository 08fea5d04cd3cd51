#if canImport(Glibc)
import Glibc
#endif

/// How raw pixel bytes `0…255` become features.
public enum PixelNormalization: Sendable, Equatable {
    /// `p / 255`, in `[0, 1]`.
    case unitInterval
    /// `(p / 255 − mean) / standardDeviation`, with statistics of the `[0, 1]`-scaled pixels.
    case standardized(mean: Float, standardDeviation: Float)

    /// Fashion-MNIST's train-set pixel statistics (see `FashionMNIST.pixelMean`).
    public static let fashionMNIST = standardized(
        mean: FashionMNIST.pixelMean, standardDeviation: FashionMNIST.pixelStandardDeviation)

    /// MNIST's train-set pixel statistics, mean 0.1307 and standard deviation 0.3081 (the
    /// values of the PyTorch MNIST example).
    public static let mnist = standardized(mean: 0.1307, standardDeviation: 0.3081)

    /// The feature value of each of the 256 pixel values.
    func lookupTable() -> [Float] {
        switch self {
        case .unitInterval:
            return (0..<256).map { Float($0) / 255 }
        case .standardized(let mean, let standardDeviation):
            precondition(
                standardDeviation > 0 && standardDeviation.isFinite && mean.isFinite,
                "standardization needs a finite mean and a positive deviation, "
                    + "got \(mean), \(standardDeviation)")
            return (0..<256).map { (Float($0) / 255 - mean) / standardDeviation }
        }
    }
}

/// Loader for any pair of MNIST-format IDX files: `ubyte [count, rows, columns]` images and
/// `ubyte [count]` labels, plain or gzip'd (MNIST, Fashion-MNIST, KMNIST, EMNIST).
///
/// Samples get feature shape `[rows, columns, 1]` (NHWC per sample). Images are kept as stored:
/// EMNIST's are transposed relative to MNIST, which a convolutional model does not mind.
public enum MNISTFormat {
    /// Reads an images file and a labels file into one dataset.
    ///
    /// - Parameters:
    ///   - imagesPath: an IDX file of `ubyte [count, rows, columns]` images.
    ///   - labelsPath: an IDX file of `ubyte [count]` labels.
    ///   - normalization: how pixel bytes become features (default `p / 255`).
    ///   - classCount: the number of classes; `nil` takes the largest label plus one (EMNIST
    ///     Letters, labelled 1…26, then has 27 classes, class 0 unused).
    ///   - limitBytes: the largest decompressed size accepted per file.
    /// - Returns: the samples in file order, feature shape `[rows, columns, 1]`.
    /// - Throws: the errors of `IDXFile.read(path:)`, then `wrongDataType` and
    ///   `unexpectedDimensions` if the files are not `ubyte [n, rows, columns]` and
    ///   `ubyte [n]`, `countMismatch` if the counts differ, `labelOutOfRange` for a label
    ///   `≥ classCount`.
    public static func load(
        imagesPath: String, labelsPath: String,
        normalization: PixelNormalization = .unitInterval, classCount: Int? = nil,
        limitBytes: Int = IDXFile.defaultLimitBytes
    ) throws(DatasetError) -> LabeledDataset {
        let images = try IDXFile.read(path: imagesPath, limitBytes: limitBytes)
        let labels = try IDXFile.read(path: labelsPath, limitBytes: limitBytes)
        return try dataset(
            images: images, imagesPath: imagesPath, labels: labels, labelsPath: labelsPath,
            normalization: normalization, classCount: classCount)
    }

    /// Builds a dataset from parsed IDX contents (the pure half of `load`); the paths only name
    /// the sources in errors.
    public static func dataset(
        images: IDXFile, imagesPath: String, labels: IDXFile, labelsPath: String,
        normalization: PixelNormalization = .unitInterval, classCount: Int? = nil
    ) throws(DatasetError) -> LabeledDataset {
        try images.require(.unsignedByte, dimensions: [nil, nil, nil], path: imagesPath)
        try labels.require(.unsignedByte, dimensions: [nil], path: labelsPath)
        guard images.itemCount == labels.itemCount else {
            throw .countMismatch(
                imagesPath: imagesPath, imageCount: images.itemCount, labelsPath: labelsPath,
                labelCount: labels.itemCount)
        }
        let rows = images.dimensions[1]
        let columns = images.dimensions[2]
        guard rows > 0, columns > 0 else {
            throw .implausibleHeader(
                path: imagesPath, reason: "images of \(rows) × \(columns) pixels")
        }

        let rawLabels = labels.payload
        let resolvedClassCount = classCount ?? (Int(rawLabels.max() ?? 0) + 1)
        precondition(resolvedClassCount > 0, "class count \(resolvedClassCount) must be positive")
        if let bad = rawLabels.firstIndex(where: { Int($0) >= resolvedClassCount }) {
            throw .labelOutOfRange(
                path: labelsPath, index: bad - rawLabels.startIndex, label: Int(rawLabels[bad]),
                classCount: resolvedClassCount)
        }

        let table = normalization.lookupTable()
        let pixels = images.payload
        let rowSize = rows * columns
        let count = images.itemCount
        let features = [Float](unsafeUninitializedCapacity: count * rowSize) {
            buffer, initialized in
            table.withUnsafeBufferPointer { table in
                pixels.withUnsafeBufferPointer { pixels in
                    for i in 0..<(count * rowSize) {
                        buffer.initializeElement(at: i, to: table[Int(pixels[i])])
                    }
                }
            }
            initialized = count * rowSize
        }
        return LabeledDataset(
            features: features, labels: rawLabels.map { Int32($0) },
            featureShape: [rows, columns, 1], classCount: resolvedClassCount)
    }
}

/// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 28 × 28 grey-level images of clothing in 10
/// balanced classes, 60 000 for training and 10 000 for testing.
public enum FashionMNIST {
    /// Which half of the data set.
    public enum Split: String, Sendable, Equatable, CaseIterable {
        /// 60 000 samples, files `train-*`.
        case train
        /// 10 000 samples, files `t10k-*`.
        case test
    }

    /// Where the Debian package `dataset-fashion-mnist` installs the files.
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"

    /// Mean of all train-set pixels scaled to `[0, 1]`: 0.2860 (0.28604 over the 47 040 000
    /// pixels of the 60 000 train images).
    public static let pixelMean: Float = 0.2860
    /// Standard deviation of the same pixels: 0.3530 (0.35302, population deviation).
    public static let pixelStandardDeviation: Float = 0.3530

    /// Image shape per sample, NHWC.
    public static let featureShape = [28, 28, 1]
    /// Number of classes.
    public static let classCount = 10
    /// Class names by label.
    public static let classNames = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
        "Bag", "Ankle boot",
    ]

    /// The images and labels files of `split` in `directory`.
    public static func paths(
        split: Split, directory: String = defaultDirectory
    ) -> (images: String, labels: String) {
        let prefix = split == .train ? "train" : "t10k"
        let folder = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        // Prefer the gzip'd files; fall back to plain ones a user unpacked.
        func path(_ name: String) -> String {
            let compressed = "\(folder)/\(name).gz"
            let plain = "\(folder)/\(name)"
            if access(compressed, F_OK) != 0 && access(plain, F_OK) == 0 {
                return plain
            }
            return compressed
        }
        return (path("\(prefix)-images-idx3-ubyte"), path("\(prefix)-labels-idx1-ubyte"))
    }

    /// The labels of one split alone (cheap: a client needs them to find its partition).
    public static func labels(
        split: Split, directory: String = defaultDirectory
    ) throws(DatasetError) -> [Int32] {
        let path = paths(split: split, directory: directory).labels
        let file = try IDXFile.read(path: path)
        try file.require(.unsignedByte, dimensions: [nil], path: path)
        if let bad = file.payload.firstIndex(where: { Int($0) >= classCount }) {
            throw .labelOutOfRange(
                path: path, index: bad - file.payload.startIndex, label: Int(file.payload[bad]),
                classCount: classCount)
        }
        return file.payload.map { Int32($0) }
    }

    /// Loads one split, pixels scaled to `[0, 1]` then standardized with the train-set
    /// statistics `(p − 0.2860) / 0.3530` (the same constants for both splits).
    ///
    /// - Throws: the errors of `MNISTFormat.load`, and `unexpectedDimensions` unless the
    ///   images are 28 × 28.
    public static func load(
        split: Split, directory: String = defaultDirectory, selecting selection: [Int]? = nil
    ) throws(DatasetError) -> LabeledDataset {
        let paths = paths(split: split, directory: directory)
        guard let selection else {
            let images = try IDXFile.read(path: paths.images)
            try images.require(.unsignedByte, dimensions: [nil, 28, 28], path: paths.images)
            let labels = try IDXFile.read(path: paths.labels)
            return try MNISTFormat.dataset(
                images: images, imagesPath: paths.images, labels: labels,
                labelsPath: paths.labels, normalization: .fashionMNIST, classCount: classCount)
        }
        // Only the selected rows are read (from plain files) and converted.
        let labels = try IDXFile.read(path: paths.labels)
        try labels.require(.unsignedByte, dimensions: [nil], path: paths.labels)
        if let bad = selection.first(where: { $0 < 0 || $0 >= labels.itemCount }) {
            throw .itemOutOfRange(path: paths.labels, index: bad, itemCount: labels.itemCount)
        }
        let images: IDXFile
        let imageCount: Int
        do {
            (images, imageCount) = try IDXFile.read(path: paths.images, selecting: selection)
        } catch .itemOutOfRange(_, _, let count) {
            // Fewer images than labels, and the selection reaches past the images.
            throw .countMismatch(
                imagesPath: paths.images, imageCount: count, labelsPath: paths.labels,
                labelCount: labels.itemCount)
        }
        guard imageCount == labels.itemCount else {
            throw .countMismatch(
                imagesPath: paths.images, imageCount: imageCount, labelsPath: paths.labels,
                labelCount: labels.itemCount)
        }
        try images.require(.unsignedByte, dimensions: [nil, 28, 28], path: paths.images)
        return try MNISTFormat.dataset(
            images: images, imagesPath: paths.images, labels: labels.gathering(selection),
            labelsPath: paths.labels, normalization: .fashionMNIST, classCount: classCount)
    }
}
