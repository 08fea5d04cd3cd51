import Foundation

/// The files of a run directory, written as the run goes.
///
/// `metrics.jsonl` and `ledger.csv` are appended and flushed once per round; `summary.json`
/// and the final model are written atomically at the end.
public final class RunRecorder {
    public let directory: URL
    private let metrics: FileHandle
    private let ledger: FileHandle
    private var pendingLedger: [String] = []

    public enum Error: Swift.Error, CustomStringConvertible {
        case cannotCreate(path: String, reason: String)
        case cannotWrite(path: String, reason: String)

        public var description: String {
            switch self {
            case .cannotCreate(let path, let reason): "\(path): cannot create (\(reason))"
            case .cannotWrite(let path, let reason): "\(path): cannot write (\(reason))"
            }
        }
    }

    public static let metricsFile = "metrics.jsonl"
    public static let ledgerFile = "ledger.csv"
    public static let summaryFile = "summary.json"
    public static let scenarioFile = "scenario.yaml"
    public static let finalModelFile = "final.maestro"
    public static let truncationFile = "truncation.json"
    public static let reportFile = "report.html"

    /// Creates (or reuses) the run directory and opens its append-only files.
    ///
    /// When resuming after round `r`, rows and lines of later rounds (written after the last
    /// checkpoint, before a crash) are dropped first, so nothing is lost or counted twice.
    public init(
        directory: String, scenarioYAML: String, resumingAfter round: Int? = nil
    ) throws(Error) {
        let url = URL(fileURLWithPath: directory)
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw .cannotCreate(path: directory, reason: error.localizedDescription)
        }
        self.directory = url
        if let round {
            try Self.truncate(
                url.appendingPathComponent(Self.metricsFile).path, keepingHeader: false
            ) { line in
                Self.round(ofMetricsLine: line).map { $0 <= round } ?? false
            }
            try Self.truncate(url.appendingPathComponent(Self.ledgerFile).path, keepingHeader: true)
            { line in
                line.split(separator: ",", maxSplits: 1).first.flatMap { Int($0) }.map {
                    $0 <= round
                } ?? false
            }
        } else {
            try Self.writeAtomically(
                Array(scenarioYAML.utf8), to: url.appendingPathComponent(Self.scenarioFile).path)
        }
        metrics = try Self.openForAppend(
            url.appendingPathComponent(Self.metricsFile).path, header: nil)
        ledger = try Self.openForAppend(
            url.appendingPathComponent(Self.ledgerFile).path, header: LedgerEntry.header)
    }

    deinit {
        try? metrics.close()
        try? ledger.close()
    }

    /// Queues a ledger row (written with the round's metrics).
    public func record(_ entry: LedgerEntry) {
        pendingLedger.append(entry.csvLine)
    }

    /// Appends the queued ledger rows and one metrics line, then flushes both files.
    public func finishRound(_ round: RoundMetrics) throws(Error) {
        let encoder = RunJSON.encoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let line: Data
        do {
            line = try encoder.encode(round) + Data("\n".utf8)
        } catch {
            throw .cannotWrite(path: Self.metricsFile, reason: "\(error)")
        }
        try flushLedger()
        do {
            try metrics.write(contentsOf: line)
            try metrics.synchronize()
        } catch {
            throw .cannotWrite(
                path: directory.appendingPathComponent(Self.metricsFile).path,
                reason: error.localizedDescription)
        }
    }

    /// Appends the queued ledger rows now (at the end of the run).
    public func flushLedger() throws(Error) {
        guard !pendingLedger.isEmpty else { return }
        let text = pendingLedger.joined(separator: "\n") + "\n"
        pendingLedger.removeAll(keepingCapacity: true)
        do {
            try ledger.write(contentsOf: Data(text.utf8))
            try ledger.synchronize()
        } catch {
            throw .cannotWrite(
                path: directory.appendingPathComponent(Self.ledgerFile).path,
                reason: error.localizedDescription)
        }
    }

    /// Writes `summary.json` atomically.
    public func writeSummary(_ summary: RunSummary) throws(Error) {
        let encoder = RunJSON.encoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        guard let data = try? encoder.encode(summary) else {
            throw .cannotWrite(path: Self.summaryFile, reason: "summary does not encode")
        }
        try Self.writeAtomically(
            Array(data), to: directory.appendingPathComponent(Self.summaryFile).path)
    }

    /// Writes `truncation.json` atomically.
    public func writeTruncation(_ points: [TruncationPoint]) throws(Error) {
        let encoder = RunJSON.encoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        guard let data = try? encoder.encode(points) else {
            throw .cannotWrite(path: Self.truncationFile, reason: "curve does not encode")
        }
        try Self.writeAtomically(
            Array(data), to: directory.appendingPathComponent(Self.truncationFile).path)
    }

    /// Writes a file of the run directory atomically.
    public func write(_ bytes: [UInt8], named name: String) throws(Error) {
        try Self.writeAtomically(bytes, to: directory.appendingPathComponent(name).path)
    }

    /// Rewrites a line file atomically, keeping the lines `keep` accepts (and the header).
    private static func truncate(
        _ path: String, keepingHeader: Bool, keep: (Substring) -> Bool
    ) throws(Error) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        let header = keepingHeader && !lines.isEmpty ? [lines.removeFirst()] : []
        let kept = header + lines.filter(keep)
        try writeAtomically(
            Array((kept.joined(separator: "\n") + (kept.isEmpty ? "" : "\n")).utf8), to: path)
    }

    private static func round(ofMetricsLine line: Substring) -> Int? {
        guard let data = line.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object["round"] as? Int
    }

    private static func openForAppend(_ path: String, header: String?) throws(Error) -> FileHandle {
        let exists = FileManager.default.fileExists(atPath: path)
        if !exists {
            guard
                FileManager.default.createFile(
                    atPath: path, contents: header.map { Data(($0 + "\n").utf8) })
            else {
                throw .cannotCreate(path: path, reason: "permission denied or no such folder")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw .cannotCreate(path: path, reason: "cannot open for writing")
        }
        do {
            try handle.seekToEnd()
        } catch {
            throw .cannotWrite(path: path, reason: error.localizedDescription)
        }
        return handle
    }

    /// Temporary file in the same folder, fsync, rename: a crash leaves the old file or the
    /// new one, never half of one.
    /// The file is created with `mode` (a secret key: 0600, never readable by others even
    /// for a moment), and the folder is synced after the rename so the new name survives a
    /// crash too.
    ///
    /// The temporary file has an unpredictable name (``temporaryName(for:)``) and is created
    /// with `O_CREAT | O_EXCL | O_NOFOLLOW`: in a folder others can write to, a file or
    /// symbolic link planted at the name is never opened, followed or truncated. A private
    /// mode (no group or other bits) is set again with `fchmod` before any byte is written,
    /// whatever the umask.
    public static func writeAtomically(
        _ bytes: [UInt8], to path: String, mode: mode_t = 0o644
    ) throws(Error) {
        try writeAtomically(bytes, to: path, mode: mode, names: temporaryName(for:))
    }

    /// `.NAME.tmp-` and 64 random bits in hex, beside `path`.
    static func temporaryName(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        var generator = SystemRandomNumberGenerator()
        let suffix = String(generator.next() as UInt64, radix: 16)
        return url.deletingLastPathComponent().appendingPathComponent(
            ".\(url.lastPathComponent).tmp-\(suffix)"
        ).path
    }

    /// How many names are tried before giving up (each taken one was planted or is another
    /// writer's: 64 random bits do not collide by chance).
    static let temporaryNameAttempts = 16

    /// ``writeAtomically(_:to:mode:)`` with the temporary names drawn from `names` (tests
    /// plant files at the names it will draw); `created` sees each temporary file just
    /// before its bytes are written.
    static func writeAtomically(
        _ bytes: [UInt8], to path: String, mode: mode_t, names: (String) -> String,
        created: (String) -> Void = { _ in }
    ) throws(Error) {
        let url = URL(fileURLWithPath: path)
        var temporary = ""
        var descriptor: Int32 = -1
        for _ in 0..<temporaryNameAttempts {
            temporary = names(path)
            descriptor = open(
                temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
            if descriptor >= 0 || (errno != EEXIST && errno != ELOOP) { break }
        }
        guard descriptor >= 0 else {
            let reason =
                errno == EEXIST || errno == ELOOP
                ? "\(temporaryNameAttempts) temporary names beside it were taken"
                : String(cString: strerror(errno))
            throw .cannotWrite(path: path, reason: reason)
        }
        if mode & 0o077 == 0, fchmod(descriptor, mode) != 0 {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            unlink(temporary)
            throw .cannotWrite(path: path, reason: "setting its mode: \(reason)")
        }
        created(temporary)
        var written = 0
        let failure: String? = bytes.withUnsafeBytes { buffer in
            while written < buffer.count {
                let n = Foundation.write(
                    descriptor, buffer.baseAddress! + written, buffer.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return String(cString: strerror(errno))
                }
                written += n
            }
            return fsync(descriptor) == 0 ? nil : String(cString: strerror(errno))
        }
        close(descriptor)
        if let failure {
            unlink(temporary)
            throw .cannotWrite(path: path, reason: "\(failure); nothing was replaced")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw .cannotWrite(path: path, reason: reason)
        }
        let folder = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folder >= 0 {
            defer { close(folder) }
            guard fsync(folder) == 0 else {
                throw .cannotWrite(
                    path: path, reason: "syncing its folder: \(String(cString: strerror(errno)))")
            }
        }
    }
}
