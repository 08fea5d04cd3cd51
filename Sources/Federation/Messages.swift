import Tensors
import Vocabulary

/// The message kinds of the Maestro protocol, with their wire codes (header byte 6).
public enum MessageType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case register = 1
    case registered = 2
    case train = 3
    case update = 4
    case evaluate = 5
    case evaluation = 6
    case shutdown = 7
    case error = 8
    case heartbeat = 9
    case workerHello = 10
    case workerAssignment = 11
    case linkProbe = 12
    case linkProbeReply = 13
    case workerRows = 14

    public var description: String {
        switch self {
        case .register: "register"
        case .registered: "registered"
        case .train: "train"
        case .update: "update"
        case .evaluate: "evaluate"
        case .evaluation: "evaluation"
        case .shutdown: "shutdown"
        case .error: "error"
        case .heartbeat: "heartbeat"
        case .workerHello: "workerHello"
        case .workerAssignment: "workerAssignment"
        case .linkProbe: "linkProbe"
        case .linkProbeReply: "linkProbeReply"
        case .workerRows: "workerRows"
        }
    }
}

/// One message of the Maestro protocol.
///
/// The round and the sender travel in the frame header (see ``Envelope``), not in the message.
public enum Message: Sendable, Equatable {
    /// Client → coordinator: a client introduces itself.
    case register(Registration)
    /// Coordinator → client: the client's identity for this run.
    case registered(RegistrationAccepted)
    /// Coordinator → client: train the attached sub-model for one round.
    case train(TrainingTask)
    /// Client → coordinator: the locally trained sub-model.
    case update(TrainingUpdate)
    /// Coordinator → client: evaluate the attached sub-model at several budgets.
    case evaluate(EvaluationTask)
    /// Client → coordinator: the results of an ``EvaluationTask``, one per budget vector.
    case evaluation(EvaluationReport)
    /// Either way: the sender stops; the receiver should stop talking to it.
    case shutdown(Shutdown)
    /// Either way: the previous message was refused (too large, malformed, unexpected).
    case error(ErrorReport)
    /// Either way: liveness only, no payload.
    case heartbeat
    /// Worker → coordinator, on the worker's control channel: a process that hosts virtual
    /// clients asks for its share of the fleet.
    case workerHello(WorkerHello)
    /// Coordinator → worker, on its control channel: the clients the worker hosts.
    case workerAssignment(WorkerAssignment)
    /// Device → coordinator: a link measurement (`maestro bench --profile --coordinator`),
    /// padded to the size of the uplink transfer, asking for a reply of a given size.
    case linkProbe(LinkProbe)
    /// Coordinator → device: the answer to a ``LinkProbe``, padded to the size it asked for
    /// (never larger than the probe's own frame, so a probe cannot amplify traffic).
    case linkProbeReply(LinkProbeReply)
    /// Coordinator → worker, on its control channel: the training rows of a client the
    /// worker does not host, sent before that client's first TRAIN dispatched to it.
    case workerRows(WorkerRows)

    /// The wire code of this message.
    public var type: MessageType {
        switch self {
        case .register: .register
        case .registered: .registered
        case .train: .train
        case .update: .update
        case .evaluate: .evaluate
        case .evaluation: .evaluation
        case .shutdown: .shutdown
        case .error: .error
        case .heartbeat: .heartbeat
        case .workerHello: .workerHello
        case .workerAssignment: .workerAssignment
        case .linkProbe: .linkProbe
        case .linkProbeReply: .linkProbeReply
        case .workerRows: .workerRows
        }
    }
}

/// `linkProbe`: a device measures its link to the coordinator. The padding's content is not
/// carried in the value (it is zeros on the wire and skipped when read).
public struct LinkProbe: Sendable, Equatable {
    /// The size of the whole reply frame the device asks for, header included.
    public var replyFrameBytes: UInt32
    /// Bytes of padding after the fields.
    public var paddingBytes: UInt32

    public init(replyFrameBytes: UInt32, paddingBytes: UInt32) {
        self.replyFrameBytes = replyFrameBytes
        self.paddingBytes = paddingBytes
    }
}

