/// Why a data file could not be turned into a dataset; every case names the file.
///
/// Thrown for bad input (missing, damaged or mismatched files), never for programmer errors,
/// which trap with a precondition instead. `description` is one line meant for the user:
/// the path first, then what was expected and what was found.
public enum DatasetError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Nothing exists at `path`.
    case fileNotFound(path: String)
    /// The file exists but could not be read (a directory, no permission, an I/O error).
    case unreadable(path: String, reason: String)
    /// The content starts with neither the gzip magic `1f 8b` nor an IDX magic `00 00 type n`.
    /// `found` holds up to the first four bytes; `afterDecompression` tells whether they are
    /// the bytes inside a gzip stream.
    case badMagic(path: String, found: [UInt8], afterDecompression: Bool)
    /// zlib rejected the gzip stream, or it ended before its end marker; `message` is zlib's.
    case corruptGzip(path: String, message: String)
    /// The decompressed content would exceed `limitBytes` (a decompression bomb or a wrong file).
    case tooLarge(path: String, limitBytes: Int)
    /// The IDX header's dimensions are impossible (zero dimensions or a size that overflows).
    case implausibleHeader(path: String, reason: String)
    /// The header promises `expectedBytes` (header plus items × dimensions) but the file holds
    /// only `actualBytes`.
    case truncated(path: String, expectedBytes: Int, actualBytes: Int)
    /// The file holds `actualBytes`, more than the `expectedBytes` its header accounts for.
    case trailingData(path: String, expectedBytes: Int, actualBytes: Int)
    /// The IDX type byte is not one of the types the format defines.
    case unknownDataType(path: String, typeByte: UInt8)
    /// The IDX file holds another element type than the one required.
    case wrongDataType(path: String, found: IDXFile.DataType, expected: IDXFile.DataType)
    /// The IDX file has other dimensions than required (`nil` entries accept any extent).
    case unexpectedDimensions(path: String, found: [Int], expected: [Int?])
    /// An images file and its labels file disagree on the number of samples.
    case countMismatch(imagesPath: String, imageCount: Int, labelsPath: String, labelCount: Int)
    /// Sample `index` has a label outside `0..<classCount`.
    case labelOutOfRange(path: String, index: Int, label: Int, classCount: Int)
    /// Item `index` was asked for, but the file holds only `itemCount` items.
    case itemOutOfRange(path: String, index: Int, itemCount: Int)
    /// Record `record` (from 0) of a fixed-size-record file (CIFAR) is unusable: `reason`.
    case badRecord(path: String, record: Int, reason: String)
    /// The JSON text is not well formed, or not shaped as the format requires, at byte
    /// `byteOffset` (from 0).
    case malformedJSON(path: String, byteOffset: Int, reason: String)
    /// A LEAF writer (a `users` entry) is unusable: `reason` (no samples, listed twice, …).
    case badWriter(path: String, writer: String, reason: String)
    /// Sample `sample` (from 0) of a LEAF writer is unusable: `reason` (ragged, not finite,
    /// label out of range).
    case badSample(path: String, writer: String, sample: Int, reason: String)
    /// The data at `path` is too small for what was asked of it: `reason`.
    case tooFewSamples(path: String, reason: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): file not found"
        case .unreadable(let path, let reason):
            return "\(path): cannot read the file: \(reason)"
        case .badMagic(let path, let found, let afterDecompression):
            let what = afterDecompression ? "the decompressed content" : "the file"
            if found.isEmpty { return "\(path): \(what) is empty" }
            return
                "\(path): \(what) is neither gzip (1f 8b) nor IDX (00 00 type dims); "
                + "it starts with \(hex(found))"
        case .corruptGzip(let path, let message):
            return "\(path): corrupt gzip stream: \(message)"
        case .tooLarge(let path, let limitBytes):
            return "\(path): decompressed content exceeds the limit of \(limitBytes) bytes"
        case .implausibleHeader(let path, let reason):
            return "\(path): implausible IDX header: \(reason)"
        case .truncated(let path, let expectedBytes, let actualBytes):
            return
                "\(path): truncated: the IDX header promises \(expectedBytes) bytes "
                + "but the file holds \(actualBytes)"
        case .trailingData(let path, let expectedBytes, let actualBytes):
            return
                "\(path): \(actualBytes - expectedBytes) unexpected bytes after the data: "
                + "the IDX header accounts for \(expectedBytes) bytes, the file holds \(actualBytes)"
        case .unknownDataType(let path, let typeByte):
            return "\(path): unknown IDX data type byte \(hex([typeByte]))"
        case .wrongDataType(let path, let found, let expected):
            return "\(path): IDX elements are \(found), expected \(expected)"
        case .unexpectedDimensions(let path, let found, let expected):
            let pattern = expected.map { $0.map(String.init) ?? "*" }.joined(separator: " × ")
            let actual = found.map(String.init).joined(separator: " × ")
            return "\(path): IDX dimensions are \(actual), expected \(pattern)"
        case .countMismatch(let imagesPath, let imageCount, let labelsPath, let labelCount):
            return
                "\(imagesPath) holds \(imageCount) images but \(labelsPath) "
                + "holds \(labelCount) labels"
        case .labelOutOfRange(let path, let index, let label, let classCount):
            return "\(path): label \(label) of sample \(index) is outside 0..<\(classCount)"
        case .itemOutOfRange(let path, let index, let itemCount):
            return "\(path): item \(index) was asked for, but the file holds \(itemCount) items"
        case .badRecord(let path, let record, let reason):
            return "\(path): record \(record): \(reason)"
        case .malformedJSON(let path, let byteOffset, let reason):
            return "\(path): malformed JSON at byte \(byteOffset): \(reason)"
        case .badWriter(let path, let writer, let reason):
            return "\(path): user \"\(writer)\": \(reason)"
        case .badSample(let path, let writer, let sample, let reason):
            return "\(path): user \"\(writer)\", sample \(sample): \(reason)"
        case .tooFewSamples(let path, let reason):
            return "\(path): \(reason)"
        }
    }
}

private func hex(_ bytes: [UInt8]) -> String {
    bytes.map { byte in
        let digits = String(byte, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }.joined(separator: " ")
}
