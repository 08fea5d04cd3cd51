import Federation
import Fleet
import LowRank
import Tensors
import Transport

/// A stateful protocol fuzzer's harness: it reads a byte string as a sequence of events from
/// many fake peers (registrations with and without CURVE keys, updates right and wrong,
/// garbage frames, other message types, time passing, closed connections, lost clients, failed
/// sends, link probes the transport answered on its own thread, valid and forged), drives a
/// `CoordinatorMachine` with them as its driver would, and checks after every event that
///
/// 1. nothing traps (the process would die);
/// 2. rejected input never changes the model: when a step's frame is rejected and the model
///    moved anyway (the rejection completed a round), the same step with the frame's content
///    removed (a garbage frame from the same peer, or the client dropped from the round) gives
///    the same model, bit for bit;
/// 3. registrations stay within the population bound;
/// 4. no action sends to an unenrolled peer: REGISTERED and SHUTDOWN go only to the peer a
///    client is registered from (with an enrolled key when there is an enrolment), TRAIN to
///    that peer or to an admitted worker on the client's channel, error replies only to the
///    peer whose frame is being answered, at a bounded size, and link probe replies only to
///    the probing peer (an enrolled key when there is an enrolment), never larger than the
///    probe's frame;
/// 5. no client's rows reach a peer that is not an admitted worker: a worker assignment goes
///    only to a connection that proved it is a worker (the secret, or a worker key), and
///    carries exactly the rows of its share's clients; another client's rows go only right
///    before that client's TRAIN to the same worker; anything else a control channel is
///    answered with is no larger than the frame it answers;
/// 6. an update is aggregated only from the peer its client's TRAIN of that round went to;
/// 7. no frame from a peer ends the run;
/// 8. the bytes queued for a connection stay within its budget, as the transport keeps it
///    (`ServerLimits`): a send that would pass it while something is queued is refused, and
///    the machine copes as it must, without ending the run and without queuing anything more
///    for that connection until it speaks again;
/// 9. a link probe the transport answered (an ``AnsweredFrame``, valid or forged: any peer,
///    key, sizes and send error) is in the byte ledger, the probe's row and, when the reply
///    went out, the reply's, as the peer's; the run's totals move by exactly the rows given,
///    and the run goes on.
///
/// The libFuzzer target (`Fuzz/ProtocolFuzzer`) and the suite's corpus replay both call
/// ``run(_:)``.
public enum ProtocolFuzzing {
    /// A broken invariant, described.
    public struct Violation: Error, CustomStringConvertible {
        public let description: String
    }

    /// Keys of the fuzzed enrolment: one bound to client 1 in tier small, one unbound.
    static let boundKey = String(repeating: "b", count: 39) + "1"
    static let unboundKey = "#" + String(repeating: "u", count: 39)
    static let strangerKey = String(repeating: "s", count: 40)
    static let workerKey = String(repeating: "w", count: 40)
    /// A tier name at the length limit (no tier has it).
    static let longTierName = String(repeating: "x", count: 255)
    /// The plaintext worker secret of the fuzzed coordinator.
    static let workerSecret = "fuzz-worker-secret"

    /// The training rows the fuzzed coordinator holds: client `i`'s are `[1000 + i, i]`.
    static func rows(ofClient index: Int) -> [UInt32] { [UInt32(1000 + index), UInt32(index)] }
    /// The scenario: a logistic model on synthetic data, 8 clients, 3 rounds of 4.
    static let scenario: Scenario = {
        let yaml = """
            name: fuzz
            seed: 5
            clients: 8
            rounds: 3
            clientsPerRound: 4
            minimumUpdates: 2
            roundFailurePolicy: retry
            dataset: {name: synthetic, synthetic: {alpha: 1, beta: 1}, samplesPerClient: 40}
            model: {architecture: logistic, strategy: orderedLoD}
            training: {localEpochs: 1, batchSize: 16, learningRate: 0.05, sampler: perLayer, server: {optimizer: fedAvgM, learningRate: 1, momentum: 0.9}}
            evaluation: {period: 1}
            shrinking: {period: 1, threshold: 0.5}
            tiers:
              - {name: small, count: 4, rankFraction: 0.3, gflops: 1, uplinkMbps: 1, downlinkMbps: 4, latencyMs: 30}
              - {name: large, count: 4, rankFraction: 1.0, gflops: 4, uplinkMbps: 8, downlinkMbps: 16, latencyMs: 10}
            """
        do {
            return try Scenario.parse(yaml: yaml, path: "fuzz.yaml")
        } catch {
            fatalError("the fuzzing scenario does not parse: \(error)")
        }
    }()

