extension [UInt8] {
    /// Appends `value` as four little-endian bytes (the byte order of Maestro's file formats).
    public mutating func appendLittleEndian(_ value: UInt32) {
        append(contentsOf: [
            UInt8(value & 0xFF), UInt8((value >> 8) & 0xFF), UInt8((value >> 16) & 0xFF),
            UInt8(value >> 24),
        ])
    }

    /// The little-endian UInt32 at `offset` (the caller checks that four bytes are there).
    public func readLittleEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(self[offset]) | UInt32(self[offset + 1]) << 8 | UInt32(self[offset + 2]) << 16
            | UInt32(self[offset + 3]) << 24
    }
}
