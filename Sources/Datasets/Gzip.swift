import CZlib

/// Gzip decompression with zlib, streamed into a buffer that grows as needed.
enum Gzip {
    /// Whether `bytes` start with the gzip magic `1f 8b`.
    static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
    }

    /// The decompressed content of a gzip file of one or more members (as `gzip -d` reads
    /// concatenated members).
    ///
    /// The output buffer starts at a size hinted by the gzip trailer (`ISIZE`, capped by
    /// deflate's best ratio, so a damaged trailer cannot force a huge allocation) and doubles
    /// whenever zlib fills it, so no size guess can make decompression fail.
    /// - Throws: `corruptGzip` with zlib's message for damaged or truncated streams and for
    ///   bytes after the last member; `tooLarge` past `limitBytes`.
    static func decompress(
        _ input: [UInt8], path: String, limitBytes: Int
    ) throws(DatasetError) -> [UInt8] {
        var stream = z_stream()
        guard
            inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
                == Z_OK
        else {
            throw .corruptGzip(path: path, message: "zlib could not initialise inflate")
        }
        defer { inflateEnd(&stream) }

        var output = [UInt8](repeating: 0, count: min(initialCapacity(for: input), limitBytes))
        var consumed = 0
        var produced = 0
        // `maximumChunk` keeps `avail_in`/`avail_out` within UInt32 for inputs of any size.
        let maximumChunk = Int(UInt32.max)
        while true {
            if produced == output.count {
                guard output.count < limitBytes else {
                    throw .tooLarge(path: path, limitBytes: limitBytes)
                }
                let grown = min(max(output.count * 2, 1 << 16), limitBytes)
                output.append(contentsOf: repeatElement(0, count: grown - output.count))
            }
            let inputChunk = min(input.count - consumed, maximumChunk)
            let outputChunk = min(output.count - produced, maximumChunk)
            let status = input.withUnsafeBufferPointer { source in
                output.withUnsafeMutableBufferPointer { target in
                    // zlib only reads through `next_in`; the cast satisfies its C signature.
                    stream.next_in = UnsafeMutablePointer(
                        mutating: source.baseAddress.map { $0 + consumed })
                    stream.avail_in = UInt32(inputChunk)
                    stream.next_out = target.baseAddress.map { $0 + produced }
                    stream.avail_out = UInt32(outputChunk)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    stream.next_in = nil
                    stream.next_out = nil
                    return status
                }
            }
            consumed += inputChunk - Int(stream.avail_in)
            produced += outputChunk - Int(stream.avail_out)

            switch status {
            case Z_STREAM_END:
                let rest = input[consumed...]
                if rest.isEmpty {
                    output.removeSubrange(produced...)
                    return output
                }
                if rest.count >= 2 && rest[consumed] == 0x1F && rest[consumed + 1] == 0x8B {
                    inflateReset(&stream)  // another gzip member follows
                } else if rest.allSatisfy({ $0 == 0 }) {
                    output.removeSubrange(produced...)  // zero padding, as gzip -d tolerates
                    return output
                } else {
                    throw .corruptGzip(
                        path: path,
                        message: "\(rest.count) bytes of trailing garbage after the gzip stream")
                }
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                // No progress was possible. With room left in the output, that means the input
                // ran out before the end of the stream; otherwise the next pass grows the buffer.
                if produced < output.count {
                    throw .corruptGzip(
                        path: path,
                        message: "unexpected end of file: the stream is truncated after "
                            + "\(input.count) bytes")
                }
                continue
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                throw .corruptGzip(path: path, message: message)
            }
        }
    }

    /// A first output size: the trailer's `ISIZE` (size modulo 2³² of the last member), bounded
    /// by what deflate can possibly produce from this input (ratio ≤ 1032).
    private static func initialCapacity(for input: [UInt8]) -> Int {
        guard input.count >= 18 else { return 1 << 16 }
        let n = input.count
        let size =
            Int(input[n - 4]) | Int(input[n - 3]) << 8 | Int(input[n - 2]) << 16
            | Int(input[n - 1]) << 24
        return max(1 << 16, min(size, input.count * 1032))
    }
}
