import Foundation

/// The content of an IDX file (LeCun's MNIST format), plain or gzip-compressed.
///
/// Layout: a big-endian header `00 00 type n`, then `n` extents as `UInt32` big-endian, then
/// `Π extents` elements of `type`, big-endian, row-major. MNIST, Fashion-MNIST and EMNIST
/// ship images as `ubyte [count, rows, columns]` and labels as `ubyte [count]`.
public struct IDXFile: Sendable, Equatable {
    /// The element types the IDX format defines, by their type byte.
    public enum DataType: UInt8, Sendable, Equatable, CustomStringConvertible {
        case unsignedByte = 0x08
        case signedByte = 0x09
        case int16 = 0x0B
        case int32 = 0x0C
        case float32 = 0x0D
        case float64 = 0x0E

        /// Bytes per element.
        public var byteCount: Int {
            switch self {
            case .unsignedByte, .signedByte: 1
            case .int16: 2
            case .int32, .float32: 4
            case .float64: 8
            }
        }

        public var description: String {
            switch self {
            case .unsignedByte: "unsigned bytes (0x08)"
            case .signedByte: "signed bytes (0x09)"
            case .int16: "16-bit integers (0x0B)"
            case .int32: "32-bit integers (0x0C)"
            case .float32: "32-bit floats (0x0D)"
            case .float64: "64-bit floats (0x0E)"
            }
        }
    }

    /// The largest decompressed size accepted by default: 2 GiB, above any MNIST-family file
    /// (EMNIST ByClass train images are ~550 MB) and far below a decompression bomb's reach.
    public static let defaultLimitBytes = 1 << 31

    /// Element type.
    public let dataType: DataType
    /// Extent of each axis, the first being the item count.
    public let dimensions: [Int]
    /// The elements as stored (big-endian), `dimensions.reduce(1, *) · dataType.byteCount`
    /// bytes.
    public let payload: ArraySlice<UInt8>

    /// Number of items (the first extent).
    public var itemCount: Int { dimensions[0] }

    /// The file as plain (uncompressed) IDX bytes: header, then payload.
    public var plainBytes: [UInt8] {
        var bytes: [UInt8] = [0, 0, dataType.rawValue, UInt8(dimensions.count)]
        for extent in dimensions {
            bytes += [
                UInt8(truncatingIfNeeded: extent >> 24), UInt8(truncatingIfNeeded: extent >> 16),
                UInt8(truncatingIfNeeded: extent >> 8), UInt8(truncatingIfNeeded: extent),
            ]
        }
        return bytes + payload
    }

    /// Reads and validates the file at `path`, decompressing it if it is gzip'd.
    ///
    /// This is the module's only I/O. The whole file is read into memory.
    /// - Throws: `fileNotFound`, `unreadable`, and every error of `init(contents:path:)`.
    public static func read(
        path: String, limitBytes: Int = defaultLimitBytes
    ) throws(DatasetError) -> IDXFile {
        try IDXFile(contents: readBytes(path: path), path: path, limitBytes: limitBytes)
    }

    /// Parses the bytes of an IDX file, plain or gzip'd (detected by the magic `1f 8b`).
    ///
    /// `path` only names the source in errors. Never traps on any input.
    /// - Throws: `badMagic`, `corruptGzip`, `tooLarge`, `implausibleHeader`, `truncated`,
    ///   `trailingData`, `unknownDataType`.
    public init(
        contents: [UInt8], path: String, limitBytes: Int = defaultLimitBytes
    ) throws(DatasetError) {
        let isCompressed = Gzip.isGzip(contents)
        let bytes =
            isCompressed
            ? try Gzip.decompress(contents, path: path, limitBytes: limitBytes) : contents
        guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0 else {
            throw .badMagic(
                path: path, found: Array(bytes.prefix(4)), afterDecompression: isCompressed)
        }
        guard let dataType = DataType(rawValue: bytes[2]) else {
            throw .unknownDataType(path: path, typeByte: bytes[2])
        }
        let dimensionCount = Int(bytes[3])
        guard dimensionCount > 0 else {
            throw .implausibleHeader(path: path, reason: "zero dimensions")
        }
        let headerCount = 4 + 4 * dimensionCount
        guard bytes.count >= headerCount else {
            throw .truncated(path: path, expectedBytes: headerCount, actualBytes: bytes.count)
        }
        var dimensions: [Int] = []
        var elementCount = 1
        for axis in 0..<dimensionCount {
            let offset = 4 + 4 * axis
            let extent =
                Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16
                | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            dimensions.append(extent)
            let (product, overflow) = elementCount.multipliedReportingOverflow(by: extent)
            guard !overflow else {
                throw .implausibleHeader(
                    path: path, reason: "dimensions \(dimensions) overflow the address space")
            }
            elementCount = product
        }
        let (payloadCount, overflow) = elementCount.multipliedReportingOverflow(
            by: dataType.byteCount)
        guard !overflow, payloadCount <= Int.max - headerCount else {
            throw .implausibleHeader(
                path: path, reason: "dimensions \(dimensions) overflow the address space")
        }
        let expected = headerCount + payloadCount
        guard bytes.count >= expected else {
            throw .truncated(path: path, expectedBytes: expected, actualBytes: bytes.count)
        }
        guard bytes.count == expected else {
            throw .trailingData(path: path, expectedBytes: expected, actualBytes: bytes.count)
        }
        self.dataType = dataType
        self.dimensions = dimensions
        self.payload = bytes[headerCount...]
    }

    /// Checks the element type and dimensions (`nil` accepts any extent) against what a
    /// caller requires.
    func require(
        _ dataType: DataType, dimensions expected: [Int?], path: String
    ) throws(DatasetError) {
        guard self.dataType == dataType else {
            throw .wrongDataType(path: path, found: self.dataType, expected: dataType)
        }
        let matches =
            dimensions.count == expected.count
            && zip(dimensions, expected).allSatisfy { extent, required in
                required.map { $0 == extent } ?? true
            }
        guard matches else {
            throw .unexpectedDimensions(path: path, found: dimensions, expected: expected)
        }
    }
}

/// The bytes of the file at `path`.
private func readBytes(path: String) throws(DatasetError) -> [UInt8] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw .fileNotFound(path: path)
    }
    guard !isDirectory.boolValue else {
        throw .unreadable(path: path, reason: "it is a directory")
    }
    do {
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    } catch {
        throw .unreadable(path: path, reason: error.localizedDescription)
    }
}
