import Datasets
import Foundation
import Testing

@Suite("IDX files, plain and gzip'd")
struct IDXFileTests {
    @Test("A plain IDX file parses into its type, dimensions and payload")
    func plain() throws {
        let bytes = idxBytes(dimensions: [2, 3], payload: [1, 2, 3, 4, 5, 6])
        let file = try IDXFile(contents: bytes, path: "memory")
        #expect(file.dataType == .unsignedByte)
        #expect(file.dimensions == [2, 3])
        #expect(file.itemCount == 2)
        #expect(Array(file.payload) == [1, 2, 3, 4, 5, 6])
    }

    @Test("Gzip'd content decompresses to the plain parse, past several buffer doublings")
    func gzipRoundTrip() throws {
        // 300 000 bytes of poorly compressible data.
        var state: UInt32 = 12_345
        let payload = (0..<300_000).map { _ in
            state = state &* 1_103_515_245 &+ 12_345
            return UInt8(truncatingIfNeeded: state >> 16)
        }
        let plain = idxBytes(dimensions: [1000, 300], payload: payload)
        let expected = try IDXFile(contents: plain, path: "plain")
        let compressed = gzipped(plain)
        #expect(compressed[0] == 0x1F && compressed[1] == 0x8B)
        #expect(try IDXFile(contents: compressed, path: "one member") == expected)
        // The size hint comes from the last member's trailer: a tiny last member makes the
        // first buffer 64 KiB, which must double three times to hold 300 kB.
        let twoMembers = gzipped(Array(plain[..<299_990])) + gzipped(Array(plain[299_990...]))
        #expect(try IDXFile(contents: twoMembers, path: "two members") == expected)
        // zlib checks the trailer's length: a damaged one is reported.
        var damagedTrailer = compressed
        damagedTrailer[damagedTrailer.count - 4] ^= 1
        let error = #expect(throws: DatasetError.self) {
            try IDXFile(contents: damagedTrailer, path: "trailer.gz")
        }
        #expect(error == .corruptGzip(path: "trailer.gz", message: "incorrect length check"))
    }

    @Test("Concatenated gzip members decompress as one stream")
    func multipleMembers() throws {
        let plain = idxBytes(dimensions: [6], payload: [9, 8, 7, 6, 5, 4])
        let split = gzipped(Array(plain[..<10])) + gzipped(Array(plain[10...]))
        let file = try IDXFile(contents: split, path: "members")
        #expect(Array(file.payload) == [9, 8, 7, 6, 5, 4])
    }

    @Test("Other IDX element types are read with their sizes")
    func otherTypes() throws {
        let bytes = idxBytes(type: 0x0D, dimensions: [2], payload: [0x3F, 0x80, 0, 0, 0, 0, 0, 0])
        let file = try IDXFile(contents: bytes, path: "floats")
        #expect(file.dataType == .float32)
        #expect(file.payload.count == 8)
    }

    @Test("Reading from disk: plain and gzip'd files give one dataset")
    func readsFiles() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let (images, labels) = mnistLikeFiles(count: 12)
        let plainImages = try directory.write(images, to: "images-idx3-ubyte")
        let plainLabels = try directory.write(labels, to: "labels-idx1-ubyte")
        let gzImages = try directory.write(gzipped(images), to: "images-idx3-ubyte.gz")
        let gzLabels = try directory.write(gzipped(labels), to: "labels-idx1-ubyte.gz")

        let plain = try MNISTFormat.load(imagesPath: plainImages, labelsPath: plainLabels)
        let compressed = try MNISTFormat.load(imagesPath: gzImages, labelsPath: gzLabels)
        #expect(plain == compressed)
        #expect(plain.count == 12)
        #expect(plain.featureShape == [4, 3, 1])
        #expect(plain.classCount == 10, "inferred as the largest label plus one")
        #expect(plain.labels == (0..<12).map { Int32($0 % 10) })
        // Image 1, pixel 2 is (7 + 2) / 255 in the unit interval.
        #expect(plain.features[12 + 2] == Float(9) / 255)

        let standardized = try MNISTFormat.load(
            imagesPath: gzImages, labelsPath: gzLabels,
            normalization: .standardized(mean: 0.5, standardDeviation: 0.25), classCount: 12)
        #expect(standardized.classCount == 12)
        #expect(abs(standardized.features[12 + 2] - (Float(9) / 255 - 0.5) / 0.25) < 1e-6)
    }
}

