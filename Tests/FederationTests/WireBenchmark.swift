import Federation
import Foundation
import Tensors
import Testing

/// Throughput of encode and decode on a ~1 MB train message, CRC32C included.
///
/// Run in release: `MAESTRO_BENCH=1 swift test -c release --filter WireBenchmark`.
@Suite(
    "Wire codec throughput",
    .enabled(if: ProcessInfo.processInfo.environment["MAESTRO_BENCH"] != nil))
struct WireBenchmark {
    @Test("Encode and decode of a 1 MB train message")
    func throughput() throws {
        var generator = SeededGenerator(seed: 3)
        let message = RandomMessages.largeTraining(megabytes: 1, using: &generator)
        let size = WireCodec.encodedSize(of: message)
        let repetitions = 300
        let clock = ContinuousClock()
        var frame = [UInt8]()
        let encodeTime = clock.measure {
            for round in 0..<repetitions {
                frame = WireCodec.encode(message, round: UInt32(round), sender: 0)
            }
        }
        var decoded: Envelope?
        let decodeTime = try clock.measure {
            for _ in 0..<repetitions { decoded = try WireCodec.decode(frame, maximumSize: 1 << 24) }
        }
        let crcTime = clock.measure {
            for _ in 0..<repetitions { _ = CRC32C.checksum(frame) }
        }
        let portableTime = clock.measure {
            for _ in 0..<20 { _ = frame.withUnsafeBytes { CRC32C.portableChecksum($0) } }
        }
        #expect(decoded?.message == message)
        func rate(_ duration: Duration, _ count: Int) -> String {
            let seconds =
                Double(duration.components.seconds) + Double(duration.components.attoseconds)
                * 1e-18
            return String(format: "%.2f GB/s", Double(size * count) / seconds / 1e9)
        }
        print(
            "wire benchmark: frame \(size) bytes; encode \(rate(encodeTime, repetitions)),",
            "decode \(rate(decodeTime, repetitions)), CRC32C \(rate(crcTime, repetitions))",
            "(hardware: \(CRC32C.isHardwareAccelerated)), portable CRC32C \(rate(portableTime, 20))"
        )
    }
}
