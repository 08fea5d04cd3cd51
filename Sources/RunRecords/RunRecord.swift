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

    public init(
        round: Int, client: Int, tier: String, direction: Direction, message: String, bytes: Int
    ) {
        self.round = round
        self.client = client
        self.tier = tier
        self.direction = direction
        self.message = message
        self.bytes = bytes
    }

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

        public init(down: Int = 0, up: Int = 0, denseEquivalent: Int = 0) {
            self.down = down
            self.up = up
            self.denseEquivalent = denseEquivalent
        }
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

    /// A round with nothing recorded yet.
    public init(round: Int) {
        self.round = round
    }
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

/// What `summary.json` holds.
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

        public init(
            tier: String, rankFraction: Double, clients: Int, participations: Int, bytes: Int,
            denseEquivalentBytes: Int, accuracy: Double? = nil, ranks: [Int], parameters: Int,
            trainingFlopsPerSample: Double? = nil, macs: Int? = nil, deployedBudget: String? = nil,
            deployedRanks: [Int]? = nil, contributingClients: Int? = nil, samples: Int? = nil,
            contributedSamples: Int? = nil
        ) {
            self.tier = tier
            self.rankFraction = rankFraction
            self.clients = clients
            self.participations = participations
            self.bytes = bytes
            self.denseEquivalentBytes = denseEquivalentBytes
            self.accuracy = accuracy
            self.ranks = ranks
            self.parameters = parameters
            self.trainingFlopsPerSample = trainingFlopsPerSample
            self.macs = macs
            self.deployedBudget = deployedBudget
            self.deployedRanks = deployedRanks
            self.contributingClients = contributingClients
            self.samples = samples
            self.contributedSamples = contributedSamples
        }
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
    /// Under a width strategy, per hidden weight layer: how much of its width some aggregated
    /// client trained over the run (absent for other strategies and in older runs).
    public var widthCoverage: [WidthLayerCoverage]?

    /// One weight layer's width coverage: its output channels (units), how many of them the
    /// slice of at least one aggregated client held in some round, and the rounds each
    /// channel was trained (fewest, mean, most).
    public struct WidthLayerCoverage: Codable, Sendable, Equatable {
        public var layer: Int
        public var kind: String
        public var channels: Int
        public var trainedChannels: Int
        public var coverage: Double
        public var roundsMin: Int
        public var roundsMean: Double
        public var roundsMax: Int

        public init(
            layer: Int, kind: String, channels: Int, trainedChannels: Int, coverage: Double,
            roundsMin: Int, roundsMean: Double, roundsMax: Int
        ) {
            self.layer = layer
            self.kind = kind
            self.channels = channels
            self.trainedChannels = trainedChannels
            self.coverage = coverage
            self.roundsMin = roundsMin
            self.roundsMean = roundsMean
            self.roundsMax = roundsMax
        }
    }

    public init(
        scenario: String, strategy: String, rounds: Int, seed: UInt64,
        finalAccuracyByTier: [String: Double], bytesUp: Int, bytesDown: Int,
        denseEquivalentBytes: Int, savingsRatio: Double, wallSeconds: Double,
        virtualSeconds: Double, finalRanks: [Int], tiers: [TierSummary],
        rejectedMessages: [String: Int], lateUpdates: Int, clientComputeSeconds: Double,
        transportBytesSent: Int, transportBytesReceived: Int, modelFile: String,
        workerControlBytes: Int = 0, interrupted: Bool = false, provenance: Provenance? = nil
    ) {
        self.scenario = scenario
        self.strategy = strategy
        self.rounds = rounds
        self.seed = seed
        self.finalAccuracyByTier = finalAccuracyByTier
        self.bytesUp = bytesUp
        self.bytesDown = bytesDown
        self.denseEquivalentBytes = denseEquivalentBytes
        self.savingsRatio = savingsRatio
        self.wallSeconds = wallSeconds
        self.virtualSeconds = virtualSeconds
        self.finalRanks = finalRanks
        self.tiers = tiers
        self.rejectedMessages = rejectedMessages
        self.lateUpdates = lateUpdates
        self.clientComputeSeconds = clientComputeSeconds
        self.transportBytesSent = transportBytesSent
        self.transportBytesReceived = transportBytesReceived
        self.modelFile = modelFile
        self.workerControlBytes = workerControlBytes
        self.interrupted = interrupted
        self.provenance = provenance
    }

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
