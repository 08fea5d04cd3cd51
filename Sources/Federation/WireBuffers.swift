import Tensors

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes little-endian fields into memory the caller sized with `WireCodec.encodedSize(of:)`.
///
/// No bounds checks beyond a debug assertion per field: the encoder computes the exact size
/// first and checks at the end that it wrote exactly that many bytes.
struct WireWriter {
    let base: UnsafeMutableRawPointer
    let capacity: Int
    private(set) var offset: Int

    init(_ buffer: UnsafeMutableRawBufferPointer, offset: Int) {
        self.base = buffer.baseAddress!
        self.capacity = buffer.count
        self.offset = offset
    }

    @inline(__always)
    mutating func write<T: FixedWidthInteger>(_ value: T) {
        assert(offset + MemoryLayout<T>.size <= capacity, "writer overrun at \(offset)")
        base.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
    }

    @inline(__always)
    mutating func write(_ value: Float) { write(value.bitPattern) }

    /// A list count (UInt32).
    mutating func write(count: Int) {
        precondition(count <= Int(UInt32.max), "list of \(count) elements does not fit the wire")
        write(UInt32(truncatingIfNeeded: count))
    }

    /// UInt16 byte length, then the UTF-8 bytes, clipped to `maximum` at a scalar boundary.
    mutating func write(text: String, maximum: Int) {
        var text = text
        let length = WireSize.clippedUTF8Count(text, maximum: maximum)
        write(UInt16(length))
        text.withUTF8 { utf8 in
            if length > 0 { memcpy(base + offset, utf8.baseAddress!, length) }
        }
        offset += length
    }

    /// UInt8 dimension count, UInt32 extents, float32 elements.
    mutating func write(_ tensor: Tensor) {
        precondition(
            tensor.dimensionCount <= WireLimits.maximumDimensions,
            "tensor of shape \(tensor.shape) has more than \(WireLimits.maximumDimensions) axes")
        write(UInt8(tensor.dimensionCount))
        for extent in tensor.shape {
            precondition(extent <= Int(UInt32.max), "extent \(extent) does not fit the wire")
            write(UInt32(extent))
        }
        let byteCount = tensor.count * MemoryLayout<Float>.size
        assert(offset + byteCount <= capacity, "writer overrun at \(offset)")
        #if _endian(little)
        tensor.scalars.withUnsafeBytes { source in
            if byteCount > 0 { memcpy(base + offset, source.baseAddress!, byteCount) }
        }
        offset += byteCount
        #else
        for value in tensor.scalars { write(value) }
        #endif
    }

    /// `count` zero bytes (padding).
    mutating func writeZeros(_ count: Int) {
        assert(offset + count <= capacity, "writer overrun at \(offset)")
        if count > 0 { memset(base + offset, 0, count) }
        offset += count
    }

    mutating func write(_ factors: [FactorPair], _ shared: [Tensor]) {
        write(count: factors.count)
        for pair in factors {
            write(pair.up)
            write(pair.down)
        }
        write(count: shared.count)
        for tensor in shared { write(tensor) }
    }
}

