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
    public struct Header: Codable, Sendable, Equatable {
        public var round: Int
        public var architecture: Architecture
        public var keptRanks: [Int]
        public var bytesUp: Int
        public var bytesDown: Int
        public var denseEquivalentBytes: Int
        public var virtualSeconds: Double
        public var wallSeconds: Double
        public var clientComputeSeconds: Double
        public var transportBytesSent: Int
        public var transportBytesReceived: Int
        public var tierBytes: [String: RoundMetrics.TierBytes]
        public var participations: [String: Int]
        public var rejected: [String: Int]
        public var lateUpdates: Int
        public var lastAccuracy: [String: Double]
        /// Clients that missed a deadline, with the round before which they are not selected
        /// (absent in checkpoints written before it was kept: read as none).
        public var cooldownUntil: [UInt32: Int]?
        /// Clients known to be gone, not selected until they register again.
        public var unresponsive: [UInt32]?
        /// Clients whose update has been aggregated at least once (absent in checkpoints
        /// written before it was kept: read as none).
        public var contributors: [UInt32]?
        /// The tier whose budget each tier deployed at the last evaluation
        /// (`evaluation.deploy: bestValidated`; absent otherwise and in older checkpoints).
        public var deployedBudgets: [String: String]?
        /// Whether the deployed moving average's parameters follow the server's buffers
        /// (`evaluation.averageDecay > 0`; absent otherwise and in older checkpoints).
        public var averaged: Bool?
        /// Time-outs in a row of each client that has any (`Cooldowns`; absent when none, and
        /// in older checkpoints: read as none).
        public var timeoutStreaks: [UInt32: Int]?
        /// Under a width strategy, per channel space and channel, the rounds that trained it
        /// (`WidthCoverage`; absent for other strategies and in older checkpoints: none yet).
        public var widthRoundsTrained: [[Int]]?

        public init(
            round: Int, architecture: Architecture, keptRanks: [Int], bytesUp: Int, bytesDown: Int,
            denseEquivalentBytes: Int, virtualSeconds: Double, wallSeconds: Double,
            clientComputeSeconds: Double,
            transportBytesSent: Int, transportBytesReceived: Int,
            tierBytes: [String: RoundMetrics.TierBytes],
            participations: [String: Int], rejected: [String: Int], lateUpdates: Int,
            lastAccuracy: [String: Double], cooldownUntil: [UInt32: Int] = [:],
            unresponsive: [UInt32] = [], contributors: [UInt32] = [],
            deployedBudgets: [String: String]? = nil, timeoutStreaks: [UInt32: Int]? = nil,
            widthRoundsTrained: [[Int]]? = nil
        ) {
            self.round = round
            self.architecture = architecture
            self.keptRanks = keptRanks
            self.bytesUp = bytesUp
            self.bytesDown = bytesDown
            self.denseEquivalentBytes = denseEquivalentBytes
            self.virtualSeconds = virtualSeconds
            self.wallSeconds = wallSeconds
            self.clientComputeSeconds = clientComputeSeconds
            self.transportBytesSent = transportBytesSent
            self.transportBytesReceived = transportBytesReceived
            self.tierBytes = tierBytes
            self.participations = participations
            self.rejected = rejected
            self.lateUpdates = lateUpdates
            self.lastAccuracy = lastAccuracy
            self.cooldownUntil = cooldownUntil
            self.unresponsive = unresponsive
            self.contributors = contributors
            self.deployedBudgets = deployedBudgets
            self.timeoutStreaks = timeoutStreaks
            self.widthRoundsTrained = widthRoundsTrained
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
