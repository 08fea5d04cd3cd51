import Federation
import Tensors
import Testing

@Suite("Wire codec round trips")
struct WireCodecTests {
    static let maximumSize = 1 << 20

    @Test("Every message type survives encode → decode", arguments: MessageType.allCases)
    func roundTrip(type: MessageType) throws {
        var generator = SeededGenerator(seed: 100 + UInt64(type.rawValue))
        for trial in 0..<60 {
            let message = RandomMessages.message(type, using: &generator)
            let round = UInt32.random(in: 0...UInt32.max, using: &generator)
            let sender = UInt32.random(in: 0...UInt32.max, using: &generator)
            let bytes = WireCodec.encode(message, round: round, sender: sender)
            #expect(bytes.count == WireCodec.encodedSize(of: message), "trial \(trial)")
            let envelope = try WireCodec.decode(bytes, maximumSize: Self.maximumSize)
            #expect(envelope == Envelope(round: round, sender: sender, message: message))
            #expect(envelope.type == type)
        }
    }

    @Test("Empty tensors, zero-rank budgets and scalar tensors round-trip")
    func edgeShapes() throws {
        let message = Message.train(
            TrainingTask(
                budgets: [0, 0, 3],
                factors: [
                    FactorPair(up: Tensor(zeros: [0, 5]), down: Tensor(zeros: [0, 7])),
                    FactorPair(up: Tensor(zeros: [0, 0]), down: Tensor(zeros: [0, 1])),
                    FactorPair(
                        up: Tensor(shape: [3, 1], scalars: [1, -0.0, .leastNonzeroMagnitude]),
                        down: Tensor(shape: [3, 1], scalars: [.greatestFiniteMagnitude, 2, 3])),
                ],
                shared: [Tensor(shape: [], scalars: [42]), Tensor(zeros: [2, 0, 4])],
                localEpochs: 0, batchSize: 0, learningRate: 0, sampler: .unsampled, groupLasso: 0,
                seed: 0))
        let bytes = WireCodec.encode(message, round: 0, sender: 0)
        let decoded = try WireCodec.decode(bytes, maximumSize: Self.maximumSize)
        #expect(decoded.message == message)
    }

    @Test("Special float values keep their bit patterns")
    func floatBits() throws {
        let values: [Float] = [.nan, -.infinity, .infinity, -0.0, .leastNonzeroMagnitude]
        let message = Message.update(
            TrainingUpdate(
                factors: [], shared: [Tensor(shape: [5], scalars: values)], sampleCount: 1,
                trainingLoss: .nan, computeSeconds: -0.0))
        let bytes = WireCodec.encode(message, round: 1, sender: 2)
        guard case .update(let update) = try WireCodec.decode(bytes, maximumSize: 1 << 16).message
        else {
            Issue.record("not an update")
            return
        }
        #expect(update.shared[0].scalars.map(\.bitPattern) == values.map(\.bitPattern))
        #expect(update.trainingLoss.bitPattern == Float.nan.bitPattern)
        #expect(update.computeSeconds.bitPattern == (-0.0 as Float).bitPattern)
    }