/// Reads little-endian fields from an untrusted payload; every read checks the bytes left
/// and throws a ``WireError`` that names the field instead of reading past the end.
struct WireReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    @inline(__always)
    func need(_ count: Int, _ field: @autoclosure () -> String) throws(WireError) {
        if count > remaining {
            throw .fieldTruncated(field: field(), needed: UInt64(count), remaining: remaining)
        }
    }

    @inline(__always)
    mutating func read<T: FixedWidthInteger>(
        _: T.Type, _ field: @autoclosure () -> String
    ) throws(WireError) -> T {
        try need(MemoryLayout<T>.size, field())
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: value)
    }

    /// Passes over `count` bytes (padding), which must be there.
    mutating func skip(_ count: Int, _ field: @autoclosure () -> String) throws(WireError) {
        try need(count, field())
        offset += count
    }

    @inline(__always)
    mutating func readFloat(_ field: @autoclosure () -> String) throws(WireError) -> Float {
        Float(bitPattern: try read(UInt32.self, field()))
    }

    /// A UInt32 list count, checked against the bytes left: every element takes at least
    /// `minimumElementSize` bytes, so a count no payload could hold is refused before
    /// anything is allocated for it.
    mutating func readCount(
        minimumElementSize: Int, _ field: @autoclosure () -> String
    )
        throws(WireError) -> Int
    {
        let count = Int(try read(UInt32.self, field()))
        let needed = UInt64(count) * UInt64(minimumElementSize)
        if needed > UInt64(remaining) {
            throw .fieldTruncated(field: field(), needed: needed, remaining: remaining)
        }
        return count
    }

    mutating func readText(
        maximum: Int, _ field: @autoclosure () -> String
    ) throws(WireError)
        -> String
    {
        let length = Int(try read(UInt16.self, field()))
        if length > maximum {
            throw .stringTooLong(field: field(), byteCount: length, maximum: maximum)
        }
        try need(length, field())
        let utf8 = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
        // Decoding repairs invalid sequences with U+FFFD, so a changed byte sequence means
        // invalid input (`String(validating:)` would need macOS 15).
        let text = String(decoding: utf8, as: UTF8.self)
        let unchanged =
            text.utf8.withContiguousStorageIfAvailable { stored in
                stored.count == length
                    && (length == 0 || memcmp(stored.baseAddress!, utf8.baseAddress!, length) == 0)
            } ?? text.utf8.elementsEqual(utf8)
        guard unchanged else { throw .invalidUTF8(field: field()) }
        offset += length
        return text
    }

    mutating func readTensor(_ field: @autoclosure () -> String) throws(WireError) -> Tensor {
        let dimensionCount = Int(try read(UInt8.self, field()))
        if dimensionCount > WireLimits.maximumDimensions {
            throw .tooManyDimensions(
                field: field(), count: dimensionCount, maximum: WireLimits.maximumDimensions)
        }
        try need(4 * dimensionCount, field())
        var shape = [Int]()
        shape.reserveCapacity(dimensionCount)
        // Left to right, exactly as `Tensor.init` multiplies, so that it cannot trap either.
        var elementCount = 1
        var overflowed = false
        for _ in 0..<dimensionCount {
            let extent = Int(try read(UInt32.self, field()))
            shape.append(extent)
            let (product, overflow) = elementCount.multipliedReportingOverflow(by: extent)
            elementCount = product
            overflowed = overflowed || overflow
        }
        let (byteCount, byteOverflow) = elementCount.multipliedReportingOverflow(
            by: MemoryLayout<Float>.size)
        if overflowed || byteOverflow {
            throw .elementCountOverflow(field: field(), shape: shape.map { UInt32($0) })
        }
        try need(byteCount, field())
        let source = bytes.baseAddress.map { $0 + offset }
        let scalars = [Float](unsafeUninitializedCapacity: elementCount) { buffer, initialized in
            #if _endian(little)
            if byteCount > 0 { memcpy(buffer.baseAddress!, source!, byteCount) }
            #else
            for i in 0..<elementCount {
                let bits = source!.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
                buffer[i] = Float(bitPattern: UInt32(littleEndian: bits))
            }
            #endif
            initialized = elementCount
        }
        offset += byteCount
        return Tensor(shape: shape, scalars: scalars)
    }

    mutating func readFactors(_ field: String) throws(WireError) -> [FactorPair] {
        let count = try readCount(minimumElementSize: 2 * WireSize.minimumTensor, field)
        var factors = [FactorPair]()
        factors.reserveCapacity(count)
        for index in 0..<count {
            let up = try readTensor("\(field)[\(index)].up")
            let down = try readTensor("\(field)[\(index)].down")
            factors.append(FactorPair(up: up, down: down))
        }
        return factors
    }

    mutating func readTensors(_ field: String) throws(WireError) -> [Tensor] {
        let count = try readCount(minimumElementSize: WireSize.minimumTensor, field)
        var tensors = [Tensor]()
        tensors.reserveCapacity(count)
        for index in 0..<count { tensors.append(try readTensor("\(field)[\(index)]")) }
        return tensors
    }

    /// A UInt32 identifier where `UInt32.max` means none.
    mutating func readOptionalID(_ field: @autoclosure () -> String) throws(WireError) -> UInt32? {
        let value = try read(UInt32.self, field())
        return value == UInt32.max ? nil : value
    }

    mutating func readBudgets(_ field: @autoclosure () -> String) throws(WireError) -> [UInt32] {
        let count = try readCount(minimumElementSize: 4, field())
        var budgets = [UInt32]()
        budgets.reserveCapacity(count)
        for _ in 0..<count { budgets.append(try read(UInt32.self, field())) }
        return budgets
    }
}

/// Byte counts of the encoded fields (the one source of truth for `encodedSize(of:)`).
enum WireSize {
    /// The smallest encoded tensor: a dimension count and either one extent (of 0) or, with
    /// no axes, one element.
    static let minimumTensor = 5

    static func tensor(_ tensor: Tensor) -> Int {
        1 + 4 * tensor.dimensionCount + 4 * tensor.count
    }

    static func factorsAndShared(_ factors: [FactorPair], _ shared: [Tensor]) -> Int {
        var size = 8
        for pair in factors { size += tensor(pair.up) + tensor(pair.down) }
        for item in shared { size += tensor(item) }
        return size
    }

    static func text(_ text: String, maximum: Int) -> Int {
        2 + clippedUTF8Count(text, maximum: maximum)
    }

    /// The UTF-8 length of `text` clipped to at most `maximum` bytes without splitting a
    /// scalar.
    static func clippedUTF8Count(_ text: String, maximum: Int) -> Int {
        let utf8 = text.utf8
        if utf8.count <= maximum { return utf8.count }
        var length = maximum
        let start = utf8.index(utf8.startIndex, offsetBy: length)
        var index = start
        // Back off over continuation bytes (10xxxxxx) so the cut falls before a scalar.
        while length > 0, utf8[index] & 0xC0 == 0x80 {
            length -= 1
            index = utf8.index(before: index)
        }
        return length
    }
}
