import Tensors
import Testing

@Suite("CRC32C")
struct CRC32CTests {
    @Test("Known vectors (RFC 3720 B.4 and the check value)")
    func knownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
    }

    @Test("Hardware and portable paths agree on every length and misalignment")
    func hardwareMatchesPortable() {
        var generator = SeededGenerator(seed: 1)
        let bytes = (0..<1100).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes.withUnsafeBytes { all in
            for start in 0..<9 {
                for length in [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 1000] {
                    let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + length)])
                    #expect(
                        CRC32C.checksum(slice) == CRC32C.portableChecksum(slice),
                        "start \(start) length \(length)")
                }
            }
        }
    }

    @Test("Continuing a checksum equals checksumming the concatenation")
    func continuation() {
        var generator = SeededGenerator(seed: 2)
        let bytes = (0..<300).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let whole = CRC32C.checksum(bytes)
        for cut in [0, 1, 8, 13, 150, 299, 300] {
            let head = CRC32C.checksum(Array(bytes[..<cut]))
            #expect(CRC32C.checksum(Array(bytes[cut...]), continuing: head) == whole, "cut \(cut)")
            let portableHead = bytes[..<cut].withUnsafeBytes { CRC32C.portableChecksum($0) }
            let portable = bytes[cut...].withUnsafeBytes {
                CRC32C.portableChecksum($0, continuing: portableHead)
            }
            #expect(portable == whole, "portable cut \(cut)")
        }
    }
}