    @Test("The header has the documented layout")
    func headerLayout() throws {
        let message = Message.registered(RegistrationAccepted(clientID: 0x0102_0304, runID: 7))
        let bytes = WireCodec.encode(message, round: 0xA0B0_C0D0, sender: 0x1122_3344)
        #expect(Array(bytes[0..<4]) == Array("MSTR".utf8))
        #expect(Array(bytes[4..<8]) == [1, 0, MessageType.registered.rawValue, 0])
        #expect(Array(bytes[8..<12]) == [0xD0, 0xC0, 0xB0, 0xA0])
        #expect(Array(bytes[12..<16]) == [0x44, 0x33, 0x22, 0x11])
        #expect(Array(bytes[16..<24]) == [14, 0, 0, 0, 0, 0, 0, 0])
        let payloadCRC = CRC32C.checksum(Array(bytes[32...]))
        let headerCRC = CRC32C.checksum(Array(bytes[0..<28]))
        #expect(Array(bytes[24..<28]) == littleEndianBytes(payloadCRC))
        #expect(Array(bytes[28..<32]) == littleEndianBytes(headerCRC))
        // clientID, runID, then an empty model description (u16 length 0).
        #expect(Array(bytes[32...]) == [4, 3, 2, 1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        let header = try bytes.withUnsafeBytes {
            try WireCodec.decodeHeader($0, maximumSize: 100)
        }
        #expect(header.type == .registered && header.payloadLength == 14 && header.frameSize == 46)
    }

    @Test("Text longer than its limit is clipped at a UTF-8 scalar boundary")
    func textClipping() throws {
        let long = String(repeating: "ab数", count: 2000)  // 5 bytes per repeat
        let bytes = WireCodec.encode(
            .error(ErrorReport(code: .malformed, message: long)), round: 0, sender: 0)
        guard case .error(let report) = try WireCodec.decode(bytes, maximumSize: 1 << 16).message
        else {
            Issue.record("not an error")
            return
        }
        #expect(report.message.utf8.count <= WireLimits.textBytes)
        #expect(report.message.utf8.count > WireLimits.textBytes - 4)
        #expect(long.hasPrefix(report.message))
        #expect(report.code == .malformed)

        let name = String(repeating: "🙂", count: 100)  // 400 bytes
        let register = WireCodec.encode(
            .register(
                Registration(tierName: name, capability: 1, sampleCount: 2, instanceNonce: 3)),
            round: 0, sender: 0)
        guard
            case .register(let registration) = try WireCodec.decode(register, maximumSize: 4096)
                .message
        else {
            Issue.record("not a register")
            return
        }
        #expect(registration.tierName == String(repeating: "🙂", count: 63))
    }

    @Test("Encoding into a caller's buffer writes the same bytes")
    func encodeIntoBuffer() {
        var generator = SeededGenerator(seed: 9)
        let message = RandomMessages.message(.update, using: &generator)
        let expected = WireCodec.encode(message, round: 3, sender: 4)
        var buffer = [UInt8](repeating: 0xEE, count: expected.count + 10)
        let written = buffer.withUnsafeMutableBytes {
            WireCodec.encode(message, round: 3, sender: 4, into: $0)
        }
        #expect(written == expected.count)
        #expect(Array(buffer[..<written]) == expected)
        #expect(buffer[written...].allSatisfy { $0 == 0xEE })
    }

    @Test("Decoding accepts slices and non-contiguous collections")
    func otherCollections() throws {
        var generator = SeededGenerator(seed: 10)
        let message = RandomMessages.message(.evaluate, using: &generator)
        let bytes = WireCodec.encode(message, round: 5, sender: 6)
        let padded = [0, 0, 0] + bytes
        #expect(try WireCodec.decode(padded[3...], maximumSize: 1 << 16).message == message)
        #expect(
            try WireCodec.decode(bytes.lazy.map { $0 }, maximumSize: 1 << 16).message == message)
    }
}

func littleEndianBytes(_ value: UInt32) -> [UInt8] {
    (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}

func littleEndianBytes(_ value: UInt64) -> [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}

@Suite("Link probe frames")
struct LinkProbeFrameTests {
    @Test(
        "A probe's padding must be there: a frame cut short or with a padding count past its end is refused"
    )
    func paddingChecked() throws {
        let bytes = WireCodec.encode(
            .linkProbe(LinkProbe(replyFrameBytes: 64, paddingBytes: 100)), round: 0, sender: 0)
        #expect(bytes.count == WireLimits.headerSize + 8 + 100)
        #expect(bytes[(WireLimits.headerSize + 8)...].allSatisfy { $0 == 0 })
        // A padding count of 101 over 100 bytes, with checksums made valid: fieldTruncated.
        let forged = WireCodec.encode(
            .linkProbeReply(LinkProbeReply(paddingBytes: 100)), round: 0, sender: 0)
        var edited = forged
        edited[WireLimits.headerSize] = 101
        guard case .fieldTruncated(let field, _, _) = decodeError(resealed(edited)) else {
            Issue.record("a padding count past the frame's end was not refused")
            return
        }
        #expect(field == "linkProbeReply.padding")
        #expect(LinkProbeReply(frameBytes: 10).paddingBytes == 0)
        #expect(LinkProbeReply(frameBytes: 1000).paddingBytes == 1000 - 36)
    }
}
