import Federation
import Tensors
import Testing

/// A frame built field by field with valid checksums, to reach the checks behind them.
func handmadeFrame(
    type: UInt8, payload: [UInt8], magic: [UInt8] = Array("MSTR".utf8), version: UInt16 = 1,
    flags: UInt8 = 0, payloadLength: UInt64? = nil
) -> [UInt8] {
    var bytes = magic
    bytes += [
        UInt8(truncatingIfNeeded: version), UInt8(truncatingIfNeeded: version >> 8), type, flags,
    ]
    bytes += littleEndianBytes(UInt32(7)) + littleEndianBytes(UInt32(9))
    bytes += littleEndianBytes(payloadLength ?? UInt64(payload.count))
    bytes += littleEndianBytes(CRC32C.checksum(payload))
    bytes += littleEndianBytes(CRC32C.checksum(bytes))
    return bytes + payload
}

/// Recomputes both checksums of a frame whose payload was edited in place.
func resealed(_ frame: [UInt8]) -> [UInt8] {
    var bytes = frame
    let payloadCRC = littleEndianBytes(CRC32C.checksum(Array(bytes[32...])))
    bytes.replaceSubrange(24..<28, with: payloadCRC)
    let headerCRC = littleEndianBytes(CRC32C.checksum(Array(bytes[0..<28])))
    bytes.replaceSubrange(28..<32, with: headerCRC)
    return bytes
}

func decodeError(_ bytes: [UInt8], maximumSize: Int = 1 << 20) -> WireError? {
    do {
        _ = try WireCodec.decode(bytes, maximumSize: maximumSize)
        return nil
    } catch {
        return error
    }
}

/// Tensor bytes as the wire writes them, for handmade payloads.
func tensorBytes(extents: [UInt32], data: [Float]) -> [UInt8] {
    [UInt8(extents.count)] + extents.flatMap { littleEndianBytes($0) }
        + data.flatMap { littleEndianBytes($0.bitPattern) }
}

/// `update` payload prefix: sampleCount, trainingLoss, computeSeconds.
let updatePrefix =
    littleEndianBytes(UInt32(1)) + littleEndianBytes(UInt32(0))
    + littleEndianBytes(UInt32(0))

@Suite("Wire codec refuses malformed frames")
struct WireMalformedTests {
    static func sample() -> [UInt8] {
        var generator = SeededGenerator(seed: 5)
        var message: Message
        repeat {
            message = RandomMessages.message(.train, using: &generator)
        } while WireCodec.encodedSize(of: message) < 150 || WireCodec.encodedSize(of: message) > 600
        return WireCodec.encode(message, round: 11, sender: 12)
    }

