import Datasets
import Foundation
import Testing

private let isInstalled = FashionMNIST.Split.allCases.allSatisfy { split in
    let paths = FashionMNIST.paths(split: split)
    return FileManager.default.fileExists(atPath: paths.images)
        && FileManager.default.fileExists(atPath: paths.labels)
}

@Suite(
    "Fashion-MNIST from the Debian package",
    .enabled(if: isInstalled, "dataset-fashion-mnist is not installed"))
struct FashionMNISTTests {
    @Test("The train split: 60 000 balanced samples, standardized pixels")
    func train() throws {
        let train = try FashionMNIST.load(split: .train)
        #expect(train.count == 60_000)
        #expect(train.featureShape == [28, 28, 1])
        #expect(train.featureCount == 784)
        #expect(train.features.count == 60_000 * 784)
        #expect(train.classCount == 10)
        #expect(train.labelCounts == [Int](repeating: 6_000, count: 10))
        // The first train image is an ankle boot (label 9), the next two T-shirts.
        #expect(Array(train.labels.prefix(3)) == [9, 0, 0])

        // Standardized with the train statistics: mean ≈ 0, deviation ≈ 1 (the constants are
        // 0.28604 and 0.35302 rounded to four digits).
        var sum = 0.0
        var sumOfSquares = 0.0
        var smallest = Float.infinity
        var largest = -Float.infinity
        train.features.withUnsafeBufferPointer { features in
            for value in features {
                sum += Double(value)
                sumOfSquares += Double(value) * Double(value)
                smallest = min(smallest, value)
                largest = max(largest, value)
            }
        }
        let mean = sum / Double(train.features.count)
        let deviation = (sumOfSquares / Double(train.features.count) - mean * mean).squareRoot()
        #expect(abs(mean) < 1e-3)
        #expect(abs(deviation - 1) < 1e-3)
        #expect(abs(smallest - (0 - 0.2860) / 0.3530) < 1e-6)
        #expect(abs(largest - (1 - 0.2860) / 0.3530) < 1e-6)
    }

    @Test("The test split: 10 000 balanced samples")
    func test() throws {
        let test = try FashionMNIST.load(split: .test)
        #expect(test.count == 10_000)
        #expect(test.featureShape == [28, 28, 1])
        #expect(test.labelCounts == [Int](repeating: 1_000, count: 10))
    }

    @Test("The general loader reads the same files in the unit interval")
    func generalLoader() throws {
        let paths = FashionMNIST.paths(split: .test)
        let test = try MNISTFormat.load(imagesPath: paths.images, labelsPath: paths.labels)
        #expect(test.count == 10_000)
        #expect(test.classCount == 10)
        #expect(test.features.allSatisfy { $0 >= 0 && $0 <= 1 })
    }
}
