import Foundation

/// One row of `ledger.csv`: a frame that crossed the coordinator's socket.
public struct LedgerEntry: Sendable, Equatable {
    public enum Direction: String, Sendable {
        /// Coordinator → client.
        case down
        /// Client → coordinator.
        case up
    }

    public var round: Int
    /// The client ID, or -1 for a peer that is not a registered client.
    public var client: Int
    public var tier: String
    public var direction: Direction
    public var message: String
    public var bytes: Int

    public static let header = "round,client,tier,direction,message,wire_bytes"

    public var csvLine: String {
        "\(round),\(client),\(tier),\(direction.rawValue),\(message),\(bytes)"
    }
}

/// What `metrics.jsonl` holds for one round.
public struct RoundMetrics: Codable, Sendable {
    public struct TierBytes: Codable, Sendable, Equatable {
        public var down = 0
        public var up = 0
        public var denseEquivalent = 0
    }

    public var round: Int
    public var selected: [Int] = []
    public var participants: [Int] = []
    public var droppedDeadline: [Int] = []
    public var droppedTimeout: [Int] = []
    /// Selected clients whose update was refused (wrong shapes, NaN or absurd values).
    public var droppedInvalid: [Int] = []
    public var bytesDown = 0
    public var bytesUp = 0
    public var denseEquivalentBytes = 0
    public var bytesByTier: [String: TierBytes] = [:]
    public var cumulativeBytes = 0
    public var cumulativeDenseEquivalentBytes = 0
    public var ranks: [Int] = []
    public var trainingLoss: Double?
    /// Seconds the round's participants spent in local training (as they reported).
    public var clientComputeSeconds = 0.0
    /// Test accuracy and loss of the model each tier deploys (`evaluation.deploy`).
    public var accuracyByTier: [String: Double]?
    public var lossByTier: [String: Double]?
    /// With `evaluation.deploy: bestValidated`: the tier whose budget each tier deploys, and
    /// the test accuracy at each tier's own budget.
    public var deployedBudgetByTier: [String: String]?
    public var accuracyAtBudgetByTier: [String: Double]?
    /// Accuracy at each tier's own budget on the coordinator's validation set, when it has one.
    public var validationAccuracyByTier: [String: Double]?
    public var virtualSeconds = 0.0
    public var virtualTime = 0.0
    public var wallSeconds = 0.0
    public var learningRate = 0.0
    public var rejected: [String: Int] = [:]
    public var lateUpdates = 0
    /// Extra selections made because the round missed `minimumUpdates` (policy retry).
    public var retries = 0
    /// Of the round's accepted updates, the largest ratio of a tensor's change to the global
    /// tensor's norm (the quantity `robustness.maximumUpdateNormRatio` bounds).
    public var largestUpdateNormRatio: Double?
    /// Why the round's aggregate was thrown away and the previous model kept
    /// (`non_finite_model`, `non_finite_evaluation`); absent when it was not.
    public var rolledBack: String?
}

/// The one JSON spelling of NaN and ±∞ in run files (`metrics.jsonl`, `summary.json`,
/// `truncation.json`, checkpoint headers): the strings `"NaN"`, `"Infinity"`,
/// `"-Infinity"`. A non-finite number never makes a run file fail to encode, and every
/// reader decodes it back.
public enum RunJSON {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return decoder
    }
}

/// What `summary.json` holds.
/// One point of the final model's truncation curve: the model cut to a fraction of every
/// layer's kept rank, its test accuracy and its size (`truncation.json`).
public struct TruncationPoint: Codable, Sendable, Equatable {
    public var rankFraction: Double
    public var accuracy: Double
    public var parameters: Int
    public var macs: Int
    public var ranks: [Int]

    public init(rankFraction: Double, accuracy: Double, parameters: Int, macs: Int, ranks: [Int]) {
        self.rankFraction = rankFraction
        self.accuracy = accuracy
        self.parameters = parameters
        self.macs = macs
        self.ranks = ranks
    }