    @Test("Every truncation of a valid frame throws")
    func everyTruncation() {
        let bytes = Self.sample()
        for length in 0..<bytes.count {
            let error = decodeError(Array(bytes[..<length]))
            if length < WireLimits.headerSize {
                #expect(error == .tooShort(count: length, headerSize: 32), "length \(length)")
            } else {
                #expect(
                    error == .truncated(expectedSize: UInt64(bytes.count), actualSize: length),
                    "length \(length)")
            }
        }
    }

    @Test("Every single-bit flip in header or payload is detected")
    func everyBitFlip() {
        let bytes = Self.sample()
        var undetected = [Int]()
        for bit in 0..<(bytes.count * 8) {
            var damaged = bytes
            damaged[bit / 8] ^= 1 << (bit % 8)
            if decodeError(damaged) == nil { undetected.append(bit) }
        }
        #expect(undetected.isEmpty, "undetected flips at bits \(undetected)")
    }

    @Test("Wrong magic, version, flags and type are named")
    func headerFields() {
        #expect(decodeError(handmadeFrame(type: 9, payload: [])) == nil)
        #expect(
            decodeError(handmadeFrame(type: 9, payload: [], magic: Array("MSTX".utf8)))
                == .badMagic(Array("MSTX".utf8)))
        #expect(
            decodeError(handmadeFrame(type: 9, payload: [], version: 2))
                == .unsupportedVersion(2, supported: 1))
        #expect(
            decodeError(handmadeFrame(type: 9, payload: [], flags: 0x80)) == .reservedFlags(0x80))
        #expect(decodeError(handmadeFrame(type: 0, payload: [])) == .unknownMessageType(0))
        #expect(decodeError(handmadeFrame(type: 200, payload: [])) == .unknownMessageType(200))
    }

    @Test("Oversized length fields and frames are refused before any allocation")
    func oversized() {
        let huge = handmadeFrame(type: 4, payload: [], payloadLength: .max)
        #expect(decodeError(huge) == .messageTooLarge(size: .max, maximum: 1 << 20))
        let big = handmadeFrame(type: 4, payload: [], payloadLength: 5000)
        #expect(decodeError(big, maximumSize: 4096) == .messageTooLarge(size: 5032, maximum: 4096))
        let bytes = Self.sample()
        #expect(
            decodeError(bytes, maximumSize: bytes.count - 1)
                == .messageTooLarge(size: UInt64(bytes.count), maximum: bytes.count - 1))
        #expect(decodeError(bytes, maximumSize: bytes.count) == nil)
    }

    @Test("Trailing bytes after the frame or after the last field are refused")
    func trailing() {
        let bytes = Self.sample()
        #expect(
            decodeError(bytes + [0])
                == .trailingBytes(expectedSize: UInt64(bytes.count), actualSize: bytes.count + 1))
        #expect(
            decodeError(handmadeFrame(type: 9, payload: [1, 2]))
                == .trailingPayloadBytes(type: .heartbeat, count: 2))
        let registered = littleEndianBytes(UInt32(1)) + littleEndianBytes(UInt64(2)) + [0, 0] + [0]
        #expect(
            decodeError(handmadeFrame(type: 2, payload: registered))
                == .trailingPayloadBytes(type: .registered, count: 1))
    }

    @Test("Extents whose product overflows are refused")
    func dimensionOverflow() {
        let extents: [UInt32] = [.max, .max, .max, .max]
        let payload =
            updatePrefix + littleEndianBytes(UInt32(1)) + tensorBytes(extents: extents, data: [])
        #expect(
            decodeError(handmadeFrame(type: 4, payload: payload))
                == .elementCountOverflow(field: "update.factors[0].up", shape: extents))
        // A zero extent after an overflowing prefix is refused too (Tensor multiplies left to right).
        let zeroLast: [UInt32] = [.max, .max, .max, 0]
        let zeroPayload =
            updatePrefix + littleEndianBytes(UInt32(1))
            + tensorBytes(extents: zeroLast, data: [])
        #expect(
            decodeError(handmadeFrame(type: 4, payload: zeroPayload))
                == .elementCountOverflow(field: "update.factors[0].up", shape: zeroLast))
        // A zero extent first is a legal empty tensor, however large the others.
        let zeroFirst =
            updatePrefix + littleEndianBytes(UInt32(0))
            + littleEndianBytes(UInt32(1)) + tensorBytes(extents: [0, .max, .max], data: [])
        if case .update(let update)? = try? WireCodec.decode(
            handmadeFrame(type: 4, payload: zeroFirst), maximumSize: 1 << 16
        ).message {
            #expect(update.shared[0].shape == [0, Int(UInt32.max), Int(UInt32.max)])
        } else {
            Issue.record("empty tensor with huge extents did not decode")
        }
    }

    @Test("More data claimed than present is refused")
    func claimsMoreThanPresent() {
        let payload =
            updatePrefix + littleEndianBytes(UInt32(1))
            + tensorBytes(extents: [1000, 1000], data: [1, 2])
        #expect(
            decodeError(handmadeFrame(type: 4, payload: payload))
                == .fieldTruncated(field: "update.factors[0].up", needed: 4_000_000, remaining: 8))
        let manyPairs = updatePrefix + littleEndianBytes(UInt32.max)
        #expect(
            decodeError(handmadeFrame(type: 4, payload: manyPairs))
                == .fieldTruncated(
                    field: "update.factors", needed: 10 * UInt64(UInt32.max), remaining: 0))
        let manyResults = littleEndianBytes(UInt32(2)) + [UInt8](repeating: 0, count: 12)
        #expect(
            decodeError(handmadeFrame(type: 6, payload: manyResults))
                == .fieldTruncated(field: "evaluation.results", needed: 24, remaining: 12))
    }

    @Test("Too many axes, bad text and unknown sampler codes are named")
    func fieldValues() {
        let nineAxes =
            updatePrefix + littleEndianBytes(UInt32(1))
            + tensorBytes(extents: Array(repeating: 1, count: 9), data: [1])
        #expect(
            decodeError(handmadeFrame(type: 4, payload: nineAxes))
                == .tooManyDimensions(field: "update.factors[0].up", count: 9, maximum: 8))
        #expect(
            decodeError(handmadeFrame(type: 7, payload: [2, 0, 0xC3, 0x28]))
                == .invalidUTF8(field: "shutdown.reason"))
        #expect(
            decodeError(
                handmadeFrame(type: 7, payload: [0x01, 0x10] + [UInt8](repeating: 65, count: 4097)))
                == .stringTooLong(field: "shutdown.reason", byteCount: 4097, maximum: 4096))
        // Scalars, sampler code 9, momentum, weight decay, full-budget probability, the
        // distillation flag, then empty lists of sampler fractions, budgets, factors, shared.
        var train = [UInt8](repeating: 0, count: 20) + [9] + [UInt8](repeating: 0, count: 13)
        train +=
            littleEndianBytes(UInt32(0)) + littleEndianBytes(UInt32(0))
            + littleEndianBytes(UInt32(0)) + littleEndianBytes(UInt32(0))
        #expect(
            decodeError(handmadeFrame(type: 3, payload: train))
                == .invalidValue(field: "train.sampler", value: 9))
        train[20] = 4
        #expect(decodeError(handmadeFrame(type: 3, payload: train)) == nil)
        // The options byte: bit 0 self-distillation, bit 1 frozen convolutions, bit 2 FjORD's
        // distillation over widths (two f32 follow the byte), no others.
        train[33] = 3
        #expect(decodeError(handmadeFrame(type: 3, payload: train)) == nil)
        train[33] = 8
        #expect(
            decodeError(handmadeFrame(type: 3, payload: train))
                == .invalidValue(field: "train.options", value: 8))
        train[33] = 7
        // Without its two floats the lists' counts are read as them and the payload ends early.
        #expect(decodeError(handmadeFrame(type: 3, payload: train)) != nil)
        let distilled =
            Array(train[..<34]) + littleEndianBytes(Float(0.5).bitPattern)
            + littleEndianBytes(Float(2).bitPattern) + Array(train[34...])
        #expect(decodeError(handmadeFrame(type: 3, payload: distilled)) == nil)
    }

    @Test("Random edits behind valid checksums never crash the decoder")
    func resealedMutations() {
        var generator = SeededGenerator(seed: 77)
        var decoded = 0
        var refused = 0
        for trial in 0..<3000 {
            let type = MessageType.allCases[trial % MessageType.allCases.count]
            var bytes = WireCodec.encode(
                RandomMessages.message(type, using: &generator), round: 1, sender: 2)
            guard bytes.count > 32 else { continue }
            for _ in 0..<Int.random(in: 1...4, using: &generator) where bytes.count > 32 {
                let index = Int.random(in: 32..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes[index] = UInt8.random(in: 0...255, using: &generator)
                case 1: bytes[index] = [0x00, 0xFF, 0x7F, 0x80].randomElement(using: &generator)!
                default: bytes.remove(at: index)
                }
            }
            bytes = resealed(bytes)
            let length = littleEndianBytes(UInt64(bytes.count - 32))
            bytes.replaceSubrange(16..<24, with: length)
            bytes = resealed(bytes)
            if decodeError(bytes) == nil { decoded += 1 } else { refused += 1 }
        }
        #expect(refused > 0)
        #expect(decoded + refused > 2000)
    }

    @Test("Random byte strings are refused")
    func randomBytes() {
        var generator = SeededGenerator(seed: 78)
        for _ in 0..<2000 {
            let count = Int.random(in: 0...200, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if count >= 4, Bool.random(using: &generator) {
                bytes.replaceSubrange(0..<4, with: Array("MSTR".utf8))
            }
            #expect(decodeError(bytes) != nil)
        }
    }
}
