/// Why a frame was refused by ``WireCodec/decode(_:maximumSize:)-(UnsafeRawBufferPointer,_)``
/// or a payload by ``WireCodec/validate(factors:shared:against:requireFinite:)``.
///
/// Every case names what was wrong and where; `description` is one line for a log.
/// `field` strings are paths such as `train.factors[2].down`.
public enum WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Fewer bytes than a header.
    case tooShort(count: Int, headerSize: Int)
    /// The first four bytes are not "MSTR".
    case badMagic([UInt8])
    /// A protocol version this decoder does not speak.
    case unsupportedVersion(UInt16, supported: UInt16)
    /// The header's own CRC32C does not match (a damaged header).
    case headerChecksumMismatch(stored: UInt32, computed: UInt32)
    /// The reserved flags byte is not zero.
    case reservedFlags(UInt8)
    /// A message type code this decoder does not know.
    case unknownMessageType(UInt8)
    /// The frame is (or claims to be) larger than the receiver accepts.
    case messageTooLarge(size: UInt64, maximum: Int)
    /// The header claims more payload than the frame holds.
    case truncated(expectedSize: UInt64, actualSize: Int)
    /// The frame holds bytes after the payload the header announces.
    case trailingBytes(expectedSize: UInt64, actualSize: Int)
    /// The payload's CRC32C does not match.
    case payloadChecksumMismatch(stored: UInt32, computed: UInt32)
    /// A payload field runs past the end of the payload.
    case fieldTruncated(field: String, needed: UInt64, remaining: Int)
    /// The payload holds bytes after its last field.
    case trailingPayloadBytes(type: MessageType, count: Int)
    /// A tensor with more axes than allowed.
    case tooManyDimensions(field: String, count: Int, maximum: Int)
    /// A tensor's extents multiply past the address space.
    case elementCountOverflow(field: String, shape: [UInt32])
    /// A string longer than its limit.
    case stringTooLong(field: String, byteCount: Int, maximum: Int)
    /// A string that is not valid UTF-8.
    case invalidUTF8(field: String)
    /// An enumerated field with an unknown code.
    case invalidValue(field: String, value: UInt64)

    // Validation of decoded content against what the receiver expects.

    /// Not as many factor pairs (LoD layers) as expected.
    case factorCountMismatch(expected: Int, got: Int)
    /// Not as many shared tensors as expected.
    case sharedCountMismatch(expected: Int, got: Int)
    /// One tensor has the wrong shape.
    case shapeMismatch(layer: TensorSlot, expected: [Int], got: [Int])
    /// One tensor holds a NaN or an infinity.
    case nonFiniteValue(layer: TensorSlot, index: Int)

    public var description: String {
        switch self {
        case .tooShort(let count, let headerSize):
            "frame of \(count) bytes is shorter than the \(headerSize)-byte header"
        case .badMagic(let bytes):
            "bad magic \(bytes.map { hex($0) }.joined(separator: " ")) (expected \"MSTR\")"
        case .unsupportedVersion(let version, let supported):
            "unsupported protocol version \(version) (this build speaks \(supported))"
        case .headerChecksumMismatch(let stored, let computed):
            "header CRC32C mismatch: stored 0x\(hex(stored)), computed 0x\(hex(computed))"
        case .reservedFlags(let flags):
            "reserved flags byte is 0x\(hex(flags)), expected 0"
        case .unknownMessageType(let code):
            "unknown message type \(code)"
        case .messageTooLarge(let size, let maximum):
            "frame of \(size) bytes exceeds the maximum of \(maximum) bytes"
        case .truncated(let expectedSize, let actualSize):
            "truncated frame: header announces \(expectedSize) bytes, got \(actualSize)"
        case .trailingBytes(let expectedSize, let actualSize):
            "trailing bytes: header announces \(expectedSize) bytes, got \(actualSize)"
        case .payloadChecksumMismatch(let stored, let computed):
            "payload CRC32C mismatch: stored 0x\(hex(stored)), computed 0x\(hex(computed))"
        case .fieldTruncated(let field, let needed, let remaining):
            "\(field) needs \(needed) bytes but only \(remaining) remain in the payload"
        case .trailingPayloadBytes(let type, let count):
            "\(count) unexpected bytes after the last field of a \(type) payload"
        case .tooManyDimensions(let field, let count, let maximum):
            "\(field) has \(count) dimensions (at most \(maximum))"
        case .elementCountOverflow(let field, let shape):
            "\(field) has extents \(shape) whose product overflows"
        case .stringTooLong(let field, let byteCount, let maximum):
            "\(field) is \(byteCount) bytes long (at most \(maximum))"
        case .invalidUTF8(let field):
            "\(field) is not valid UTF-8"
        case .invalidValue(let field, let value):
            "\(field) has unknown value \(value)"
        case .factorCountMismatch(let expected, let got):
            "expected \(expected) factor pairs, got \(got)"
        case .sharedCountMismatch(let expected, let got):
            "expected \(expected) shared tensors, got \(got)"
        case .shapeMismatch(let layer, let expected, let got):
            "\(layer) has shape \(got), expected \(expected)"
        case .nonFiniteValue(let layer, let index):
            "\(layer) holds a non-finite value at element \(index)"
        }
    }
}

/// Where a tensor sits in a message, for error messages.
public enum TensorSlot: Sendable, Hashable, CustomStringConvertible {
    /// `factors[layer].up`.
    case up(layer: Int)
    /// `factors[layer].down`.
    case down(layer: Int)
    /// `shared[index]`.
    case shared(index: Int)

    public var description: String {
        switch self {
        case .up(let layer): "factors[\(layer)].up"
        case .down(let layer): "factors[\(layer)].down"
        case .shared(let index): "shared[\(index)]"
        }
    }
}

private func hex(_ value: some FixedWidthInteger) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    let width = value.bitWidth / 4
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}