    /// Two machines built once (one plain, one with an enrolment): each input starts from a
    /// copy, so an execution costs its events, not a model's initialisation.
    static let templates: (plain: CoordinatorMachine, enrolled: CoordinatorMachine) = {
        var enrolment = Enrolment()
        _ = enrolment.add(key: boundKey, entry: .init(clientID: 1, tier: "small"))
        _ = enrolment.add(key: unboundKey, entry: .init())
        _ = enrolment.add(key: workerKey, entry: .worker)
        do {
            // The first 16 held-out samples: evaluation feeds the metrics and the finiteness
            // check, never a decision that depends on how many samples it scores.
            let all = try scenario.evaluationSamples()
            let kept = min(all.count, 16)
            let evaluation = TrainingSamples(
                features: Array(all.features.prefix(kept * all.featureCount)),
                labels: Array(all.labels.prefix(kept)), featureCount: all.featureCount)
            func machine(_ enrolment: Enrolment?) throws(CoordinatorError) -> CoordinatorMachine {
                try CoordinatorMachine(
                    scenario: scenario, evaluationSet: evaluation, expectedClients: 3,
                    registrationTimeout: .seconds(30), roundTimeout: .seconds(5),
                    maximumMessageSize: 1 << 20, enrolment: enrolment, maximumClients: 10,
                    workerSecret: workerSecret,
                    partitionRows: { (0..<8).map { rows(ofClient: $0).map(Int.init) } },
                    resumingFrom: nil)
            }
            return (try machine(nil), try machine(enrolment))
        } catch {
            fatalError("the fuzzing machine cannot be built: \(error)")
        }
    }()

    /// What one input did.
    public struct Outcome {
        /// The broken invariant, or `nil` when every one held.
        public var violation: Violation?
        /// Rounds the machine completed, and frames it rejected.
        public var rounds: Int
        public var rejected: Int
        /// Sends the transport refused because their connection passed its byte budget.
        public var refusedSends: Int
    }

    /// Runs one input and checks the invariants after every event.
    public static func run(_ input: [UInt8], tracing: Bool = false) -> Outcome {
        var reader = Reader(bytes: input)
        let enrolled = reader.byte() & 1 == 1
        var run = Run(machine: enrolled ? templates.enrolled : templates.plain)
        if tracing { run.trace = [] }
        var violation: Violation?
        do {
            try run.perform(run.machine.start(at: .zero), answering: nil)
            var steps = 0
            while !reader.isExhausted && !run.isOver && steps < 400 {
                steps += 1
                try run.step(&reader)
            }
        } catch let broken as Violation {
            violation = broken
            if let trace = run.trace {
                violation = Violation(
                    description: broken.description + "\n"
                        + trace.suffix(40).joined(separator: "\n"))
            }
        } catch {
            violation = Violation(description: "unexpected \(error)")
        }
        return Outcome(
            violation: violation, rounds: run.machine.completedRounds,
            rejected: run.machine.rejectedCount, refusedSends: run.queues.refusals)
    }

    /// Reads an input's bytes as numbers; past the end it reads zeros.
    struct Reader {
        let bytes: [UInt8]
        var position = 0

