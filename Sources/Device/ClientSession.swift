import Federation
import LowRank
import Tensors

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One client's side of the protocol as a pure state machine (no I/O, no clock): envelopes from the
/// coordinator in, decisions out. It owns no socket, data or clock, so a device's process
/// (``FederatedClient``) and a worker hosting thousands of virtual clients (``Worker``) run the
/// same logic: register, accept the model description, check each TRAIN and EVALUATE against
/// the model, stop on SHUTDOWN.
public struct ClientSession {
    /// What the session knows of its coordinator.
    public enum State {
        case unregistered
        case registered(clientID: UInt32, architecture: Architecture)
        case finished
    }

    /// What the host must do with a received envelope.
    public enum Decision {
        /// Nothing (a heartbeat, a message a client ignores).
        case none
        /// Write a line to the client's log.
        case log(String)
        /// The session registered (its log line); nothing to send.
        case registered(clientID: UInt32, log: String)
        /// Send this message back in this round.
        case reply(Message, round: UInt32, log: String?)
        /// Train this task on the client's samples, then send ``update(for:sampleCount:seconds:)``.
        case train(TrainingTask, round: UInt32, architecture: Architecture)
        /// Evaluate this task on the client's samples and send the result
        /// (``evaluation(of:architecture:samples:)``).
        case evaluate(EvaluationTask, round: UInt32, architecture: Architecture)
        /// The coordinator no longer knows this client (it restarted): send ``registration``
        /// again, and keep repeating it until it is answered.
        case reregister(log: String)
        /// The client is done.
        case stop(ClientOutcome)
        /// The client cannot go on.
        case fail(ClientError)
    }

    public let tierName: String
    public let gflops: Float
    public let sampleCount: Int
    /// Features per sample of the client's data (checked against the model's input).
    public let featureCount: Int
    public let requestedClientID: UInt32?
    /// Tells this incarnation apart from earlier ones (a restarted client).
    public let nonce: UInt64
    /// Where the coordinator is (for error messages).
    public let coordinator: String
    public private(set) var state: State = .unregistered

    public init(
        tierName: String, gflops: Float, sampleCount: Int, featureCount: Int,
        requestedClientID: UInt32?, nonce: UInt64, coordinator: String
    ) {
        self.tierName = tierName
        self.gflops = gflops
        self.sampleCount = sampleCount
        self.featureCount = featureCount
        self.requestedClientID = requestedClientID
        self.nonce = nonce
        self.coordinator = coordinator
    }

    /// A session that registered elsewhere: a worker training another worker's client.
    public init(
        tierName: String, gflops: Float, sampleCount: Int, featureCount: Int,
        requestedClientID: UInt32?, nonce: UInt64, coordinator: String,
        registeredAs clientID: UInt32, architecture: Architecture
    ) {
        self.init(
            tierName: tierName, gflops: gflops, sampleCount: sampleCount,
            featureCount: featureCount, requestedClientID: requestedClientID, nonce: nonce,
            coordinator: coordinator)
        state = .registered(clientID: clientID, architecture: architecture)
    }

    /// The ID the coordinator gave this client (0 before registration): the header's sender.
    public var clientID: UInt32 {
        if case .registered(let id, _) = state { return id }
        return 0
    }

    public var isRegistered: Bool {
        if case .registered = state { return true }
        return false
    }

    public var isFinished: Bool {
        if case .finished = state { return true }
        return false
    }

    /// The REGISTER message (sent at start and repeated until the coordinator answers).
    public var registration: Message {
        .register(
            Registration(
                tierName: tierName, capability: gflops, sampleCount: UInt32(sampleCount),
                instanceNonce: nonce, requestedClientID: requestedClientID))
    }

