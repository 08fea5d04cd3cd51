import Foundation

// The module's file access: whole reads, positioned reads and chunked reads. Everything else
// in the module parses bytes it is handed.

/// A read-only descriptor of the file at `path`.
func openForReading(_ path: String) throws(DatasetError) -> Int32 {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else {
        if errno == ENOENT { throw .fileNotFound(path: path) }
        throw .unreadable(path: path, reason: String(cString: strerror(errno)))
    }
    var status = stat()
    if fstat(descriptor, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR {
        close(descriptor)
        throw .unreadable(path: path, reason: "it is a directory")
    }
    return descriptor
}

/// Reads up to `buffer.count` bytes at `offset`; returns how many there were before the end.
func readFully(
    _ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String
) throws(DatasetError) -> Int {
    var done = 0
    while done < buffer.count {
        let count = pread(
            descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
        if count < 0 {
            if errno == EINTR { continue }
            throw .unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        if count == 0 { break }
        done += count
    }
    return done
}

func readFully(
    _ descriptor: Int32, into bytes: inout [UInt8], at offset: Int, path: String
) throws(DatasetError) -> Int {
    try bytes.withUnsafeMutableBytes { buffer in
        Result { () throws(DatasetError) in
            try readFully(descriptor, into: buffer, at: offset, path: path)
        }
    }.get()
}

/// The bytes of the file at `path`.
func readBytes(path: String) throws(DatasetError) -> [UInt8] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw .fileNotFound(path: path)
    }
    guard !isDirectory.boolValue else {
        throw .unreadable(path: path, reason: "it is a directory")
    }
    do {
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    } catch {
        throw .unreadable(path: path, reason: error.localizedDescription)
    }
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

/// The regular files of `directory` whose names end in `suffix`, as paths, sorted by name.
func files(in directory: String, endingWith suffix: String) throws(DatasetError) -> [String] {
    let names: [String]
    do {
        names = try FileManager.default.contentsOfDirectory(atPath: directory)
    } catch {
        throw .unreadable(path: directory, reason: error.localizedDescription)
    }
    let folder = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
    return names.filter { $0.hasSuffix(suffix) && !$0.hasPrefix(".") }.sorted().map {
        "\(folder)/\($0)"
    }
}

/// Whether `path` names a directory.
func isDirectory(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        && isDirectory.boolValue
}

/// Whether anything exists at `path`.
func fileExists(_ path: String) -> Bool {
    FileManager.default.fileExists(atPath: path)
}

/// Closes a descriptor of `openForReading`.
func closeDescriptor(_ descriptor: Int32) {
    _ = close(descriptor)
}
