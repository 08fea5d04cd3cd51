import Federation
import Tensors

/// libFuzzer entry point: the wire decoder must turn any bytes into a message or a typed
/// error, never a crash; a decoded message must re-encode to the same bytes.
///
/// Inputs whose first byte is odd are "resealed" first: the payload length and both CRC32C
/// fields are recomputed, so mutations reach the payload parser instead of stopping at a
/// checksum mismatch.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWire(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    var bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if data[0] & 1 == 1 && bytes.count >= WireLimits.headerSize {
        let payloadLength = UInt64(bytes.count - WireLimits.headerSize)
        for i in 0..<8 { bytes[16 + i] = UInt8(truncatingIfNeeded: payloadLength >> (8 * UInt64(i))) }
        let payloadCRC = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[32...])) }
        for i in 0..<4 { bytes[24 + i] = UInt8(truncatingIfNeeded: payloadCRC >> (8 * UInt32(i))) }
        let headerCRC = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<28])) }
        for i in 0..<4 { bytes[28 + i] = UInt8(truncatingIfNeeded: headerCRC >> (8 * UInt32(i))) }
    }
    if let envelope = try? WireCodec.decode(bytes, maximumSize: 1 << 20) {
        let again = WireCodec.encode(envelope.message, round: envelope.round, sender: envelope.sender)
        precondition(again.count == bytes.count, "re-encoded size differs")
    }
    return 0
}