extension IDXFileTests {
    @Test("Selected items: positioned reads of a plain file and a gzip'd file give the same rows")
    func selectedItems() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let (images, _) = mnistLikeFiles(count: 12)
        let plain = try directory.write(images, to: "images-idx3-ubyte")
        let compressed = try directory.write(gzipped(images), to: "images-idx3-ubyte.gz")
        // Runs of consecutive items, out of order, repeated, and the last item.
        let selection = [3, 4, 5, 0, 11, 7, 7, 8]
        let expected = selection.flatMap { item in images[(16 + 12 * item)..<(16 + 12 * (item + 1))]
        }
        for path in [plain, compressed] {
            let (file, itemCount) = try IDXFile.read(path: path, selecting: selection)
            #expect(itemCount == 12)
            #expect(file.dimensions == [8, 4, 3])
            #expect(Array(file.payload) == expected, "\(path)")
        }
        let (none, count) = try IDXFile.read(path: plain, selecting: [])
        #expect(none.dimensions == [0, 4, 3] && none.payload.isEmpty && count == 12)
    }

    @Test("Fashion-MNIST rows selected from the plain files equal the rows of the whole set")
    func selectedFashionMNIST() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let (images, labels) = mnistLikeFiles(count: 30, rows: 28, columns: 28)
        _ = try directory.write(images, to: "train-images-idx3-ubyte")
        _ = try directory.write(labels, to: "train-labels-idx1-ubyte")
        let whole = try FashionMNIST.load(split: .train, directory: directory.path)
        let selection = [29, 1, 2, 3, 17]
        let part = try FashionMNIST.load(
            split: .train, directory: directory.path, selecting: selection)
        #expect(part.labels == selection.map { whole.labels[$0] })
        #expect(
            part.features == selection.flatMap { whole.features[($0 * 784)..<(($0 + 1) * 784)] })
        // An images file with fewer items than its labels file is refused.
        let (shortImages, _) = mnistLikeFiles(count: 29, rows: 28, columns: 28)
        _ = try directory.write(shortImages, to: "train-images-idx3-ubyte")
        // Whether or not the selection reaches past the last image.
        for selection in [[0], [29]] {
            let error = #expect(throws: DatasetError.self) {
                try FashionMNIST.load(
                    split: .train, directory: directory.path, selecting: selection)
            }
            guard case .countMismatch(_, 29, _, 30) = error else {
                Issue.record("expected a count mismatch, got \(String(describing: error))")
                return
            }
        }
        // Reading an item the file does not hold is an error, not a trap.
        let path = directory.path + "/train-images-idx3-ubyte"
        let beyond = #expect(throws: DatasetError.self) {
            try IDXFile.read(path: path, selecting: [3, 29])
        }
        #expect(beyond == .itemOutOfRange(path: path, index: 29, itemCount: 29))
        #expect(beyond?.description.contains("item 29") == true)
    }
}

@Suite("Damaged or mismatched files throw errors naming the file")
struct DatasetErrorTests {
    /// Writes `bytes` to a temporary file and returns the error reading it as an IDX file.
    func readError(
        _ bytes: [UInt8], name: String = "damaged-ubyte"
    ) throws -> (DatasetError?, String) {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = try directory.write(bytes, to: name)
        let error = #expect(throws: DatasetError.self) { try IDXFile.read(path: path) }
        if let error { #expect(error.description.contains(path), "\(error)") }
        // Reading selected items validates the file the same way.
        let selecting = #expect(throws: DatasetError.self) {
            try IDXFile.read(path: path, selecting: [0])
        }
        #expect(selecting == error)
        return (error, path)
    }

    @Test("A missing file")
    func missing() {
        let path = "/nonexistent/maestro/train-images-idx3-ubyte.gz"
        let error = #expect(throws: DatasetError.self) { try IDXFile.read(path: path) }
        #expect(error == .fileNotFound(path: path))
        #expect(error?.description == "\(path): file not found")
    }

