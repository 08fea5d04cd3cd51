/// Samples with integer class labels, features stored row-major in one flat array.
///
/// Shapes: `features` is `[count, featureCount]` row-major, sample `i` occupying
/// `features[i · featureCount ..< (i + 1) · featureCount]`; each row is laid out as
/// `featureShape` (for images `[height, width, channels]`, NHWC per sample, e.g. `[28, 28, 1]`;
/// for vectors `[60]`). Labels lie in `0..<classCount`.
public struct LabeledDataset: Sendable, Equatable {
    /// All samples' features, row-major `[count, featureCount]`.
    public let features: [Float]
    /// One class label per sample, in `0..<classCount`.
    public let labels: [Int32]
    /// The shape of one sample's features.
    public let featureShape: [Int]
    /// The number of classes labels are drawn from (some may be absent from this set).
    public let classCount: Int

    /// Makes a dataset from trusted values; traps if they are inconsistent.
    public init(features: [Float], labels: [Int32], featureShape: [Int], classCount: Int) {
        precondition(
            featureShape.allSatisfy { $0 > 0 }, "feature shape \(featureShape) has an empty axis")
        precondition(classCount > 0, "class count \(classCount) must be positive")
        let featureCount = featureShape.reduce(1, *)
        precondition(
            features.count == labels.count * featureCount,
            "\(features.count) features for \(labels.count) samples of shape \(featureShape)")
        if let bad = labels.firstIndex(where: { $0 < 0 || Int($0) >= classCount }) {
            preconditionFailure(
                "label \(labels[bad]) of sample \(bad) is outside 0..<\(classCount)")
        }
        self.features = features
        self.labels = labels
        self.featureShape = featureShape
        self.classCount = classCount
    }

    /// Number of samples.
    public var count: Int { labels.count }

    /// Number of features per sample, `featureShape.reduce(1, *)`.
    public var featureCount: Int { featureShape.reduce(1, *) }

    /// The features of sample `index`.
    public func features(ofSample index: Int) -> ArraySlice<Float> {
        precondition(indices.contains(index), "sample \(index) outside 0..<\(count)")
        let width = featureCount
        return features[index * width..<(index + 1) * width]
    }

    /// Sample positions, `0..<count`.
    public var indices: Range<Int> { 0..<count }

    /// How many samples carry each label: `classCount` entries.
    public var labelCounts: [Int] {
        var counts = [Int](repeating: 0, count: classCount)
        for label in labels { counts[Int(label)] += 1 }
        return counts
    }

    /// The samples at `indices`, in that order (repeats allowed).
    public func subset(_ indices: some Collection<Int>) -> LabeledDataset {
        let width = featureCount
        var selectedFeatures = [Float](repeating: 0, count: indices.count * width)
        var selectedLabels = [Int32](repeating: 0, count: indices.count)
        selectedFeatures.withUnsafeMutableBufferPointer { featureBuffer in
            selectedLabels.withUnsafeMutableBufferPointer { labelBuffer in
                gatherBatch(indices, features: featureBuffer, labels: labelBuffer)
            }
        }
        return LabeledDataset(
            features: selectedFeatures, labels: selectedLabels, featureShape: featureShape,
            classCount: classCount)
    }

    /// Copies the features and labels of the samples at `indices` into caller-owned memory:
    /// row `r` of `features` receives sample `indices[r]` (`indices.count · featureCount`
    /// floats), `labels[r]` its label.
    ///
    /// - Precondition: every index is in `0..<count` and the buffers have room for the batch.
    /// - Complexity: one contiguous copy per sample.
    public func gatherBatch(
        _ indices: some Collection<Int>, features: UnsafeMutableBufferPointer<Float>,
        labels: UnsafeMutableBufferPointer<Int32>
    ) {
        let width = featureCount
        precondition(
            features.count >= indices.count * width,
            "feature buffer of \(features.count) floats for \(indices.count) samples of \(width)")
        precondition(
            labels.count >= indices.count,
            "label buffer of \(labels.count) for \(indices.count) samples")
        guard let featureBase = features.baseAddress, let labelBase = labels.baseAddress else {
            return  // an empty batch into empty buffers
        }
        gatherBatch(indices, features: featureBase, labels: labelBase)
    }

    /// Copies the features and labels of the samples at `indices` to `features` (row `r` at
    /// `features + r · featureCount`) and `labels` (`labels[r]`), for callers that own raw
    /// memory such as a tensor's storage.
    ///
    /// - Precondition: every index is in `0..<count`; the destinations hold
    ///   `indices.count · featureCount` floats and `indices.count` labels (not checked).
    public func gatherBatch(
        _ indices: some Collection<Int>, features: UnsafeMutablePointer<Float>,
        labels: UnsafeMutablePointer<Int32>
    ) {
        let width = featureCount
        let sampleCount = count
        self.features.withUnsafeBufferPointer { source in
            self.labels.withUnsafeBufferPointer { sourceLabels in
                var row = 0
                for index in indices {
                    precondition(
                        index >= 0 && index < sampleCount,
                        "sample \(index) outside 0..<\(sampleCount)")
                    if let base = source.baseAddress {
                        (features + row * width).update(from: base + index * width, count: width)
                    }
                    labels[row] = sourceLabels[index]
                    row += 1
                }
            }
        }
    }
}
