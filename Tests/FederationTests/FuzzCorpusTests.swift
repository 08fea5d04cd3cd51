import Federation
import Foundation
import Tensors
import Testing

/// Replays the fuzzing corpus (tools/fuzz) in the normal suite: every input decodes or is
/// refused with a typed error, and what decodes re-encodes to the same size.
@Suite("Wire fuzzing corpus replay")
struct WireCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus/wire")

    @Test("Every corpus input is decoded or refused, never a crash")
    func replay() throws {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: Self.corpus.path)) ?? []
        #expect(files.count >= 10, "the wire corpus is missing (run tools/fuzz wire)")
        var decoded = 0
        for file in files {
            let input = Array(try Data(contentsOf: Self.corpus.appendingPathComponent(file)))
            guard !input.isEmpty else { continue }
            var bytes = Array(input.dropFirst())
            if input[0] & 1 == 1 && bytes.count >= WireLimits.headerSize {
                bytes = resealed(bytes)
            }
            if let envelope = try? WireCodec.decode(bytes, maximumSize: 1 << 20) {
                decoded += 1
                #expect(
                    WireCodec.encode(
                        envelope.message, round: envelope.round, sender: envelope.sender
                    ).count == bytes.count)
            }
        }
        #expect(decoded >= 1)
    }

    /// The fuzzer's "resealed" mode: payload length and both checksums recomputed.
    func resealed(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        let payloadLength = UInt64(bytes.count - WireLimits.headerSize)
        for i in 0..<8 {
            bytes[16 + i] = UInt8(truncatingIfNeeded: payloadLength >> (8 * UInt64(i)))
        }
        let payloadCRC = CRC32C.checksum(Array(bytes[32...]))
        for i in 0..<4 { bytes[24 + i] = UInt8(truncatingIfNeeded: payloadCRC >> (8 * UInt32(i))) }
        let headerCRC = CRC32C.checksum(Array(bytes[0..<28]))
        for i in 0..<4 { bytes[28 + i] = UInt8(truncatingIfNeeded: headerCRC >> (8 * UInt32(i))) }
        return bytes
    }
}
