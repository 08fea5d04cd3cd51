#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Tensors

/// The `.maestro` model file: versioned, self-describing, checksummed.
///
/// Layout (little-endian):
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `MAESTRO\0` |
/// | 8 | 4 | format version (UInt32, currently 1) |
/// | 12 | 4 | header length H (UInt32) |
/// | 16 | H | header: JSON of `ModelFile.Header` (architecture, kept ranks, metadata) |
/// | 16+H | 4·N | every parameter tensor as float32, in architecture order |
/// | 16+H+4·N | 4·S | every state tensor (batch-norm running mean, variance) as float32 |
/// | end−4 | 4 | CRC-32C of all preceding bytes |
public enum ModelFile {
    public static let magic: [UInt8] = Array("MAESTRO".utf8) + [0]
    public static let version: UInt32 = 1
    /// Headers larger than this are refused before any allocation.
    static let maximumHeaderLength = 1 << 20

    /// What the JSON header holds.
    public struct Header: Codable, Sendable, Equatable {
        public var architecture: Architecture
        public var keptRanks: [Int]
        public var metadata: [String: String]
    }

    /// Why bytes are not a model this build can read.
    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case tooShort(bytes: Int)
        case badMagic
        case newerVersion(found: UInt32, supported: UInt32)
        case badHeader(reason: String)
        case sizeMismatch(expected: Int, found: Int)
        case checksumMismatch(stored: UInt32, computed: UInt32)
        case inconsistent(reason: String)

        public var description: String {
            switch self {
            case .tooShort(let bytes): "truncated: only \(bytes) bytes, not a complete model file"
            case .badMagic: "not a Maestro model file (bad magic bytes)"
            case .newerVersion(let found, let supported):
                "format version \(found) is newer than this build supports (\(supported)); upgrade maestro"
            case .badHeader(let reason): "corrupt header: \(reason)"
            case .sizeMismatch(let expected, let found):
                "truncated or padded: the header describes \(expected) bytes, the file has \(found)"
            case .checksumMismatch(let stored, let computed):
                "corrupted: checksum \(String(stored, radix: 16)) stored, \(String(computed, radix: 16)) computed"
            case .inconsistent(let reason): "inconsistent model: \(reason)"
            }
        }
    }

    /// Serialises a network with free-form metadata (training settings, provenance).
    public static func encode(_ network: Network, metadata: [String: String] = [:]) -> [UInt8] {
        let header = Header(
            architecture: network.architecture, keptRanks: network.keptRanks, metadata: metadata)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding plain Codable values of our own types cannot fail.
        let json = (try? encoder.encode(header)).map(Array.init) ?? []
        var bytes = magic
        bytes.appendLittleEndian(version)
        bytes.appendLittleEndian(UInt32(json.count))
        bytes += json
        let floatCount = (network.parameters + network.state).reduce(0) { $0 + $1.count }
        bytes.reserveCapacity(bytes.count + 4 * floatCount + 4)
        // A network without batch normalisation has no state: its bytes are as before.
        for tensor in network.parameters + network.state {
            for value in tensor.scalars { bytes.appendLittleEndian(value.bitPattern) }
        }
        bytes.appendLittleEndian(CRC32C.checksum(bytes))
        return bytes
    }

    /// Reads a network back, refusing anything truncated, corrupted or from a newer version.
    public static func decode(
        _ bytes: [UInt8]
    ) throws(Error) -> (network: Network, metadata: [String: String]) {
        guard bytes.count >= 20 else { throw .tooShort(bytes: bytes.count) }
        guard Array(bytes[0..<8]) == magic else { throw .badMagic }
        let fileVersion = bytes.readLittleEndianUInt32(at: 8)
        guard fileVersion <= version else {
            throw .newerVersion(found: fileVersion, supported: version)
        }
        guard fileVersion >= 1 else { throw .badHeader(reason: "version 0") }
        let headerLength = Int(bytes.readLittleEndianUInt32(at: 12))
        guard headerLength <= maximumHeaderLength, 16 + headerLength + 4 <= bytes.count else {
            throw .sizeMismatch(expected: 16 + headerLength + 4, found: bytes.count)
        }
        let stored = bytes.readLittleEndianUInt32(at: bytes.count - 4)
        let computed = bytes.withUnsafeBytes {
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<(bytes.count - 4)]))
        }
        let header: Header
        do {
            header = try JSONDecoder().decode(
                Header.self, from: Data(bytes[16..<(16 + headerLength)]))
        } catch {
            throw stored != computed
                ? .checksumMismatch(stored: stored, computed: computed)
                : .badHeader(reason: "\(error)")
        }
        if let problem = header.architecture.inconsistency { throw .inconsistent(reason: problem) }
        let shapes = header.architecture.parameterShapes
        guard let parameterFloats = header.architecture.checkedParameterFloatCount,
            let stateFloats = header.architecture.checkedStateFloatCount,
            parameterFloats <= bytes.count / 4, stateFloats <= bytes.count / 4
        else {
            throw .inconsistent(
                reason: "the header's layers hold more weights than the file's \(bytes.count) bytes"
            )
        }
        let expected = 16 + headerLength + 4 * (parameterFloats + stateFloats) + 4
        guard expected == bytes.count else {
            throw .sizeMismatch(expected: expected, found: bytes.count)
        }
        guard stored == computed else {
            throw .checksumMismatch(stored: stored, computed: computed)
        }
        let maxRanks = header.architecture.lowRankLayerIndices.map {
            header.architecture.layers[$0].maxRank ?? 0
        }
        guard header.keptRanks.count == maxRanks.count,
            zip(header.keptRanks, maxRanks).allSatisfy({ $0 >= 0 && $0 <= $1 })
        else {
            throw .inconsistent(
                reason: "kept ranks \(header.keptRanks) do not fit max ranks \(maxRanks)")
        }
        var offset = 16 + headerLength
        func readTensors(_ shapes: [[Int]]) -> [Tensor] {
            shapes.map { shape in
                let count = shape.reduce(1, *)
                var values = [Float](repeating: 0, count: count)
                for i in 0..<count {
                    values[i] = Float(bitPattern: bytes.readLittleEndianUInt32(at: offset + 4 * i))
                }
                offset += 4 * count
                return Tensor(shape: shape, scalars: values)
            }
        }
        let parameters = readTensors(shapes)
        let state = readTensors(header.architecture.stateShapes)
        guard parameters.allSatisfy({ $0.scalars.allSatisfy(\.isFinite) }) else {
            throw .inconsistent(reason: "non-finite weights")
        }
        // State comes in (mean, variance) pairs: every value finite, every variance ≥ 0.
        guard state.allSatisfy({ $0.scalars.allSatisfy(\.isFinite) }),
            stride(from: 1, to: state.count, by: 2).allSatisfy({
                state[$0].scalars.allSatisfy { $0 >= 0 }
            })
        else {
            throw .inconsistent(reason: "non-finite running statistics or a negative variance")
        }
        let network = Network(
            architecture: header.architecture, parameters: parameters, keptRanks: header.keptRanks,
            state: state)
        return (network, header.metadata)
    }
}
