import Federation
import Fleet
import LowRank
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

    init(_ overrides: [(keyPath: String, value: String)]) throws {
        let scenario = try Scenario.parse(yaml: syntheticScenarioYAML).overriding(overrides)
        machine = try CoordinatorMachine(
            scenario: scenario, evaluationSet: scenario.evaluationSamples(),
            expectedClients: nil, registrationTimeout: .seconds(10), roundTimeout: .seconds(5),
            maximumMessageSize: 1 << 22, resumingFrom: nil)
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

@Suite("The coordinator's state machine, on a test clock")
struct CoordinatorMachineTests {
    @Test("A silent client is dropped when the test clock passes the round's deadline")
    func deadline() throws {
        var run = try MachineHarness([("rounds", "2")])
        run.perform(run.machine.start(at: .zero))
        for client in 0..<8 { run.register(client, at: .milliseconds(client)) }
        // Registration complete: round 1 sent TRAIN to its four clients.
        let invited = run.trains.filter { $0.round == 1 }.map(\.client)
        #expect(invited.count == 4)
        #expect(run.machine.isCollecting)
        let silent = invited.last!
        for client in invited.dropLast() { run.answer(client, at: .seconds(1)) }
        run.perform(run.machine.tick(at: .seconds(4)))
        #expect(run.commits.isEmpty, "the deadline (5 s after TRAIN) has not passed")
        #expect(run.machine.patience == .milliseconds(200))
        run.perform(run.machine.tick(at: .milliseconds(5_008)))
        let round1 = try #require(run.commits.first)
        #expect(round1.round == 1)
        #expect(round1.droppedTimeout == [Int(silent)])
        #expect(round1.participants == invited.dropLast().map(Int.init).sorted())
        // The silent client sits out the next rounds; round 2 starts once the driver commits.
        run.perform(run.machine.committed(at: .milliseconds(5_010)))
        let round2 = run.trains.filter { $0.round == 2 }.map(\.client)
        #expect(round2.count == 4 && !round2.contains(silent))
        for client in round2 { run.answer(client, at: .seconds(6)) }
        #expect(run.commits.count == 2 && run.commits[1].droppedTimeout.isEmpty)
        run.perform(run.machine.committed(at: .seconds(6)))
        #expect(run.finished && run.failures.isEmpty)
    }

    @Test("A client that missed a deadline sits out exactly the next three rounds")
    func cooldown() throws {
        var run = try MachineHarness([("rounds", "6"), ("clientsPerRound", "8")])
        run.perform(run.machine.start(at: .zero))
        for client in 0..<8 { run.register(client, at: .milliseconds(client)) }
        var time = Duration.seconds(1)
        let silent: UInt32 = 5
        for round in 1...6 {
            let invited = run.trains.filter { $0.round == round }.map(\.client)
            if round == 1 || round == 5 || round == 6 {
                #expect(invited.contains(silent), "round \(round): \(invited)")
            } else {
                #expect(!invited.contains(silent), "round \(round) should exclude client 5")
            }
            for client in invited where !(round == 1 && client == silent) {
                run.answer(client, at: time)
            }
            if round == 1 { run.perform(run.machine.tick(at: time + .seconds(6))) }
            time += .seconds(10)
            run.perform(run.machine.committed(at: time))
        }
        #expect(run.commits.count == 6 && run.commits[0].droppedTimeout == [Int(silent)])
    }

    @Test("REGISTER for 0xFFFFFFFE, then two without an ID: refused with a reply, no overflow trap")
    func registrationIDOverflow() throws {
        var run = try MachineHarness([])
        run.perform(run.machine.start(at: .zero))
        func register(nonce: UInt64, requested: UInt32?) {
            let frame = WireCodec.encode(
                .register(
                    Registration(
                        tierName: "small", capability: 1, sampleCount: 5, instanceNonce: nonce,
                        requestedClientID: requested)), round: 0, sender: 0)
            run.perform(
                run.machine.received(
                    ReceivedFrame(peer: PeerID(bytes: [0x71, UInt8(nonce)]), bytes: frame),
                    at: .seconds(1)))
        }
        register(nonce: 1, requested: 0xFFFF_FFFE)
        register(nonce: 2, requested: nil)
        register(nonce: 3, requested: nil)
        #expect(run.machine.clients.count == 1)
        #expect(run.machine.clients[0xFFFF_FFFE] != nil)
        let refusals = run.actions.filter {
            if case .log(let line) = $0 { line.contains("no_client_id") } else { false }
        }
        #expect(refusals.count == 2)
    }

    @Test("Too few registrations by the deadline fail the run")
    func registrationDeadline() throws {
        var run = try MachineHarness([])
        run.perform(run.machine.start(at: .zero))
        for client in 0..<3 { run.register(client, at: .seconds(1)) }
        run.perform(run.machine.tick(at: .seconds(9)))
        #expect(run.failures.isEmpty)
        run.perform(run.machine.tick(at: .seconds(11)))
        guard case .notEnoughClients(let registered, let needed, _) = run.failures.first else {
            Issue.record("expected notEnoughClients, got \(run.failures)")
            return
        }
        #expect(registered == 3 && needed == 8)
    }

    @Test("A lost client leaves the round at once; an update for a past round is late")
    func lostAndLate() throws {
        var run = try MachineHarness([("rounds", "2")])
        run.perform(run.machine.start(at: .zero))
        for client in 0..<8 { run.register(client, at: .zero) }
        let invited = run.trains.filter { $0.round == 1 }.map(\.client)
        let gone = invited[0]
        run.perform(run.machine.lost([gone], at: .seconds(1)))
        for client in invited.dropFirst() { run.answer(client, at: .seconds(1)) }
        let round1 = try #require(run.commits.first, "no wait for the lost client")
        #expect(round1.droppedTimeout == [Int(gone)])
        run.perform(run.machine.committed(at: .seconds(1)))
        // Round 2 is running: an update for round 1 is late, refused and counted.
        run.answer(invited[1], round: 1, at: .seconds(2))
        #expect(run.machine.isCollecting)
        let round2 = run.trains.filter { $0.round == 2 }.map(\.client)
        #expect(!round2.contains(gone), "a lost client is not selected until it registers again")
        for client in round2 { run.answer(client, at: .seconds(3)) }
        #expect(run.commits.count == 2)
        #expect(run.commits[1].lateUpdates == 1 && run.commits[1].rejected["late"] == 1)
    }

    @Test("Rounds nobody can join end at once, the model unchanged, and the run finishes")
    func nobodyAvailable() throws {
        var run = try MachineHarness([
            ("rounds", "3"), ("tiers[0].availability", "0"), ("tiers[1].availability", "0"),
        ])
        let initial = run.machine.global.parameters
        run.perform(run.machine.start(at: .zero))
        for client in 0..<8 { run.register(client, at: .zero) }
        for round in 1...3 {
            #expect(run.commits.count == round, "round \(round) waits for nothing")
            #expect(run.commits.last?.selected == [])
            run.perform(run.machine.committed(at: .seconds(round)))
        }
        #expect(run.trains.isEmpty)
        #expect(run.finished && run.failures.isEmpty)
        #expect(run.machine.global.parameters == initial)
    }
}