    /// Handles one envelope from the coordinator.
    ///
    /// `architectures` decodes model descriptions; a worker shares one among its clients,
    /// which all receive the same description.
    public mutating func received(
        _ envelope: Envelope, architectures: inout ModelDescriptions
    ) -> Decision {
        guard !isFinished else { return .none }
        switch envelope.message {
        case .registered(let accepted):
            let architecture: Architecture
            do {
                architecture = try architectures.architecture(
                    of: accepted.modelDescription, featureCount: featureCount)
            } catch {
                state = .finished
                return .fail(error)
            }
            state = .registered(clientID: accepted.clientID, architecture: architecture)
            return .registered(
                clientID: accepted.clientID,
                log:
                    "registered as client \(accepted.clientID) (\(tierName), \(sampleCount) samples)"
            )
        case .train(let task):
            guard case .registered(_, let architecture) = state else {
                return .log("TRAIN for round \(envelope.round) before registration: ignored")
            }
            guard
                Self.sliceFits(
                    task.budgets, factors: task.factors, shared: task.shared,
                    architecture: architecture)
            else {
                return .reply(
                    .error(
                        ErrorReport(
                            code: .shapeMismatch, message: "TRAIN shapes do not fit the model")),
                    round: envelope.round, log: "refused a TRAIN whose shapes do not fit the model")
            }
            if let problem = Self.problem(withSettings: task)
                ?? Self.problem(withWidthDropout: task, architecture: architecture)
            {
                return .reply(
                    .error(ErrorReport(code: .malformed, message: "TRAIN refused: \(problem)")),
                    round: envelope.round, log: "refused a TRAIN: \(problem)")
            }
            return .train(task, round: envelope.round, architecture: architecture)
        case .evaluate(let task):
            guard case .registered(_, let architecture) = state else { return .none }
            return .evaluate(task, round: envelope.round, architecture: architecture)
        case .shutdown(let shutdown):
            state = .finished
            return .stop(.shutdown(reason: shutdown.reason))
        case .error(let report):
            guard isRegistered else {
                state = .finished
                return .fail(.refused(coordinator: coordinator, reason: report.message))
            }
            if report.code == .unknownClient {
                return .reregister(
                    log:
                        "the coordinator does not know this client (\(report.message)); registering again"
                )
            }
            return .log("coordinator reported: \(PeerText.escaped(report.message))")
        case .heartbeat, .register, .update, .evaluation, .workerHello, .workerAssignment,
            .workerRows, .linkProbe, .linkProbeReply:
            return .none
        }
    }

    /// The UPDATE for a finished local training.
    public func update(
        for result: (slice: ModelSlice, loss: Double, steps: Int), seconds: Double
    ) -> Message {
        .update(
            TrainingUpdate(
                factors: result.slice.factors, shared: result.slice.shared,
                sampleCount: UInt32(sampleCount), trainingLoss: Float(result.loss),
                computeSeconds: Float(seconds)))
    }

    /// Evaluates `task` on `samples` at each of its budget vectors (a vector that does not fit
    /// the attached slice gets an empty result).
    public static func evaluation(
        of task: EvaluationTask, architecture: Architecture, samples: TrainingSamples
    ) -> Message {
        var results: [BudgetEvaluation] = []
        for budgets in task.budgets {
            let ranks = budgets.map(Int.init)
            let full = task.factors.map { Int($0.up.shape.first ?? 0) }
            guard ranks.count == full.count, zip(ranks, full).allSatisfy({ $0 <= $1 }),
                sliceFits(
                    full.map(UInt32.init), factors: task.factors, shared: task.shared,
                    architecture: architecture)
            else {
                results.append(BudgetEvaluation(sampleCount: 0, correct: 0, lossSum: 0))
                continue
            }
            let network = Network(
                architecture: architecture,
                slice: ModelSlice(budgets: full, factors: task.factors, shared: task.shared))
            let (accuracy, loss) = network.evaluate(on: samples, ranks: ranks)
            results.append(
                BudgetEvaluation(
                    sampleCount: UInt32(samples.count),
                    correct: UInt32((accuracy * Double(samples.count)).rounded()),
                    lossSum: Float(loss * Double(samples.count))))
        }
        return .evaluation(EvaluationReport(results: results))
    }

    /// Why a TRAIN asks for width dropout a model cannot do: it drops channels of a dense
    /// model, and this one has LoD layers.
    static func problem(
        withWidthDropout task: TrainingTask, architecture: Architecture
    )
        -> String?
    {
        guard task.widthDropout, !architecture.lowRankLayerIndices.isEmpty else { return nil }
        return "width dropout applies to a dense model; this one has LoD layers"
    }

