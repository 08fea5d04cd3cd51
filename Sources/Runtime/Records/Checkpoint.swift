import Federation
import Foundation
import LowRank
import RunRecords
import Tensors

/// Everything the coordinator needs to continue a run after the last completed round.
///
/// Selection and local-training seeds derive from (seed, round, client), clients keep no
/// state between rounds, and the model and server-optimiser buffers are stored bit for bit,
/// so a resumed run produces the same final model as an uninterrupted one.
///
/// File layout (little-endian): `MAESTROC`, format version (UInt32), JSON header length
/// (UInt32), JSON `Header`, then float32 tensors: global parameters, server first moments,
/// server second moments, and (header `averaged: true`) the deployed moving average's
/// parameters (shapes from the header's architecture), then CRC-32C of all preceding bytes.
public struct CoordinatorCheckpoint: Sendable, Equatable {
    /// The checkpoint's JSON header: one flat object whose keys are the header's own, those of
    /// the run's totals (`RunTotals`) and those of the clients' standing (`ClientStanding`),
    /// each encoded whole into the same object (checkpoints written before still load).
    public struct Header: Codable, Sendable, Equatable {
        public var round: Int
        public var architecture: Architecture
        public var keptRanks: [Int]
        /// The byte ledger's totals and the run's counters up to this round; its "earlier"
        /// wall time and transport bytes are the whole run's so far (a resume's earlier ones).
        var totals: RunTotals
        public var lastAccuracy: [String: Double]
        /// Who may be selected: cooldowns, time-out streaks, clients known gone, contributors.
        var standing: ClientStanding
        /// The tier whose budget each tier deployed at the last evaluation
        /// (`evaluation.deploy: bestValidated`; absent otherwise and in older checkpoints).
        public var deployedBudgets: [String: String]?
        /// Whether the deployed moving average's parameters follow the server's buffers
        /// (`evaluation.averageDecay > 0`; absent otherwise and in older checkpoints).
        public var averaged: Bool?
        /// Under a width strategy, per channel space and channel, the rounds that trained it
        /// (`WidthCoverage`; absent for other strategies and in older checkpoints: none yet).
        public var widthRoundsTrained: [[Int]]?

        init(
            round: Int, architecture: Architecture, keptRanks: [Int], totals: RunTotals,
            lastAccuracy: [String: Double], standing: ClientStanding = ClientStanding(),
            deployedBudgets: [String: String]? = nil, widthRoundsTrained: [[Int]]? = nil
        ) {
            self.round = round
            self.architecture = architecture
            self.keptRanks = keptRanks
            self.totals = totals
            self.lastAccuracy = lastAccuracy
            self.standing = standing
            self.deployedBudgets = deployedBudgets
            self.widthRoundsTrained = widthRoundsTrained
        }

        private enum CodingKeys: String, CodingKey {
            case round, architecture, keptRanks, lastAccuracy, deployedBudgets, averaged
            case widthRoundsTrained
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            round = try container.decode(Int.self, forKey: .round)
            architecture = try container.decode(Architecture.self, forKey: .architecture)
            keptRanks = try container.decode([Int].self, forKey: .keptRanks)
            totals = try RunTotals(from: decoder)
            lastAccuracy = try container.decode([String: Double].self, forKey: .lastAccuracy)
            standing = try ClientStanding(from: decoder)
            deployedBudgets = try container.decodeIfPresent(
                [String: String].self, forKey: .deployedBudgets)
            averaged = try container.decodeIfPresent(Bool.self, forKey: .averaged)
            widthRoundsTrained = try container.decodeIfPresent(
                [[Int]].self, forKey: .widthRoundsTrained)
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(round, forKey: .round)
            try container.encode(architecture, forKey: .architecture)
            try container.encode(keptRanks, forKey: .keptRanks)
            try totals.encode(to: encoder)
            try container.encode(lastAccuracy, forKey: .lastAccuracy)
            try standing.encode(to: encoder)
            try container.encodeIfPresent(deployedBudgets, forKey: .deployedBudgets)
            try container.encodeIfPresent(averaged, forKey: .averaged)
            try container.encodeIfPresent(widthRoundsTrained, forKey: .widthRoundsTrained)
        }
    }

    public var header: Header
    public var parameters: [Tensor]
    public var serverState: ServerOptimizerState
    /// The deployed moving average of the server's model (`evaluation.averageDecay`).
    public var averagedParameters: [Tensor]?

    public static let fileName = "checkpoint.bin"
    static let magic: [UInt8] = Array("MAESTROC".utf8)
    static let version: UInt32 = 1

    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case unreadable(path: String)
        case corrupt(path: String, reason: String)
        /// A header field no coordinator writes (a crafted or damaged file whose checksum
        /// was recomputed): kept ranks beyond the architecture, a negative round, a counter
        /// that would overflow.
        case invalidField(path: String, field: String, value: String, expected: String)