    /// The fractions a run's final model is evaluated at.
    public static let fractions = [0.0625, 0.125, 0.1875, 0.25, 0.375, 0.5, 0.75, 1]
}

public struct RunSummary: Codable, Sendable {
    public struct TierSummary: Codable, Sendable {
        public var tier: String
        public var rankFraction: Double
        public var clients: Int
        public var participations: Int
        public var bytes: Int
        public var denseEquivalentBytes: Int
        public var accuracy: Double?
        public var ranks: [Int]
        public var parameters: Int
        /// Training FLOPs per sample (forward and backward at the tier's final budget, from
        /// the cost model the virtual clock uses); absent in runs before it was recorded.
        public var trainingFlopsPerSample: Double?
        /// Multiply-adds of one forward pass of the tier's deployed final model on one sample.
        public var macs: Int?
        /// With `evaluation.deploy: bestValidated`: the tier whose budget the tier deploys at
        /// the end, and its ranks (`ranks` stays the tier's training budget).
        public var deployedBudget: String?
        public var deployedRanks: [Int]?
        /// Registered clients of the tier whose update was aggregated at least once, and the
        /// training samples the tier's registered clients hold, all and those of the
        /// contributing clients: whose data ever reached the model (absent in older runs).
        public var contributingClients: Int?
        public var samples: Int?
        public var contributedSamples: Int?
    }

    public var scenario: String
    public var strategy: String
    public var rounds: Int
    public var seed: UInt64
    public var finalAccuracyByTier: [String: Double]
    public var bytesUp: Int
    public var bytesDown: Int
    public var denseEquivalentBytes: Int
    /// Fraction of the dense-equivalent bytes saved: `1 − (up + down) / dense_equivalent`.
    public var savingsRatio: Double
    public var wallSeconds: Double
    public var virtualSeconds: Double
    public var finalRanks: [Int]
    public var tiers: [TierSummary]
    public var rejectedMessages: [String: Int]
    public var lateUpdates: Int
    /// Seconds all clients spent in local training over the run (as they reported).
    public var clientComputeSeconds: Double
    public var transportBytesSent: Int
    public var transportBytesReceived: Int
    public var modelFile: String
    /// Bytes of worker processes' control frames (HELLO, assignment) in this coordinator
    /// process: simulation plumbing, in neither the ledger nor the transport totals above.
    public var workerControlBytes = 0
    /// Whether the run stopped before its last round (Ctrl-C, a failure); `rounds` is then
    /// the last completed round, and `--resume` goes on from it.
    public var interrupted = false
    /// What produced the run.
    public var provenance: Provenance?

    /// What produced a run: enough to run it again.
    public struct Provenance: Codable, Sendable {
        public var version: String
        /// The git commit of the source tree the executable was built in, when it sits in one.
        public var commit: String?
        /// The command line that started the run (with its overrides, e.g. `--rounds 20`).
        public var commandLine: [String]
        /// ISO 8601, UTC.
        public var startedAt: String
        public var host: String
        /// Each `--resume` that continued the run, in order (`nil`: never resumed).
        public var resumes: [Resume]?

        /// One continuation of an interrupted run.
        public struct Resume: Codable, Sendable, Equatable {
            public var commandLine: [String]
            public var startedAt: String
            public var host: String
            public var version: String
            public var commit: String?

            public init(
                commandLine: [String], startedAt: String, host: String, version: String,
                commit: String?
            ) {
                self.commandLine = commandLine
                self.startedAt = startedAt
                self.host = host
                self.version = version
                self.commit = commit
            }
        }

        public init(
            version: String, commit: String?, commandLine: [String], startedAt: String,
            host: String
        ) {
            self.version = version
            self.commit = commit
            self.commandLine = commandLine
            self.startedAt = startedAt
            self.host = host
        }
    }
}

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