        var isExhausted: Bool { position >= bytes.count }

        mutating func byte() -> UInt8 {
            defer { position += 1 }
            return position < bytes.count ? bytes[position] : 0
        }

        mutating func word() -> UInt16 { UInt16(byte()) | UInt16(byte()) << 8 }

        mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in byte() } }
    }

    /// One machine, driven as `Coordinator` drives it.
    struct Run {
        var machine: CoordinatorMachine
        var now: Duration = .zero
        /// The last TRAIN each client was sent (its round and task).
        var trains: [UInt32: (round: UInt32, task: TrainingTask)] = [:]
        /// Sends fail (the peer is gone) while this is set.
        var failingSends = false
        /// The key each peer authenticated with.
        var keys: [PeerID: String] = [:]
        var isOver = false

        /// Two worker connections.
        static let workerConnections = [PeerID(bytes: [0x57]), PeerID(bytes: [0x58])]
        static let peers: [PeerID] =
            (0..<6).map { PeerID(bytes: [0x50, UInt8($0)]) }
            + [PeerID(bytes: [0x57]).onChannel(Array("3".utf8))]
            + [PeerID(bytes: [0x58]).onChannel(Array("3".utf8))]
            + [PeerID(bytes: [0x57]).onChannel(Array("1".utf8))]
            + [PeerID(bytes: [0x58]).onChannel(Array("2".utf8))]
        /// Connections that proved they are workers (the secret, or a worker key).
        var admitted: Set<PeerID> = []
        /// Where each client's TRAIN of the current round went.
        var trainedAt: [UInt32: (round: Int, peer: PeerID)] = [:]
        /// A client whose rows were just sent to a worker: its TRAIN must follow there.
        var rowsSent: (client: UInt32, connection: PeerID)?

        /// The events so far, when tracing (for reading a failure).
        var trace: [String]?
        /// False for the counterfactual runs of the model check: they replay a step that did
        /// not happen, with keys as they are after it, so where they send proves nothing.
        var checksSends = true
        /// The size of the frame being answered (a link probe's reply may not exceed it).
        var answeredFrameBytes = 0
        /// The transport's queues: see `ProtocolFuzzing+Transport.swift`.
        var queues = Queues()

        mutating func step(_ reader: inout Reader) throws {
            let peer = Self.peers[Int(reader.byte()) % Self.peers.count]
            // Kind bytes 240-247 are worker HELLOs, 248-255 probes the transport answered; the
            // rest keep the meaning they had before workers were fuzzed.
            let raw = reader.byte()
            let kind = raw >= 248 ? 11 : raw >= 240 ? 10 : raw % 10
            trace?.append(
                "t=\(now) round \(machine.round) \(peer) event \(kind) pending \(machine.pendingClients.sorted())"
            )
            switch kind {
            case 0: try register(peer, &reader)
            case 1: try update(peer, &reader)
            case 2:
                let count = Int(reader.byte())
                try deliver(ReceivedFrame(peer: peer, bytes: reader.bytes(count)))
            case 3: try otherMessage(peer, &reader)
            case 4:
                now += .milliseconds(Int64(reader.byte()) * 60)
                try perform(machine.tick(at: now), answering: nil)
            case 5:
                queues.closed(peer.connection)
                try perform(machine.disconnected([peer], at: now), answering: nil)
            case 6: try perform(machine.lost([UInt32(reader.byte() % 10)], at: now), answering: nil)
            case 7:
                // Sends fail or not; the peer's connection reads what is queued for it or not.
                let switches = reader.byte()
                failingSends = switches & 1 == 1
                queues.setReading(peer.connection, switches & 2 == 0)
            case 8:
                try perform(
                    machine.abandoned([UInt32(reader.byte() % 10)], at: now), answering: nil)
            case 10: try workerHello(&reader)
            case 11: try answered(peer, &reader)
            default:
                // A REGISTER with an unknown tier, or a name at the length limit.
                let name = reader.byte() & 1 == 0 ? "nope" : ProtocolFuzzing.longTierName
                try deliver(
                    ReceivedFrame(
                        peer: peer,
                        bytes: WireCodec.encode(
                            .register(
                                Registration(
                                    tierName: name, capability: 1, sampleCount: 1,
                                    instanceNonce: 9, requestedClientID: nil)), round: 0,
                            sender: 0)))
            }
        }

        mutating func register(_ peer: PeerID, _ reader: inout Reader) throws {
            let nonce = UInt64(reader.byte() % 12)
            let requestByte = reader.byte()
            let requested: UInt32? =
                switch requestByte % 16 {
                case 15: nil
                case 14: 0xFFFF_FFFE
                default: UInt32(requestByte % 16)
                }
            let tier = reader.byte() & 1 == 0 ? "small" : "large"
            let samples = UInt32(reader.word()) * UInt32(reader.byte() & 3 == 3 ? 65536 : 1)
            let key: String? =
                switch reader.byte() % 4 {
                case 1: ProtocolFuzzing.boundKey
                case 2: ProtocolFuzzing.unboundKey
                case 3: ProtocolFuzzing.strangerKey
                default: nil
                }
            if let key { keys[peer] = key } else { keys[peer] = nil }
            let frame = WireCodec.encode(
                .register(
                    Registration(
                        tierName: tier, capability: 1, sampleCount: samples, instanceNonce: nonce,
                        requestedClientID: requested)), round: 0, sender: 0)
            try deliver(ReceivedFrame(peer: peer, bytes: frame, authenticatedKey: key))
        }

        /// A HELLO on a worker's (or any peer's) control channel, with the secret or not, with
        /// a worker's key, a device's or none.
        mutating func workerHello(_ reader: inout Reader) throws {
            let choice = reader.byte()
            let connection =
                choice & 4 == 0
                ? Self.workerConnections[Int(choice & 1)] : Self.peers[Int(choice) % 6]
            let credential =
                switch reader.byte() % 4 {
                case 0, 1: ProtocolFuzzing.workerSecret
                case 2: ""
                default: ProtocolFuzzing.workerSecret + "x"
                }
            let key: String? =
                switch reader.byte() % 4 {
                case 1: ProtocolFuzzing.workerKey
                case 2: ProtocolFuzzing.unboundKey
                case 3: ProtocolFuzzing.boundKey
                default: nil
                }
            let slotByte = reader.byte()
            let hello = WorkerHello(
                slot: slotByte & 8 == 0 ? nil : UInt32(slotByte % 3),
                slots: slotByte & 16 == 0 ? nil : UInt32(1 + slotByte % 2),
                instanceNonce: UInt64(reader.byte() % 4), host: "fuzz",
                credential: credential)
            if let key { keys[connection] = key } else { keys[connection] = nil }
            // Whether this peer proves it is a worker, as the coordinator is configured.
            if let enrolment = machine.enrolment {
                if enrolment.entry(forKey: key)?.isWorker == true { admitted.insert(connection) }
            } else if credential == ProtocolFuzzing.workerSecret {
                admitted.insert(connection)
            }
            try deliver(
                ReceivedFrame(
                    peer: connection.onChannel([]),
                    bytes: WireCodec.encode(.workerHello(hello), round: 0, sender: 0),
                    authenticatedKey: key))
        }

        /// An UPDATE built from the last TRAIN of the client registered at `peer` (or of any
        /// client), as is or damaged, from `peer` or from where the TRAIN went.
        mutating func update(_ peer: PeerID, _ reader: inout Reader) throws {
            let namedByte = reader.byte()
            let named = UInt32(namedByte % 10)
            let client = machine.clients.id(of: peer) ?? named
            guard let train = trains[client] ?? trains.values.first else {
                return try deliver(ReceivedFrame(peer: peer, bytes: reader.bytes(8)))
            }
            var factors = train.task.factors
            var shared = train.task.shared
            var round = train.round
            var sender = client
            var sampleCount = UInt32(reader.word())
            switch reader.byte() % 8 {
            case 1 where !factors.isEmpty:
                var up = factors[0].up.scalars
                if !up.isEmpty { up[0] = .nan }
                factors[0] = FactorPair(
                    up: Tensor(shape: factors[0].up.shape, scalars: up), down: factors[0].down)
            case 2 where !factors.isEmpty && factors[0].up.shape.count == 2:
                let shape = factors[0].up.shape
                factors[0] = FactorPair(
                    up: Tensor(
                        shape: [shape[0], shape[1] + 1],
                        scalars: Array(repeating: 0, count: shape[0] * (shape[1] + 1))),
                    down: factors[0].down)
            case 3: sender = named
            case 4: round &+= 1
            case 5:
                factors = factors.map {
                    FactorPair(
                        up: Tensor(shape: $0.up.shape, scalars: $0.up.scalars.map { $0 * 1e7 }),
                        down: $0.down)
                }
            case 6: shared = []
            case 7: sampleCount = .max
            default:
                // A small honest change, so that aggregation has something to move; one in
                // four (by the sample count, which the coordinator does not read) is spoilt:
                // a bad scalar, or a change 50 times the model's (the norm bound).
                let scale: Float = sampleCount % 16 == 4 ? 51 : 0.9
                factors = factors.map {
                    FactorPair(
                        up: Tensor(shape: $0.up.shape, scalars: $0.up.scalars.map { $0 * scale }),
                        down: $0.down)
                }
            }
            let (trainingLoss, computeSeconds): (Float, Float) =
                switch sampleCount % 16 {
                case 1: (.nan, 0.01)
                case 2: (1, .infinity)
                case 3: (-1, 0.01)
                default: (1, 0.01)
                }
            let update = TrainingUpdate(
                factors: factors, shared: shared, sampleCount: sampleCount,
                trainingLoss: trainingLoss, computeSeconds: computeSeconds)
            // Sent from `peer`, or (a named byte of 160 and more) from where the named client's
            // TRAIN went (a worker).
            var peer = peer
            if namedByte >= 160, let target = trainedAt[named]?.peer { peer = target }
            try deliver(
                ReceivedFrame(
                    peer: peer,
                    bytes: WireCodec.encode(.update(update), round: round, sender: sender),
                    authenticatedKey: keys[peer]))
        }

        mutating func otherMessage(_ peer: PeerID, _ reader: inout Reader) throws {
            let round = UInt32(reader.byte() % 5)
            let message: Message =
                switch reader.byte() % 9 {
                case 0: .heartbeat
                case 1: .error(ErrorReport(code: .unexpected, message: "peer error"))
                case 2: .evaluation(EvaluationReport(results: []))
                case 3: .shutdown(Shutdown(reason: "bye"))
                case 4:
                    .registered(
                        RegistrationAccepted(clientID: 1, runID: 1, modelDescription: "{}"))
                case 5:
                    .workerHello(WorkerHello(slot: 0, slots: 1, instanceNonce: 1, host: "h"))
                case 6, 7:
                    // A link probe that asks for a reply of any size, padded a little or a lot.
                    .linkProbe(
                        LinkProbe(
                            replyFrameBytes: UInt32(reader.byte()) << UInt32(reader.byte() % 16),
                            paddingBytes: UInt32(reader.byte()) << UInt32(reader.byte() % 8)))
                default: .evaluate(EvaluationTask(budgets: [], factors: [], shared: []))
                }
            let sender = UInt32(reader.byte() % 10)
            try deliver(
                ReceivedFrame(
                    peer: peer, bytes: WireCodec.encode(message, round: round, sender: sender),
                    authenticatedKey: keys[peer]))
        }
    }
}