        public var description: String {
            switch self {
            case .unreadable(let path):
                "\(path): no checkpoint to resume from (no completed round, or not a run directory)"
            case .corrupt(let path, let reason): "\(path): corrupt checkpoint (\(reason))"
            case .invalidField(let path, let field, let value, let expected):
                "\(path): corrupt checkpoint (\(field) is \(value), expected \(expected))"
            }
        }
    }

    public func encoded() -> [UInt8] {
        let encoder = RunJSON.encoder()
        encoder.outputFormatting = [.sortedKeys]
        var header = header
        header.averaged = averagedParameters == nil ? nil : true
        let json = (try? encoder.encode(header)).map(Array.init) ?? []
        var bytes = Self.magic
        bytes.appendLittleEndian(Self.version)
        bytes.appendLittleEndian(UInt32(json.count))
        bytes += json
        let tensors =
            parameters + serverState.firstMoment + serverState.secondMoment
            + (averagedParameters ?? [])
        for tensor in tensors {
            tensor.scalars.withUnsafeBytes { bytes.append(contentsOf: $0) }
        }
        bytes.appendLittleEndian(CRC32C.checksum(bytes))
        return bytes
    }

    public init(
        header: Header, parameters: [Tensor], serverState: ServerOptimizerState,
        averagedParameters: [Tensor]? = nil
    ) {
        self.header = header
        self.header.averaged = averagedParameters == nil ? nil : true
        self.parameters = parameters
        self.serverState = serverState
        self.averagedParameters = averagedParameters
    }

    /// Reads a checkpoint, refusing anything truncated, corrupted or inconsistent.
    public init(bytes: [UInt8], path: String) throws(Error) {
        guard bytes.count >= 24, Array(bytes[0..<8]) == Self.magic else {
            throw .corrupt(path: path, reason: "not a Maestro checkpoint")
        }
        let stored = bytes.readLittleEndianUInt32(at: bytes.count - 4)
        let computed = bytes.withUnsafeBytes {
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<(bytes.count - 4)]))
        }
        guard stored == computed else {
            throw .corrupt(path: path, reason: "checksum mismatch (truncated or damaged)")
        }
        guard bytes.readLittleEndianUInt32(at: 8) == Self.version else {
            throw .corrupt(
                path: path, reason: "unsupported version \(bytes.readLittleEndianUInt32(at: 8))")
        }
        let headerLength = Int(bytes.readLittleEndianUInt32(at: 12))
        guard headerLength <= Self.maximumHeaderLength, 16 + headerLength <= bytes.count - 4 else {
            throw .corrupt(path: path, reason: "header length")
        }
        let decoded: Header
        do {
            decoded = try RunJSON.decoder().decode(
                Header.self, from: Data(bytes[16..<(16 + headerLength)]))
        } catch {
            throw .corrupt(path: path, reason: "\(error)")
        }
        if let problem = decoded.architecture.inconsistency {
            throw .corrupt(path: path, reason: problem)
        }
        if let (field, value, expected) = Self.firstInvalidField(of: decoded) {
            throw .invalidField(path: path, field: field, value: value, expected: expected)
        }
        let shapes = decoded.architecture.parameterShapes
        let copies = decoded.averaged == true ? 4 : 3
        guard let floats = decoded.architecture.checkedParameterFloatCount,
            floats <= bytes.count / (4 * copies),
            16 + headerLength + copies * 4 * floats + 4 == bytes.count
        else {
            throw .corrupt(path: path, reason: "size does not match the architecture")
        }
        var offset = 16 + headerLength
        func readTensors() -> [Tensor] {
            shapes.map { shape in
                let count = shape.reduce(1, *)
                let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    bytes.withUnsafeBytes { raw in
                        UnsafeMutableRawBufferPointer(buffer).copyMemory(
                            from: UnsafeRawBufferPointer(
                                rebasing: raw[offset..<(offset + 4 * count)]))
                    }
                    initialized = count
                }
                offset += 4 * count
                return Tensor(shape: shape, scalars: values)
            }
        }
        let parameters = readTensors()
        var state = ServerOptimizerState(for: parameters)
        state.firstMoment = readTensors()
        state.secondMoment = readTensors()
        let averagedParameters = copies == 4 ? readTensors() : nil
        if let field = Self.firstNonFiniteTensorSet([
            ("parameters", parameters), ("serverFirstMoments", state.firstMoment),
            ("serverSecondMoments", state.secondMoment),
            ("averagedParameters", averagedParameters ?? []),
        ]) {
            throw .invalidField(
                path: path, field: field, value: "a NaN or an infinity", expected: "finite weights")
        }
        header = decoded
        self.parameters = parameters
        serverState = state
        self.averagedParameters = averagedParameters
    }

    /// Loads the checkpoint of a run directory.
    public static func load(directory: String) throws(Error) -> CoordinatorCheckpoint {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(fileName).path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(path: path)
        }
        return try CoordinatorCheckpoint(bytes: Array(data), path: path)
    }
}