/// `linkProbeReply`: the coordinator's answer to a ``LinkProbe``.
public struct LinkProbeReply: Sendable, Equatable {
    /// Bytes of padding after the field.
    public var paddingBytes: UInt32

    public init(paddingBytes: UInt32) { self.paddingBytes = paddingBytes }

    /// The reply whose whole frame is `frameBytes` long (or as short as a reply can be).
    public init(frameBytes: Int) {
        let fixed = WireLimits.headerSize + 4
        self.paddingBytes = UInt32(clamping: max(0, frameBytes - fixed))
    }
}

/// The factors of one LoD layer truncated to a budget `k`, both stored with the component
/// index as the first axis so that a budget is a prefix of rows.
///
/// Shapes: `up` is `[k, outputs]` (the first `k` columns of U, transposed), `down` is
/// `[k, inputs]` (the first `k` columns of V, transposed). `k` may be 0.
public struct FactorPair: Sendable, Equatable {
    /// Uᵀ truncated to `k` rows: `[k, outputs]`.
    public var up: Tensor
    /// Vᵀ truncated to `k` rows: `[k, inputs]`.
    public var down: Tensor

    public init(up: Tensor, down: Tensor) {
        self.up = up
        self.down = down
    }
}

/// `register`: a client introduces itself to the coordinator.
public struct Registration: Sendable, Equatable {
    /// The device tier's name (UTF-8, at most ``WireLimits/tierNameBytes`` bytes on the wire).
    public var tierName: String
    /// Measured compute speed in GFLOP/s.
    public var capability: Float
    /// Number of local training samples.
    public var sampleCount: UInt32
    /// Chosen at random by each client process, so that a restarted client is told apart
    /// from its previous incarnation.
    public var instanceNonce: UInt64
    /// The client ID the client asks for (its index in a simulated fleet, so that selection
    /// and aggregation order are reproducible), or `nil` to be assigned one.
    public var requestedClientID: UInt32?

    public init(
        tierName: String, capability: Float, sampleCount: UInt32, instanceNonce: UInt64,
        requestedClientID: UInt32? = nil
    ) {
        self.tierName = tierName
        self.capability = capability
        self.sampleCount = sampleCount
        self.instanceNonce = instanceNonce
        self.requestedClientID = requestedClientID
    }
}

/// `registered`: the coordinator accepts a client.
public struct RegistrationAccepted: Sendable, Equatable {
    /// The identity the client puts in the header's sender field from now on.
    public var clientID: UInt32
    /// The coordinator's run, so a client can tell a restarted coordinator apart.
    public var runID: UInt64
    /// The model the run trains (JSON of `LowRank.Architecture`), so a client needs only
    /// the address, its tier and its data.
    public var modelDescription: String

    public init(clientID: UInt32, runID: UInt64, modelDescription: String = "") {
        self.clientID = clientID
        self.runID = runID
        self.modelDescription = modelDescription
    }
}

/// `train`: one round of local training on the attached sub-model.
public struct TrainingTask: Sendable, Equatable {
    /// Kept rank per LoD layer (`k_l`); `factors[l]` holds `budgets[l]` components.
    public var budgets: [UInt32]
    /// The truncated factors, one pair per LoD layer.
    public var factors: [FactorPair]
    /// Parameters every client holds in full (biases, dense layers).
    public var shared: [Tensor]
    public var localEpochs: UInt16
    public var batchSize: UInt16
    public var learningRate: Float
    /// The kind of the rank sampler the client trains with (wire codes: SamplerOnWire.swift).
    public var sampler: RankSampler.Kind
    /// Group-lasso weight λ (0 for none).
    public var groupLasso: Float
    /// Seed of the client's sampling and shuffling for this round.
    public var seed: UInt64
    /// Client SGD momentum and weight decay.
    public var momentum: Float
    public var weightDecay: Float
    /// Fractions for `sharedFraction`, the one fraction of `fixed`, or under `widthDropout`
    /// the widths to draw from (empty otherwise).
    public var samplerFractions: [Float]
    /// FjORD's ordered dropout over width (sampler byte 5): each local step trains the prefix
    /// at a width drawn from `samplerFractions` (fractions of the full dense model). `sampler`
    /// is then `none`: no ranks are sampled.
    public var widthDropout: Bool
    /// Probability that a local step runs at the whole budget instead of a sampled rank
    /// (sampling biased to the client's own budget; docs/spec.md#convergence-notes).
    public var fullBudgetProbability: Float
    /// Whether sampled local steps also learn the full-budget pass's softmax.
    public var selfDistillation: Bool
    /// Whether the client runs the convolutions forward only (no gradient, no step) and sends
    /// them back with no rows: a cheap device trains the fully connected layers alone.
    public var freezeConvolutions: Bool
    /// FjORD's self-distillation under width dropout (option bit 2, `nil`: off): a step at a
    /// width below the client's own also learns the softened outputs of the client's whole
    /// slice, held constant (`KnowledgeDistillation`).
    public var distillation: Distillation?