    /// Why a TRAIN's training settings cannot be trained with (a peer's values, never
    /// trusted: a batch size of 0 divided by zero, a NaN fraction trapped in the sampler).
    static func problem(withSettings task: TrainingTask) -> String? {
        if task.localEpochs == 0 { return "localEpochs is 0" }
        if task.batchSize == 0 { return "batchSize is 0" }
        for (name, value) in [
            ("learningRate", task.learningRate), ("groupLasso", task.groupLasso),
            ("momentum", task.momentum), ("weightDecay", task.weightDecay),
        ] where !value.isFinite {
            return "\(name) is \(value)"
        }
        if task.groupLasso < 0 || task.weightDecay < 0 {
            return "negative groupLasso or weightDecay"
        }
        if !(0..<1).contains(task.momentum) { return "momentum \(task.momentum) is outside [0, 1)" }
        if !(0...1).contains(task.fullBudgetProbability) {
            return "fullBudgetProbability \(task.fullBudgetProbability) is outside [0, 1]"
        }
        if let bad = task.samplerFractions.first(where: { !($0 > 0 && $0 <= 1) }) {
            return "sampler fraction \(bad) is outside (0, 1]"
        }
        if task.widthDropout && task.samplerFractions.isEmpty {
            return "width dropout needs the widths to draw from, got none"
        }
        if let distillation = task.distillation {
            guard task.widthDropout else {
                return "self-distillation over widths needs width dropout (sampler 5)"
            }
            let (weight, temperature) = (distillation.weight, distillation.temperature)
            if !(weight.isFinite && weight >= 0) {
                return "distillation weight \(weight) is not a finite number ≥ 0"
            }
            if !(temperature.isFinite && temperature > 0) {
                return "distillation temperature \(temperature) is not a finite number > 0"
            }
        }
        if task.sampler == .fixed && task.samplerFractions.count > 1 {
            return "a fixed sampler takes one fraction, got \(task.samplerFractions.count)"
        }
        return nil
    }

    /// Whether received tensors have exactly the shapes the model has at these budgets.
    static func sliceFits(
        _ budgets: [UInt32], factors: [FactorPair], shared: [Tensor], architecture: Architecture
    ) -> Bool {
        let lowRank = architecture.lowRankLayerIndices
        guard budgets.count == lowRank.count, factors.count == lowRank.count else { return false }
        for (l, index) in lowRank.enumerated() {
            guard let (outputs, inputs) = architecture.layers[index].matrixShape,
                let maxRank = architecture.layers[index].maxRank, Int(budgets[l]) <= maxRank,
                factors[l].up.shape == [Int(budgets[l]), outputs],
                factors[l].down.shape == [Int(budgets[l]), inputs]
            else { return false }
        }
        let layout = ParameterLayout(architecture)
        let shapes = architecture.parameterShapes
        // A dense model may also be sent as a width slice (narrower channels).
        let isWidthSlice =
            lowRank.isEmpty
            && (try? WidthTraining.sliceWidths(of: architecture, shared: shared)) != nil
        return (isWidthSlice || shared.map(\.shape) == layout.sharedIndices.map { shapes[$0] })
            && shared.allSatisfy { $0.scalars.allSatisfy(\.isFinite) }
            && factors.allSatisfy {
                $0.up.scalars.allSatisfy(\.isFinite) && $0.down.scalars.allSatisfy(\.isFinite)
            }
    }
}

/// Decoded model descriptions, remembered by their text: every client of a run receives the
/// same description, so a worker decodes it once, not once per hosted client.
public struct ModelDescriptions {
    private var known: [String: Architecture] = [:]

    public init() {}

    /// The architecture `description` holds, checked for consistency and for `featureCount`
    /// inputs.
    mutating func architecture(
        of description: String, featureCount: Int
    ) throws(ClientError) -> Architecture {
        let architecture: Architecture
        if let cached = known[description] {
            architecture = cached
        } else {
            guard let data = description.data(using: .utf8) else {
                throw .badModelDescription(reason: "not UTF-8")
            }
            do {
                architecture = try JSONDecoder().decode(Architecture.self, from: data)
            } catch {
                throw .badModelDescription(reason: "\(error)")
            }
            if let problem = architecture.inconsistency {
                throw .badModelDescription(reason: problem)
            }
            if known.count >= 4 { known = [:] }  // a run has one; stay bounded regardless
            known[description] = architecture
        }
        guard architecture.inputShape.reduce(1, *) == featureCount else {
            throw .badModelDescription(
                reason:
                    "the model takes \(architecture.inputShape) inputs, this client's data has \(featureCount) features"
            )
        }
        return architecture
    }
}
