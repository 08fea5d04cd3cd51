import Datasets
import Testing

@Suite("LabeledDataset: subsets and batches")
struct LabeledDatasetTests {
    /// Four samples of shape [2, 3], sample i holding the values 10·i … 10·i + 5.
    static let dataset = LabeledDataset(
        features: (0..<4).flatMap { sample in (0..<6).map { Float(10 * sample + $0) } },
        labels: [2, 0, 1, 2], featureShape: [2, 3], classCount: 3)

    @Test("Counts and shapes")
    func countsAndShapes() {
        let dataset = Self.dataset
        #expect(dataset.count == 4)
        #expect(dataset.featureCount == 6)
        #expect(dataset.labelCounts == [1, 1, 2])
        #expect(Array(dataset.features(ofSample: 2)) == [20, 21, 22, 23, 24, 25])
    }

    @Test("A subset keeps the order asked for, repeats included")
    func subsetOrder() {
        let subset = Self.dataset.subset([3, 1, 3])
        #expect(subset.count == 3)
        #expect(subset.labels == [2, 0, 2])
        #expect(subset.featureShape == [2, 3])
        #expect(subset.classCount == 3)
        #expect(Array(subset.features(ofSample: 0)) == [30, 31, 32, 33, 34, 35])
        #expect(Array(subset.features(ofSample: 1)) == [10, 11, 12, 13, 14, 15])
        #expect(Self.dataset.subset([Int]()).count == 0)
    }

    @Test("Gathering a batch from an array slice into raw pointers")
    func gatherIntoPointers() {
        let order = [0, 3, 2, 1]
        var features = [Float](repeating: -1, count: 2 * 6 + 1)
        var labels = [Int32](repeating: -1, count: 3)
        features.withUnsafeMutableBufferPointer { featureBuffer in
            labels.withUnsafeMutableBufferPointer { labelBuffer in
                Self.dataset.gatherBatch(
                    order[1..<3], features: featureBuffer.baseAddress!,
                    labels: labelBuffer.baseAddress!)
            }
        }
        #expect(Array(features[0..<6]) == [30, 31, 32, 33, 34, 35])
        #expect(Array(features[6..<12]) == [20, 21, 22, 23, 24, 25])
        #expect(features[12] == -1, "nothing written past the batch")
        #expect(labels == [2, 1, -1])
    }

    @Test("Gathering into buffers equals the subset")
    func gatherIntoBuffers() {
        let batch = [1, 1, 0]
        var features = [Float](repeating: 0, count: 3 * 6)
        var labels = [Int32](repeating: 0, count: 3)
        features.withUnsafeMutableBufferPointer { featureBuffer in
            labels.withUnsafeMutableBufferPointer { labelBuffer in
                Self.dataset.gatherBatch(batch, features: featureBuffer, labels: labelBuffer)
            }
        }
        let subset = Self.dataset.subset(batch)
        #expect(features == subset.features)
        #expect(labels == subset.labels)
    }
}
