import CChecksum

/// CRC-32C (Castagnoli polynomial 0x1EDC6F41, reflected, initial value and final XOR
/// 0xFFFFFFFF), the checksum of iSCSI, ext4 and Protocol Buffers' `crc32c`.
///
/// Computed with the SSE4.2 `crc32` instruction when the CPU has it (chosen at run time),
/// with slicing-by-8 tables otherwise. `checksum("123456789") == 0xE306_9283`.
public enum CRC32C {
    /// The checksum of `bytes`, continuing from `crc`, the finished checksum of the bytes
    /// before them (0, the default, for none): `checksum(b, continuing: checksum(a))`
    /// equals the checksum of `a` followed by `b`.
    public static func checksum(
        _ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0
    )
        -> UInt32
    {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        return maestro_crc32c(crc, base, bytes.count)
    }

    /// The checksum of a byte array (see ``checksum(_:continuing:)-(UnsafeRawBufferPointer,_)``).
    public static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }

    /// The same checksum computed with the portable tables only (for tests and benchmarks).
    public static func portableChecksum(
        _ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0
    ) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        return maestro_crc32c_portable(crc, base, bytes.count)
    }

    /// Whether this CPU computes the checksum with a hardware instruction.
    public static var isHardwareAccelerated: Bool { maestro_crc32c_is_hardware_accelerated() != 0 }
}
