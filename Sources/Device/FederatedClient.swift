import Federation
import LowRank
import Tensors
import Transport

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

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
/// The protocol logic is ``ClientSession``; this class owns the transport, the samples and
/// the clock. Used from one thread (the transport is not thread-safe).
public final class FederatedClient {
    public struct Options: Sendable {
        public var coordinator: String
        public var tierName: String
        public var gflops: Float
        public var requestedClientID: UInt32?
        public var idleTimeout: Duration = .seconds(600)
        /// First wait before REGISTER is repeated; it doubles up to `maximumRegistrationRetry`.
        public var registrationRetry: Duration = .seconds(3)
        public var maximumRegistrationRetry: Duration = .seconds(30)
        /// Told, whatever the verbosity, what the client is still waiting for (every 10 s, then
        /// less often), so that a client pointed at a dead address does not wait in silence.
        public var notice: @Sendable (String) -> Void = { _ in }
        public var maximumMessageSize: Int = 64 << 20
        public var log: @Sendable (String) -> Void = { _ in }
        /// Told once per registration, whatever the verbosity (instead of a `log` line): the
        /// ID and tier the client registered as, and what it waits for.
        public var announce: @Sendable (String) -> Void = { _ in }

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
    private var session: ClientSession
    private var architectures = ModelDescriptions()
    /// Whether a connection to the coordinator's address was ever established.
    public private(set) var connected = false
    /// Connection attempts that failed (nothing listening at the address) before the first
    /// connection.
    public private(set) var failedConnects = 0
    /// Whether the coordinator ever answered a REGISTER.
    public private(set) var registered = false

    public init(transport: any MessageTransport, samples: TrainingSamples, options: Options) {
        self.transport = transport
        self.samples = samples
        self.options = options
        var generator = SystemRandomNumberGenerator()
        session = ClientSession(
            tierName: options.tierName, gflops: options.gflops, sampleCount: samples.count,
            featureCount: samples.featureCount, requestedClientID: options.requestedClientID,
            nonce: generator.next(), coordinator: options.coordinator)
    }

    /// Runs until SHUTDOWN or the idle timeout.
    public func run() throws(ClientError) -> ClientOutcome {
        var lastHeard = ContinuousClock.now
        let started = ContinuousClock.now
        var lastRegistration = started
        var retry = options.registrationRetry
        var nextNotice = started + .seconds(10)
        // Whether a REGISTER is unanswered (at the start, and after the coordinator restarted
        // or the link came back: the coordinator may not know this client any more).
        var awaitingAnswer = true
        // Registers again from scratch: sent now, then repeated with back-off until answered.
        func registerAgain(_ line: String) throws(ClientError) {
            options.log(line)
            try send(session.registration, round: 0)
            awaitingAnswer = true
            lastRegistration = ContinuousClock.now
            retry = options.registrationRetry
        }
        try send(session.registration, round: 0)
        // Told once, in the first seconds: nothing accepts connections at the address.
        var refusalTold = false
        while true {
            let events = transport.takeConnectionEvents()
            connected = connected || events.connects > 0
            if !connected { failedConnects += events.failedConnects }
            if !connected && !refusalTold && failedConnects > 0 {
                refusalTold = true
                options.notice(ConnectionText.refused(options.coordinator))
            }
            if events.reestablished > 0 && session.isRegistered {
                try registerAgain(
                    "the connection to the coordinator at \(options.coordinator) was re-established; registering again"
                )
            }
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
                if !session.isRegistered && now >= nextNotice {
                    let waited = Int((now - started).seconds.rounded())
                    options.notice(
                        (connected
                            ? "connected to \(options.coordinator), but no answer to REGISTER"
                            : "no connection to the coordinator at \(options.coordinator)")
                            + " after \(waited) s; still trying (every \(Int(retry.seconds)) s, giving up after \(Int(options.idleTimeout.seconds)) s)"
                    )
                    nextNotice = now + max(.seconds(10), now - started)
                }
                if awaitingAnswer && now - lastRegistration > retry {
                    retry = min(retry * 2, options.maximumRegistrationRetry)
                    try send(session.registration, round: 0)
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
            let decision = session.received(envelope, architectures: &architectures)
            switch decision {
            case .none: continue
            case .log(let line): options.log(line)
            case .registered(let clientID, _):
                awaitingAnswer = false
                registered = true
                // The session's own line says less; the announcement replaces it in the log.
                options.announce(
                    "registered with \(options.coordinator) as client \(clientID), tier \(options.tierName) (\(samples.count) samples); waiting for the coordinator's rounds"
                )
            case .reregister(let line):
                try registerAgain(line)
            case .reply(let message, let round, let line):
                if let line { options.log(line) }
                try send(message, round: round)
            case .train, .evaluate:
                let samples = self.samples
                if let answer = session.answer(
                    to: decision, clock: .processCPU, samples: { _ in samples })
                {
                    try send(answer.message, round: answer.round)
                }
            case .stop(let outcome): return outcome
            case .fail(let error): throw error
            }
        }
    }

    private func send(_ message: Message, round: UInt32) throws(ClientError) {
        do {
            try transport.send(
                WireCodec.encode(message, round: round, sender: session.clientID),
                to: .coordinator)
        } catch {
            throw .transport(error)
        }
    }
}
