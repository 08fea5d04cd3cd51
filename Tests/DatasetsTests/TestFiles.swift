import CZlib
import Foundation

/// The bytes of an IDX file: `00 00 type n`, the extents as big-endian UInt32, the payload.
func idxBytes(type: UInt8 = 0x08, dimensions: [Int], payload: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = [0, 0, type, UInt8(dimensions.count)]
    for extent in dimensions {
        let value = UInt32(extent)
        bytes += [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: value >> $0) }
    }
    return bytes + payload
}

/// `count` images of `rows × columns` pixels (pixel k of image i is `(7 i + k) mod 256`) and
/// their labels `i mod classCount`, as IDX bytes.
func mnistLikeFiles(
    count: Int, rows: Int = 4, columns: Int = 3, classCount: Int = 10
) -> (images: [UInt8], labels: [UInt8]) {
    let pixels = (0..<count).flatMap { image in
        (0..<rows * columns).map { UInt8((7 * image + $0) % 256) }
    }
    let labels = (0..<count).map { UInt8($0 % classCount) }
    return (
        idxBytes(dimensions: [count, rows, columns], payload: pixels),
        idxBytes(dimensions: [count], payload: labels)
    )
}

/// `bytes` compressed as one gzip member with zlib's deflate.
func gzipped(_ bytes: [UInt8]) -> [UInt8] {
    var stream = z_stream()
    let status = deflateInit2_(
        &stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
        Int32(MemoryLayout<z_stream>.size))
    precondition(status == Z_OK, "deflateInit2_ failed with \(status)")
    defer { deflateEnd(&stream) }
    var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(bytes.count))) + 64)
    var input = bytes
    input.withUnsafeMutableBufferPointer { source in
        output.withUnsafeMutableBufferPointer { target in
            stream.next_in = source.baseAddress
            stream.avail_in = UInt32(source.count)
            stream.next_out = target.baseAddress
            stream.avail_out = UInt32(target.count)
            let result = deflate(&stream, Z_FINISH)
            precondition(result == Z_STREAM_END, "deflate returned \(result)")
        }
    }
    output.removeSubrange(Int(stream.total_out)...)
    return output
}

/// A fresh directory under the system's temporary directory, removed by `cleanUp()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("maestro-datasets-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: true)
    }

    /// Writes `bytes` to `name` in the directory and returns the file's path.
    func write(_ bytes: [UInt8], to name: String) throws -> String {
        let file = path + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return file
    }

    func cleanUp() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