    @Test("A directory is unreadable")
    func directory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let error = #expect(throws: DatasetError.self) { try IDXFile.read(path: directory.path) }
        guard case .unreadable(let path, _) = error else {
            Issue.record("expected unreadable, got \(String(describing: error))")
            return
        }
        #expect(path == directory.path)
    }

    @Test("Neither gzip nor IDX: the bytes found are reported")
    func badMagic() throws {
        let (error, path) = try readError([0x50, 0x4B, 0x03, 0x04, 0, 0])
        #expect(
            error
                == .badMagic(
                    path: path, found: [0x50, 0x4B, 0x03, 0x04], afterDecompression: false))
        #expect(error?.description.contains("50 4b 03 04") == true)
    }

    @Test("An empty file")
    func empty() throws {
        let (error, path) = try readError([])
        #expect(error == .badMagic(path: path, found: [], afterDecompression: false))
        #expect(error?.description == "\(path): the file is empty")
    }

    @Test("Gzip'd content that is not IDX")
    func gzipOfText() throws {
        let (error, path) = try readError(gzipped(Array("hello, world".utf8)))
        #expect(error == .badMagic(path: path, found: Array("hell".utf8), afterDecompression: true))
    }

    @Test("A corrupt gzip stream reports zlib's message")
    func corruptGzip() throws {
        var bytes = gzipped(idxBytes(dimensions: [64], payload: (0..<64).map { UInt8($0) }))
        for i in 12..<min(bytes.count - 8, 40) { bytes[i] ^= 0xA5 }
        let (error, _) = try readError(bytes, name: "corrupt.gz")
        guard case .corruptGzip(_, let message) = error else {
            Issue.record("expected corruptGzip, got \(String(describing: error))")
            return
        }
        #expect(!message.isEmpty)
    }

    @Test("A gzip stream cut short is reported as truncated")
    func truncatedGzip() throws {
        let (images, _) = mnistLikeFiles(count: 50)
        let compressed = gzipped(images)
        let (error, _) = try readError(
            Array(compressed.prefix(compressed.count / 2)), name: "cut.gz")
        guard case .corruptGzip(_, let message) = error else {
            Issue.record("expected corruptGzip, got \(String(describing: error))")
            return
        }
        #expect(message.contains("truncated"))
    }

    @Test("Fewer bytes than the header promises: expected vs got")
    func truncatedIDX() throws {
        let bytes = idxBytes(dimensions: [10, 28, 28], payload: [UInt8](repeating: 1, count: 1000))
        let (error, path) = try readError(bytes)
        #expect(error == .truncated(path: path, expectedBytes: 16 + 7840, actualBytes: 1016))
        #expect(error?.description.contains("7856") == true)
        #expect(error?.description.contains("1016") == true)
    }

    @Test("A header cut inside its dimensions")
    func truncatedHeader() throws {
        let (error, path) = try readError([0, 0, 8, 3, 0, 0, 0, 10, 0])
        #expect(error == .truncated(path: path, expectedBytes: 16, actualBytes: 9))
    }

    @Test("More bytes than the header accounts for")
    func trailingData() throws {
        let bytes = idxBytes(dimensions: [3], payload: [1, 2, 3, 4])
        let (error, path) = try readError(bytes)
        #expect(error == .trailingData(path: path, expectedBytes: 11, actualBytes: 12))
    }

    @Test("An unknown data type byte")
    func unknownType() throws {
        let (error, path) = try readError(idxBytes(type: 0x07, dimensions: [1], payload: [0]))
        #expect(error == .unknownDataType(path: path, typeByte: 0x07))
    }

    @Test("Dimensions whose product overflows")
    func overflow() throws {
        let bytes = idxBytes(
            type: 0x0E, dimensions: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], payload: [])
        let (error, _) = try readError(bytes)
        guard case .implausibleHeader = error else {
            Issue.record("expected implausibleHeader, got \(String(describing: error))")
            return
        }
    }

    @Test("Images and labels of another type or shape, mismatched counts, labels out of range")
    func mnistMismatches() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let (images, labels) = mnistLikeFiles(count: 5)
        let imagesPath = try directory.write(images, to: "images")
        let labelsPath = try directory.write(labels, to: "labels")
        let fewerLabels = try directory.write(
            idxBytes(dimensions: [4], payload: [0, 1, 2, 3]), to: "fewer-labels")
        let floatImages = try directory.write(
            idxBytes(type: 0x0D, dimensions: [1, 1, 1], payload: [0, 0, 0, 0]), to: "floats")
        let matrixLabels = try directory.write(
            idxBytes(dimensions: [5, 1], payload: [0, 1, 2, 3, 4]), to: "matrix-labels")
        let wideLabels = try directory.write(
            idxBytes(dimensions: [5], payload: [0, 1, 12, 3, 4]), to: "wide-labels")

        let mismatch = #expect(throws: DatasetError.self) {
            try MNISTFormat.load(imagesPath: imagesPath, labelsPath: fewerLabels)
        }
        #expect(
            mismatch
                == .countMismatch(
                    imagesPath: imagesPath, imageCount: 5, labelsPath: fewerLabels, labelCount: 4))
        #expect(mismatch?.description.contains(imagesPath) == true)
        #expect(mismatch?.description.contains(fewerLabels) == true)

        let wrongType = #expect(throws: DatasetError.self) {
            try MNISTFormat.load(imagesPath: floatImages, labelsPath: labelsPath)
        }
        #expect(
            wrongType == .wrongDataType(path: floatImages, found: .float32, expected: .unsignedByte)
        )

        let wrongShape = #expect(throws: DatasetError.self) {
            try MNISTFormat.load(imagesPath: imagesPath, labelsPath: matrixLabels)
        }
        #expect(
            wrongShape == .unexpectedDimensions(path: matrixLabels, found: [5, 1], expected: [nil]))

        let outOfRange = #expect(throws: DatasetError.self) {
            try MNISTFormat.load(imagesPath: imagesPath, labelsPath: wideLabels, classCount: 10)
        }
        #expect(
            outOfRange == .labelOutOfRange(path: wideLabels, index: 2, label: 12, classCount: 10))
        #expect(outOfRange?.description.contains(wideLabels) == true)

        // Fashion-MNIST insists on 28 × 28 images.
        let fashionDirectory = try TemporaryDirectory()
        defer { fashionDirectory.cleanUp() }
        let paths = FashionMNIST.paths(split: .test, directory: fashionDirectory.path)
        _ = try fashionDirectory.write(
            gzipped(images), to: URL(fileURLWithPath: paths.images).lastPathComponent)
        _ = try fashionDirectory.write(
            gzipped(labels), to: URL(fileURLWithPath: paths.labels).lastPathComponent)
        let notFashion = #expect(throws: DatasetError.self) {
            try FashionMNIST.load(split: .test, directory: fashionDirectory.path)
        }
        #expect(
            notFashion
                == .unexpectedDimensions(
                    path: paths.images, found: [5, 4, 3], expected: [nil, 28, 28]))
    }

    @Test("Every prefix and many corruptions of a valid file throw or parse, never trap")
    func neverTraps() throws {
        let (images, _) = mnistLikeFiles(count: 6, rows: 5, columns: 5)
        for original in [images, gzipped(images)] {
            for length in 0...original.count {
                _ = try? IDXFile(contents: Array(original.prefix(length)), path: "prefix")
            }
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15
            for _ in 0..<500 {
                var damaged = original
                for _ in 0..<3 {
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    let position = Int(state >> 33) % damaged.count
                    damaged[position] = UInt8(truncatingIfNeeded: state >> 20)
                }
                _ = try? IDXFile(contents: damaged, path: "damaged")
            }
        }
        // The full file still parses, so the loop did run on meaningful input.
        #expect(try IDXFile(contents: images, path: "intact").dimensions == [6, 5, 5])
    }

    @Test("Reading selected items of every prefix of a plain file agrees with reading it whole")
    func selectedPrefixes() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let (images, _) = mnistLikeFiles(count: 6, rows: 5, columns: 5)
        for length in 0...images.count {
            let path = try directory.write(Array(images.prefix(length)), to: "prefix-\(length)")
            let whole = Result { () throws(DatasetError) in try IDXFile.read(path: path) }
            let selected = Result { () throws(DatasetError) in
                try IDXFile.read(path: path, selecting: [5, 0, 1])
            }
            switch (whole, selected) {
            case (.success(let file), .success(let part)):
                #expect(part.fileItemCount == file.itemCount)
                #expect(Array(part.file.payload) == Array(file.gathering([5, 0, 1]).payload))
            case (.failure(let expected), .failure(let error)):
                #expect(error == expected, "prefix of \(length) bytes")
            default:
                Issue.record("prefix of \(length) bytes: \(whole) vs \(selected)")
            }
        }
    }

    @Test("A decompressed size above the limit is refused")
    func limit() {
        let bytes = gzipped(
            idxBytes(dimensions: [100_000], payload: [UInt8](repeating: 0, count: 100_000)))
        let error = #expect(throws: DatasetError.self) {
            try IDXFile(contents: bytes, path: "bomb.gz", limitBytes: 50_000)
        }
        #expect(error == .tooLarge(path: "bomb.gz", limitBytes: 50_000))
    }
}
