#if canImport(Glibc)
import Glibc
#endif

// File access of the CIFAR and LEAF readers (the IDX reader's is in IDXFile.swift): whole,
// positioned and chunked reads and folder listings, with POSIX calls. Everything else in the
// module parses bytes it is handed.

/// The bytes of the file at `path`, read with POSIX calls.
func readWholeFile(path: String) throws(DatasetError) -> [UInt8] {
    let descriptor = try openForReading(path)
    defer { close(descriptor) }
    var bytes = [UInt8](repeating: 0, count: try fileSize(descriptor, path: path))
    let count = try readFully(descriptor, into: &bytes, at: 0, path: path)
    bytes.removeLast(bytes.count - count)
    return bytes
}

/// The size in bytes of the open file `descriptor`.
func fileSize(_ descriptor: Int32, path: String) throws(DatasetError) -> Int {
    var status = stat()
    guard fstat(descriptor, &status) == 0 else {
        throw .unreadable(path: path, reason: String(cString: strerror(errno)))
    }
    return Int(status.st_size)
}

/// Reads the records `records` (ascending or not) of `recordBytes` bytes each that start at
/// `headerBytes`, in that order, one positioned read per run of consecutive records.
///
/// - Returns: `records.count · recordBytes` bytes, or `nil` when the file ends first.
func readRecords(
    _ descriptor: Int32, records: [Int], recordBytes: Int, headerBytes: Int = 0, path: String
) throws(DatasetError) -> [UInt8]? {
    var bytes = [UInt8](repeating: 0, count: records.count * recordBytes)
    var row = 0
    while row < records.count {
        var run = 1
        while row + run < records.count && records[row + run] == records[row] + run { run += 1 }
        let offset = headerBytes + records[row] * recordBytes
        let range = (row * recordBytes)..<((row + run) * recordBytes)
        let count = try bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(DatasetError) in
                try readFully(
                    descriptor, into: UnsafeMutableRawBufferPointer(rebasing: buffer[range]),
                    at: offset, path: path)
            }
        }.get()
        guard count == run * recordBytes else { return nil }
        row += run
    }
    return bytes
}

/// A file read front to back in chunks of `chunkBytes`, so that a parser holds one chunk of
/// it at a time rather than the whole file.
final class FileChunks: ByteChunks {
    let path: String
    private let descriptor: Int32
    private let chunkBytes: Int
    private var offset = 0

    init(path: String, chunkBytes: Int = 1 << 20) throws(DatasetError) {
        precondition(chunkBytes > 0, "chunks of \(chunkBytes) bytes")
        self.path = path
        self.descriptor = try openForReading(path)
        self.chunkBytes = chunkBytes
    }

    deinit { close(descriptor) }

    func nextChunk() throws(DatasetError) -> [UInt8]? {
        var chunk = [UInt8](repeating: 0, count: chunkBytes)
        let count = try readFully(descriptor, into: &chunk, at: offset, path: path)
        guard count > 0 else { return nil }
        offset += count
        if count < chunk.count { chunk.removeSubrange(count...) }
        return chunk
    }
}

/// The files of `directory` whose names end in `suffix` (hidden ones aside), as paths,
/// sorted by name.
func files(in directory: String, endingWith suffix: String) throws(DatasetError) -> [String] {
    guard let stream = opendir(directory) else {
        throw .unreadable(path: directory, reason: String(cString: strerror(errno)))
    }
    defer { closedir(stream) }
    var names: [String] = []
    while let entry = readdir(stream) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if name.hasSuffix(suffix) && !name.hasPrefix(".") { names.append(name) }
    }
    let folder = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
    return names.sorted().map { "\(folder)/\($0)" }
}

/// Whether `path` names a directory.
func isDirectory(_ path: String) -> Bool {
    var status = stat()
    return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
}

/// Whether anything exists at `path`.
func fileExists(_ path: String) -> Bool {
    var status = stat()
    return stat(path, &status) == 0
}

/// Closes a descriptor of `openForReading`.
func closeDescriptor(_ descriptor: Int32) {
    _ = close(descriptor)
}
