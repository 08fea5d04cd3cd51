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

    /// Reads only the items `selection` (indices along the first axis, in that order).
    ///
    /// A plain file is validated from its header and size, then only the selected items are
    /// read, by positioned reads: a client of a 100-client fleet reads its 1 % of the 47 MB
    /// Fashion-MNIST images, not the whole file. A gzip'd file is read and decompressed
    /// whole. The result's first extent is `selection.count`; the file's own item count is
    /// returned beside it, for cross-checking an images file against its labels file.
    /// - Throws: the errors of `read(path:)`, and `itemOutOfRange` for an index the file
    ///   does not hold.
    public static func read(
        path: String, selecting selection: [Int], limitBytes: Int = defaultLimitBytes
    ) throws(DatasetError) -> (file: IDXFile, fileItemCount: Int) {
        let descriptor = try openForReading(path)
        defer { close(descriptor) }
        var start = [UInt8](repeating: 0, count: 4)
        let startCount = try readFully(descriptor, into: &start, at: 0, path: path)
        if Gzip.isGzip(Array(start.prefix(startCount))) {
            let whole = try IDXFile(
                contents: readBytes(path: path), path: path, limitBytes: limitBytes)
            try checkRange(selection, itemCount: whole.itemCount, path: path)
            return (whole.gathering(selection), whole.itemCount)
        }
        var headerBytes = [UInt8](repeating: 0, count: 4 + 4 * Int(startCount == 4 ? start[3] : 0))
        let headerRead = try readFully(descriptor, into: &headerBytes, at: 0, path: path)
        let header = try Header(
            Array(headerBytes.prefix(headerRead)), path: path, afterDecompression: false)
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw .unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        let size = Int(status.st_size)
        guard size >= header.fileByteCount else {
            throw .truncated(path: path, expectedBytes: header.fileByteCount, actualBytes: size)
        }
        guard size == header.fileByteCount else {
            throw .trailingData(path: path, expectedBytes: header.fileByteCount, actualBytes: size)
        }
        let itemCount = header.dimensions[0]
        try checkRange(selection, itemCount: itemCount, path: path)
        let itemBytes = header.itemByteCount
        var payload = [UInt8](repeating: 0, count: selection.count * itemBytes)
        var row = 0
        while row < selection.count {
            // One read per run of consecutive items.
            var run = 1
            while row + run < selection.count && selection[row + run] == selection[row] + run {
                run += 1
            }
            let offset = header.byteCount + selection[row] * itemBytes
            let range = (row * itemBytes)..<((row + run) * itemBytes)
            let count = try payload.withUnsafeMutableBytes { buffer in
                Result { () throws(DatasetError) in
                    try readFully(
                        descriptor, into: UnsafeMutableRawBufferPointer(rebasing: buffer[range]),
                        at: offset, path: path)
                }
            }.get()
            guard count == run * itemBytes else {
                throw .truncated(
                    path: path, expectedBytes: header.fileByteCount, actualBytes: offset + count)
            }
            row += run
        }
        var dimensions = header.dimensions
        dimensions[0] = selection.count
        return (
            IDXFile(dataType: header.dataType, dimensions: dimensions, payload: payload[...]),
            itemCount
        )
    }

    private static func checkRange(
        _ selection: [Int], itemCount: Int, path: String
    ) throws(DatasetError) {
        if let bad = selection.first(where: { $0 < 0 || $0 >= itemCount }) {
            throw .itemOutOfRange(path: path, index: bad, itemCount: itemCount)
        }
    }

    private init(dataType: DataType, dimensions: [Int], payload: ArraySlice<UInt8>) {
        self.dataType = dataType
        self.dimensions = dimensions
        self.payload = payload
    }

    /// The items `selection` of this file, as a file of `selection.count` items.
    public func gathering(_ selection: [Int]) -> IDXFile {
        precondition(
            selection.allSatisfy { $0 >= 0 && $0 < itemCount }, "selection outside 0..<\(itemCount)"
        )
        let itemBytes = itemCount == 0 ? 0 : payload.count / itemCount
        var bytes: [UInt8] = []
        bytes.reserveCapacity(selection.count * itemBytes)
        let base = payload.startIndex
        for item in selection {
            bytes += payload[(base + item * itemBytes)..<(base + (item + 1) * itemBytes)]
        }
        var dimensions = self.dimensions
        dimensions[0] = selection.count
        return IDXFile(dataType: dataType, dimensions: dimensions, payload: bytes[...])
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
        let header = try Header(bytes, path: path, afterDecompression: isCompressed)
        let (dataType, dimensions, headerCount) = (
            header.dataType, header.dimensions, header.byteCount
        )
        let expected = header.fileByteCount
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

    /// A parsed IDX header: element type, extents and the sizes they imply.
    struct Header {
        let dataType: DataType
        let dimensions: [Int]
        /// Bytes of the header itself.
        let byteCount: Int
        /// Bytes of the payload.
        let payloadByteCount: Int
        /// Header plus payload: the size of a well-formed plain file.
        var fileByteCount: Int { byteCount + payloadByteCount }
        /// Bytes per item (one element of the first axis).
        var itemByteCount: Int {
            dimensions[0] == 0 ? 0 : payloadByteCount / dimensions[0]
        }

        /// Parses the header at the start of `bytes` (which may hold more than the header).
        init(_ bytes: [UInt8], path: String, afterDecompression: Bool) throws(DatasetError) {
            guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0 else {
                throw .badMagic(
                    path: path, found: Array(bytes.prefix(4)),
                    afterDecompression: afterDecompression)
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
            self.dataType = dataType
            self.dimensions = dimensions
            self.byteCount = headerCount
            self.payloadByteCount = payloadCount
        }
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

/// A read-only descriptor of the file at `path`.
func openForReading(_ path: String) throws(DatasetError) -> Int32 {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else {
        if errno == ENOENT { throw .fileNotFound(path: path) }
        throw .unreadable(path: path, reason: String(cString: strerror(errno)))
    }
    var status = stat()
    if fstat(descriptor, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR {
        close(descriptor)
        throw .unreadable(path: path, reason: "it is a directory")
    }
    return descriptor
}

/// Reads up to `buffer.count` bytes at `offset`; returns how many there were before the end.
func readFully(
    _ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String
) throws(DatasetError) -> Int {
    var done = 0
    while done < buffer.count {
        let count = pread(
            descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
        if count < 0 {
            if errno == EINTR { continue }
            throw .unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        if count == 0 { break }
        done += count
    }
    return done
}

func readFully(
    _ descriptor: Int32, into bytes: inout [UInt8], at offset: Int, path: String
) throws(DatasetError) -> Int {
    try bytes.withUnsafeMutableBytes { buffer in
        Result { () throws(DatasetError) in
            try readFully(descriptor, into: buffer, at: offset, path: path)
        }
    }.get()
}

/// The bytes of the file at `path` (POSIX calls: Foundation's `Data(contentsOf:)` and its
/// error texts would link all of Foundation into the board client).
private func readBytes(path: String) throws(DatasetError) -> [UInt8] {
    let descriptor = try openForReading(path)
    defer { close(descriptor) }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else {
        throw .unreadable(path: path, reason: String(cString: strerror(errno)))
    }
    var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
    let count = try readFully(descriptor, into: &bytes, at: 0, path: path)
    bytes.removeLast(bytes.count - count)
    return bytes
}