    /// The weight α and temperature T of the distillation term `α · T² · KL(teacher ‖ student)`.
    public struct Distillation: Sendable, Equatable {
        public var weight: Float
        public var temperature: Float

        public init(weight: Float, temperature: Float) {
            self.weight = weight
            self.temperature = temperature
        }
    }

    public init(
        budgets: [UInt32], factors: [FactorPair], shared: [Tensor], localEpochs: UInt16,
        batchSize: UInt16, learningRate: Float, sampler: RankSampler.Kind, groupLasso: Float,
        seed: UInt64, momentum: Float = 0, weightDecay: Float = 0, samplerFractions: [Float] = [],
        fullBudgetProbability: Float = 0, selfDistillation: Bool = false,
        freezeConvolutions: Bool = false, widthDropout: Bool = false,
        distillation: Distillation? = nil
    ) {
        self.budgets = budgets
        self.factors = factors
        self.shared = shared
        self.localEpochs = localEpochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.sampler = sampler
        self.groupLasso = groupLasso
        self.seed = seed
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.samplerFractions = samplerFractions
        self.fullBudgetProbability = fullBudgetProbability
        self.selfDistillation = selfDistillation
        self.freezeConvolutions = freezeConvolutions
        self.widthDropout = widthDropout
        self.distillation = distillation
    }
}

/// `update`: the locally trained sub-model, in the shapes the client received.
public struct TrainingUpdate: Sendable, Equatable {
    public var factors: [FactorPair]
    public var shared: [Tensor]
    /// Samples seen in this round (the aggregation weight).
    public var sampleCount: UInt32
    /// Mean training loss over the round.
    public var trainingLoss: Float
    /// Wall-clock seconds spent training.
    public var computeSeconds: Float

    public init(
        factors: [FactorPair], shared: [Tensor], sampleCount: UInt32, trainingLoss: Float,
        computeSeconds: Float
    ) {
        self.factors = factors
        self.shared = shared
        self.sampleCount = sampleCount
        self.trainingLoss = trainingLoss
        self.computeSeconds = computeSeconds
    }
}

/// `evaluate`: evaluate the attached sub-model at each budget vector.
public struct EvaluationTask: Sendable, Equatable {
    /// Each element is one budget per LoD layer; every vector fits inside `factors`.
    public var budgets: [[UInt32]]
    public var factors: [FactorPair]
    public var shared: [Tensor]

    public init(budgets: [[UInt32]], factors: [FactorPair], shared: [Tensor]) {
        self.budgets = budgets
        self.factors = factors
        self.shared = shared
    }
}

/// The result of evaluating at one budget vector.
public struct BudgetEvaluation: Sendable, Equatable {
    public var sampleCount: UInt32
    public var correct: UInt32
    /// Sum (not mean) of the per-sample losses, so that reports add up across clients.
    public var lossSum: Float

    public init(sampleCount: UInt32, correct: UInt32, lossSum: Float) {
        self.sampleCount = sampleCount
        self.correct = correct
        self.lossSum = lossSum
    }
}

/// `evaluation`: one result per budget vector of the ``EvaluationTask``, in its order.
public struct EvaluationReport: Sendable, Equatable {
    public var results: [BudgetEvaluation]

    public init(results: [BudgetEvaluation]) {
        self.results = results
    }
}

/// `shutdown`: the sender stops.
public struct Shutdown: Sendable, Equatable {
    /// Why (UTF-8; the encoder clips it to ``WireLimits/textBytes`` bytes).
    public var reason: String

