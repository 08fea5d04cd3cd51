import Federation
import Fleet
import LowRank
import RunRecords
import Tensors
import Testing
import Transport

@testable import Runtime

/// Drives a `CoordinatorMachine` with made-up frames and a test clock: no sockets, no threads.
struct MachineHarness {
    var machine: CoordinatorMachine
    /// Every TRAIN the machine sent, by client, with its round.
    var trains: [(client: UInt32, round: UInt32, task: TrainingTask)] = []
    /// The actions other than sends, in order.
    var actions: [CoordinatorAction] = []

    init(
        _ overrides: [(keyPath: String, value: String)],
        enrolment: Enrolment? = nil, maximumClients: Int? = nil,
        resumingFrom checkpoint: CoordinatorCheckpoint? = nil
    ) throws {
        let scenario = try Scenario.parse(yaml: syntheticScenarioYAML).overriding(overrides)
        machine = try CoordinatorMachine(
            scenario: scenario, evaluationSet: scenario.evaluationSamples(),
            expectedClients: nil, registrationTimeout: .seconds(10), roundTimeout: .seconds(5),
            maximumMessageSize: 1 << 22, enrolment: enrolment, maximumClients: maximumClients,
            resumingFrom: checkpoint)
    }

    /// Sends a REGISTER from `peer` (authenticated by `key`, if given) and returns the
    /// machine's answer: the ID it registered, or the rejection reason it counted.
    mutating func registration(
        from peer: PeerID, nonce: UInt64, requested: UInt32?, tier: String = "small",
        samples: UInt32 = 50, key: String? = nil, at time: Duration = .zero
    ) -> RegistrationOutcome {
        let frame = WireCodec.encode(
            .register(
                Registration(
                    tierName: tier, capability: 1, sampleCount: samples, instanceNonce: nonce,
                    requestedClientID: requested)),
            round: 0, sender: 0)
        let before = actions.count
        perform(
            machine.received(
                ReceivedFrame(peer: peer, bytes: frame, authenticatedKey: key), at: time))
        for action in actions[before...] {
            if case .rejected(let rejection) = action, rejection.message == .register {
                return .refused(rejection.reason)
            }
        }
        guard let id = machine.clients.id(ofNonce: nonce) else {
            return .notRecorded
        }
        return .registered(id)
    }

    static func peer(_ client: Int) -> PeerID { PeerID(bytes: [0x70, UInt8(client)]) }

    /// Carries out `actions` as a transport that delivers every frame would.
    mutating func perform(_ batch: [CoordinatorAction]) {
        for action in batch {
            if case .send(let frame, _, let ticket) = action {
                if case .train(let client) = ticket.purpose,
                    let envelope = try? WireCodec.decode(frame, maximumSize: 1 << 22),
                    case .train(let task) = envelope.message
                {
                    trains.append((client, envelope.round, task))
                }
                perform(machine.delivered(ticket))
            } else {
                actions.append(action)
            }
        }
    }

    mutating func register(_ client: Int, at time: Duration) {
        let frame = WireCodec.encode(
            .register(
                Registration(
                    tierName: client < 4 ? "small" : "large", capability: 1, sampleCount: 50,
                    instanceNonce: UInt64(client + 1), requestedClientID: UInt32(client))),
            round: 0, sender: 0)
        perform(
            machine.received(ReceivedFrame(peer: Self.peer(client), bytes: frame), at: time))
    }

    /// Client `client` answers its last TRAIN (of `round`, if given) with the factors it
    /// was sent.
    mutating func answer(_ client: UInt32, round: UInt32? = nil, at time: Duration) {
        let train = trains.last { $0.client == client && (round == nil || $0.round == round) }!
        let update = TrainingUpdate(
            factors: train.task.factors, shared: train.task.shared, sampleCount: 50,
            trainingLoss: 1, computeSeconds: 0.01)
        let frame = WireCodec.encode(.update(update), round: train.round, sender: client)
        perform(
            machine.received(ReceivedFrame(peer: Self.peer(Int(client)), bytes: frame), at: time))
    }

    var commits: [RoundMetrics] {
        actions.compactMap { if case .commit(let metrics) = $0 { metrics } else { nil } }
    }

    var failures: [CoordinatorError] {
        actions.compactMap { if case .fail(let error) = $0 { error } else { nil } }
    }

    var finished: Bool { actions.contains { if case .finish = $0 { true } else { false } } }
}

/// What became of a REGISTER: the ID it got, or the reason it was refused for.
enum RegistrationOutcome: Equatable {
    case registered(UInt32)
    case refused(RejectionReason)
    /// Neither refused nor in the client table.
    case notRecorded
}

extension MachineHarness {
    /// Three rounds of clients 0–7, returning the checkpoint taken after round 2.
    ///
    /// Starts the run and registers the clients; in each round every invited client answers
    /// one second in, and the round commits ten seconds later.
    mutating func runThreeRoundsOfEight() -> CoordinatorCheckpoint? {
        perform(machine.start(at: .zero))
        for client in 0..<8 { register(client, at: .zero) }
        var time = Duration.seconds(1)
        var checkpoint: CoordinatorCheckpoint?
        for round in 1...3 {
            for client in trains.filter({ $0.round == round }).map(\.client) {
                answer(client, at: time)
            }
            time += .seconds(10)
            if round == 2 {
                checkpoint = machine.checkpoint(statistics: TransportStatistics(), wallSeconds: 1)
            }
            perform(machine.committed(at: time))
        }
        return checkpoint
    }
}
