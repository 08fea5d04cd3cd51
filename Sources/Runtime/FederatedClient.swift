import Federation
import Foundation
import LowRank
import Tensors
import Transport

/// Why a client stopped.
public enum ClientOutcome: Sendable, Equatable {
    /// The coordinator said SHUTDOWN (with its reason).
    case shutdown(reason: String)
    /// Nothing came from the coordinator for the idle timeout.
    case idle
}

/// Why a client cannot go on.
public enum ClientError: Error, CustomStringConvertible {
    case transport(TransportError)
    case refused(coordinator: String, reason: String)
    case badModelDescription(reason: String)

    public var description: String {
        switch self {
        case .transport(let error): "\(error)"
        case .refused(let coordinator, let reason):
            "coordinator \(coordinator) refused this client: \(reason)"
        case .badModelDescription(let reason):
            "the coordinator's model description is unusable: \(reason)"
        }
    }
}

/// A federated client: registers with the coordinator, then trains each TRAIN task on its
/// own samples and answers with an UPDATE, until SHUTDOWN.
///
/// Owns its transport and is used from one thread (the transport is not thread-safe).
public final class FederatedClient {
    public struct Options: Sendable {
        public var coordinator: String
        public var tierName: String
        public var gflops: Float
        public var requestedClientID: UInt32?
        public var idleTimeout: Duration = .seconds(600)
        public var registrationRetry: Duration = .seconds(3)
        public var maximumMessageSize: Int = 64 << 20
        public var log: @Sendable (String) -> Void = { _ in }

        public init(
            coordinator: String, tierName: String, gflops: Float, requestedClientID: UInt32?
        ) {
            self.coordinator = coordinator
            self.tierName = tierName
            self.gflops = gflops
            self.requestedClientID = requestedClientID
        }
    }

    private let transport: any MessageTransport
    private let samples: TrainingSamples
    private let options: Options
    private var clientID: UInt32 = 0
    private var architecture: Architecture?
    private let nonce: UInt64

    public init(transport: any MessageTransport, samples: TrainingSamples, options: Options) {
        self.transport = transport
        self.samples = samples
        self.options = options
        var generator = SystemRandomNumberGenerator()
        nonce = generator.next()
    }

    /// Runs until SHUTDOWN or the idle timeout.
    public func run() throws(ClientError) -> ClientOutcome {
        var lastHeard = ContinuousClock.now
        var lastRegistration = ContinuousClock.now
        try register()
        while true {
            let frame: ReceivedFrame?
            do {
                frame = try transport.receive(timeout: .milliseconds(500))
            } catch {
                if error.isPeerFault { continue }
                throw .transport(error)
            }
            let now = ContinuousClock.now
            guard let frame else {
                if now - lastHeard > options.idleTimeout { return .idle }
                if architecture == nil && now - lastRegistration > options.registrationRetry {
                    try register()
                    lastRegistration = now
                }
                continue
            }
            lastHeard = now
            let envelope: Envelope
            do {
                envelope = try WireCodec.decode(
                    frame.bytes, maximumSize: options.maximumMessageSize)
            } catch {
                options.log("discarded a malformed frame from the coordinator: \(error)")
                continue
            }
            switch envelope.message {
            case .registered(let accepted):
                try accept(accepted)
            case .train(let task):
                guard let architecture else {
                    options.log("TRAIN for round \(envelope.round) before registration: ignored")
                    continue
                }
                try train(task, round: envelope.round, architecture: architecture)
            case .evaluate(let task):
                guard let architecture else { continue }
                try evaluate(task, round: envelope.round, architecture: architecture)
            case .shutdown(let shutdown):
                return .shutdown(reason: shutdown.reason)
            case .error(let report):
                if architecture == nil {
                    throw .refused(coordinator: options.coordinator, reason: report.message)
                }
                options.log("coordinator reported: \(report.message)")
            case .heartbeat, .register, .update, .evaluation:
                continue
            }
        }
    }

    private func register() throws(ClientError) {
        let registration = Registration(
            tierName: options.tierName, capability: options.gflops,
            sampleCount: UInt32(samples.count),
            instanceNonce: nonce, requestedClientID: options.requestedClientID)
        try send(.register(registration), round: 0)
    }

    private func accept(_ accepted: RegistrationAccepted) throws(ClientError) {
        guard let data = accepted.modelDescription.data(using: .utf8) else {
            throw .badModelDescription(reason: "not UTF-8")
        }
        let decoded: Architecture
        do {
            decoded = try JSONDecoder().decode(Architecture.self, from: data)
        } catch {
            throw .badModelDescription(reason: "\(error)")
        }
        if let problem = decoded.inconsistency { throw .badModelDescription(reason: problem) }
        guard decoded.inputShape.reduce(1, *) == samples.featureCount else {
            throw .badModelDescription(
                reason:
                    "the model takes \(decoded.inputShape) inputs, this client's data has \(samples.featureCount) features"
            )
        }
        architecture = decoded
        clientID = accepted.clientID
        options.log(
            "registered as client \(clientID) (\(options.tierName), \(samples.count) samples)")
    }

    private func train(
        _ task: TrainingTask, round: UInt32, architecture: Architecture
    ) throws(ClientError) {
        guard
            Self.sliceFits(
                task.budgets, factors: task.factors, shared: task.shared, architecture: architecture
            )
        else {
            try send(
                .error(
                    ErrorReport(code: .shapeMismatch, message: "TRAIN shapes do not fit the model")),
                round: round)
            return
        }
        // CPU time, not wall time: on a loaded machine the wall clock would count waiting.
        let cpuStart = processCPUSeconds()
        let result = LocalTraining.run(task, architecture: architecture, samples: samples)
        let seconds = Float(processCPUSeconds() - cpuStart)
        let update = TrainingUpdate(
            factors: result.slice.factors, shared: result.slice.shared,
            sampleCount: UInt32(samples.count),
            trainingLoss: Float(result.loss), computeSeconds: seconds)
        try send(.update(update), round: round)
    }

    private func evaluate(
        _ task: EvaluationTask, round: UInt32, architecture: Architecture
    ) throws(ClientError) {
        var results: [BudgetEvaluation] = []
        for budgets in task.budgets {
            let ranks = budgets.map(Int.init)
            let full = task.factors.map { Int($0.up.shape.first ?? 0) }
            guard ranks.count == full.count, zip(ranks, full).allSatisfy({ $0 <= $1 }),
                Self.sliceFits(
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
        try send(.evaluation(EvaluationReport(results: results)), round: round)
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
        return shared.map(\.shape) == layout.sharedIndices.map { shapes[$0] }
            && shared.allSatisfy { $0.scalars.allSatisfy(\.isFinite) }
            && factors.allSatisfy {
                $0.up.scalars.allSatisfy(\.isFinite) && $0.down.scalars.allSatisfy(\.isFinite)
            }
    }

    private func send(_ message: Message, round: UInt32) throws(ClientError) {
        do {
            try transport.send(
                WireCodec.encode(message, round: round, sender: clientID), to: .coordinator)
        } catch {
            throw .transport(error)
        }
    }
}

/// CPU seconds this process has used so far.
func processCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}