    public init(reason: String) {
        self.reason = reason
    }
}

/// `error`: the sender refused the previous message.
public struct ErrorReport: Sendable, Equatable {
    /// Machine-readable reason; codes this version does not know still decode.
    public var code: Code
    /// Human-readable details (UTF-8; the encoder clips it to ``WireLimits/textBytes`` bytes).
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// An error code (UInt16 on the wire).
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }

        /// The frame was larger than the receiver accepts.
        public static let messageTooLarge = Code(rawValue: 1)
        /// The frame did not decode (see the message for the ``WireError``).
        public static let malformed = Code(rawValue: 2)
        /// The message decoded but was not expected now (wrong round, wrong type).
        public static let unexpected = Code(rawValue: 3)
        /// Tensors had the wrong count or shape.
        public static let shapeMismatch = Code(rawValue: 4)
        /// The sender id is not registered.
        public static let unknownClient = Code(rawValue: 5)
        /// The peer speaks another protocol version.
        public static let unsupportedVersion = Code(rawValue: 6)
        /// Something failed inside the sender.
        public static let internalFailure = Code(rawValue: 7)
        /// Refused for now: the same request may succeed later (a worker share whose holder's
        /// connection is not yet known closed).
        public static let retryLater = Code(rawValue: 8)

        public var description: String {
            switch self {
            case .messageTooLarge: "messageTooLarge"
            case .malformed: "malformed"
            case .unexpected: "unexpected"
            case .shapeMismatch: "shapeMismatch"
            case .unknownClient: "unknownClient"
            case .unsupportedVersion: "unsupportedVersion"
            case .internalFailure: "internalFailure"
            case .retryLater: "retryLater"
            default: "code \(rawValue)"
            }
        }
    }
}

/// `workerHello`: a worker process asks for a share of the simulated fleet.
///
/// The fleet's clients are split into `slots` shares: share `s` holds the clients whose
/// index `i` has `i mod slots == s`. A worker asks for one share, or for any free one.
public struct WorkerHello: Sendable, Equatable {
    /// The share asked for, or `nil` for any free share.
    public var slot: UInt32?
    /// How many shares the asker believes the fleet is split into, or `nil` to take the
    /// coordinator's split.
    public var slots: UInt32?
    /// Chosen at random by each worker process (a restarted worker takes its share over).
    public var instanceNonce: UInt64
    /// The worker's host name, for logs.
    public var host: String
    /// The worker secret the coordinator issued (plaintext deployments; empty under CURVE,
    /// where the worker's enrolled key proves what it is).
    public var credential: String

    public init(
        slot: UInt32?, slots: UInt32?, instanceNonce: UInt64, host: String,
        credential: String = ""
    ) {
        self.slot = slot
        self.slots = slots
        self.instanceNonce = instanceNonce
        self.host = host
        self.credential = credential
    }
}

/// `workerAssignment`: the share of the fleet a worker hosts, and what it needs to host it.
public struct WorkerAssignment: Sendable, Equatable {
    /// The worker's share: clients `slot, slot + slots, slot + 2·slots, …` below the fleet size.
    public var slot: UInt32
    public var slots: UInt32
    /// The coordinator's run.
    public var runID: UInt64
    /// The scenario as run (YAML), from which the worker takes tiers, data and the fleet.
    public var scenario: String
    /// Training rows of the clients of this share, in share order (`slot`, `slot + slots`,
    /// …), computed by the coordinator (empty when the data set is generated per client).
    /// Rows of other clients come one client at a time (``WorkerRows``), only when the
    /// worker is handed one of their TRAINs.
    public var rows: [[UInt32]]

    public init(slot: UInt32, slots: UInt32, runID: UInt64, scenario: String, rows: [[UInt32]]) {
        self.slot = slot
        self.slots = slots
        self.runID = runID
        self.scenario = scenario
        self.rows = rows
    }
}

/// `workerRows`: the training rows of client `client`, which the worker does not host but is
/// about to train a TRAIN of (the coordinator keeps every worker busy).
public struct WorkerRows: Sendable, Equatable {
    public var client: UInt32
    public var rows: [UInt32]

    public init(client: UInt32, rows: [UInt32]) {
        self.client = client
        self.rows = rows
    }
}
