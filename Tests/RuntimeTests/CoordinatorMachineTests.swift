import Federation
import Fleet
import LowRank
import RunRecords
import Tensors
import Testing
import Transport

@testable import Runtime

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

    @Test(
        "Whose data reached the model: a tier that always misses the deadline contributes nothing, and resume keeps the record"
    )
    func dataReached() throws {
        // The deadline halfway between the large tier's slowest and the small tier's fastest
        // round time: every small client is dropped before anything is sent.
        var probe = try MachineHarness([("clientsPerRound", "8")])
        probe.perform(probe.machine.start(at: .zero))
        for client in 0..<8 { probe.register(client, at: .zero) }
        let times = RoundLogic(scenario: probe.machine.scenario).invitations(
            selected: Array(0..<8), clients: probe.machine.clients, global: probe.machine.global,
            round: 1
        ).invited
        let small = times.filter { $0.client < 4 }.map(\.time.totalSeconds).min()!
        let large = times.filter { $0.client >= 4 }.map(\.time.totalSeconds).max()!
        #expect(large < small)
        let overrides = [
            ("rounds", "3"), ("clientsPerRound", "8"),
            ("deadlineSeconds", "\((small + large) / 2)"),
        ]
        var run = try MachineHarness(overrides)
        let checkpoint = run.runThreeRoundsOfEight()
        #expect(run.finished)
        #expect(run.commits.allSatisfy { $0.droppedDeadline.count == 4 })
        let summary = run.machine.summary(statistics: TransportStatistics(), wallSeconds: 1)
        let byTier = Dictionary(uniqueKeysWithValues: summary.tiers.map { ($0.tier, $0) })
        #expect(byTier["small"]?.contributingClients == 0)
        #expect(byTier["small"]?.samples == 200 && byTier["small"]?.contributedSamples == 0)
        #expect(byTier["large"]?.contributingClients == 4)
        #expect(byTier["large"]?.samples == 200 && byTier["large"]?.contributedSamples == 200)
        // The checkpoint carries the contributors: a resumed run reports the same.
        let saved = try #require(checkpoint)
        #expect(saved.header.standing.contributors == [4, 5, 6, 7])
        let decoded = try CoordinatorCheckpoint(bytes: saved.encoded(), path: "checkpoint.bin")
        #expect(decoded.header.standing.contributors == [4, 5, 6, 7])
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

    @Test(
        "REGISTER for 0xFFFFFFFE is refused as id_out_of_range; the two without an ID that follow get the lowest free IDs"
    )
    func registrationIDOverflow() throws {
        var run = try MachineHarness([])
        run.perform(run.machine.start(at: .zero))
        let peer = { (nonce: UInt64) in PeerID(bytes: [0x71, UInt8(nonce)]) }
        #expect(
            run.registration(from: peer(1), nonce: 1, requested: 0xFFFF_FFFE, at: .seconds(1))
                == .refused(.idOutOfRange))
        #expect(
            run.registration(from: peer(2), nonce: 2, requested: 8, at: .seconds(1))
                == .refused(.idOutOfRange))
        #expect(run.registration(from: peer(3), nonce: 3, requested: 7) == .registered(7))
        #expect(run.registration(from: peer(4), nonce: 4, requested: nil) == .registered(0))
        #expect(run.registration(from: peer(5), nonce: 5, requested: nil) == .registered(1))
        #expect(run.machine.clients.count == 3 && run.machine.clients[0xFFFF_FFFE] == nil)
        // The refusal has its own reason and a reply that says why.
        #expect(run.machine.rejectedTotalsSum == 2)
        let summary = run.machine.summary(statistics: TransportStatistics(), wallSeconds: 0)
        #expect(summary.rejectedMessages["id_out_of_range"] == 2)
    }

    @Test("Open deployments: IDs above the fleet first, up to --max-clients; then the fleet's")
    func openAssignment() throws {
        var run = try MachineHarness([], maximumClients: 11)
        run.perform(run.machine.start(at: .zero))
        let peer = { (nonce: UInt64) in PeerID(bytes: [0x72, UInt8(nonce)]) }
        #expect(run.registration(from: peer(1), nonce: 1, requested: 9) == .registered(9))
        #expect(run.registration(from: peer(2), nonce: 2, requested: nil) == .registered(8))
        #expect(run.registration(from: peer(3), nonce: 3, requested: nil) == .registered(10))
        #expect(run.registration(from: peer(4), nonce: 4, requested: 0) == .registered(0))
        #expect(run.registration(from: peer(5), nonce: 5, requested: nil) == .registered(1))
        #expect(
            run.registration(from: peer(6), nonce: 6, requested: 11) == .refused(.idOutOfRange))
        // The same process again keeps its ID.
        #expect(run.registration(from: peer(2), nonce: 2, requested: nil) == .registered(8))
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

    @Test("A closed connection drops its client from the round at once, until it registers again")
    func closedConnection() throws {
        var run = try MachineHarness([("rounds", "2")])
        run.perform(run.machine.start(at: .zero))
        for client in 0..<8 { run.register(client, at: .zero) }
        let invited = run.trains.filter { $0.round == 1 }.map(\.client)
        let gone = invited[0]
        run.perform(
            run.machine.disconnected([MachineHarness.peer(Int(gone))], at: .milliseconds(300)))
        for client in invited.dropFirst() { run.answer(client, at: .milliseconds(400)) }
        let round1 = try #require(run.commits.first, "the round did not wait for its deadline")
        #expect(round1.droppedTimeout == [Int(gone)])
        run.perform(run.machine.committed(at: .seconds(1)))
        #expect(!run.trains.filter { $0.round == 2 }.map(\.client).contains(gone))
    }

    @Test("With every client gone a round waits for them to come back instead of passing empty")
    func waitsForClients() throws {
        var run = try MachineHarness([("rounds", "2")])
        run.perform(run.machine.start(at: .zero))
        for client in 0..<8 { run.register(client, at: .zero) }
        let invited = run.trains.filter { $0.round == 1 }.map(\.client)
        run.perform(
            run.machine.disconnected((0..<8).map { MachineHarness.peer($0) }, at: .seconds(1)))
        #expect(run.commits.count == 1 && run.commits[0].droppedTimeout.count == invited.count)
        run.perform(run.machine.committed(at: .seconds(1)))
        run.perform(run.machine.tick(at: .seconds(3)))
        #expect(run.trains.filter { $0.round == 2 }.isEmpty, "round 2 started with nobody")
        #expect(run.commits.count == 1)
        run.register(6, at: .seconds(4))  // a device is back
        #expect(run.trains.filter { $0.round == 2 }.map(\.client) == [6])
    }

    @Test(
        "Resumed after a timeout and a lost client, the machine selects and aggregates bit for bit as the uninterrupted one"
    )
    func resumeKeepsSelectionState() throws {
        let overrides = [("rounds", "6"), ("clientsPerRound", "5")]
        // Plays one machine from `first` to the end: every invited client answers, except
        // the silent one in round 1 (a timeout: three rounds of cooldown) and the lost one in
        // round 2 (gone for good). Returns the selections and the checkpoint after round 2.
        func play(
            _ run: inout MachineHarness, from first: Int, time: inout Duration
        ) -> (selections: [[UInt32]], checkpoint: CoordinatorCheckpoint?) {
            var selections: [[UInt32]] = []
            var checkpoint: CoordinatorCheckpoint?
            for round in first...6 {
                let invited = run.trains.filter { $0.round == round }.map(\.client)
                selections.append(invited)
                var answering = invited
                if round == 1 { answering.removeLast() }
                if round == 2 {
                    run.perform(run.machine.lost([answering.removeFirst()], at: time))
                }
                for client in answering { run.answer(client, at: time) }
                if round == 1 { run.perform(run.machine.tick(at: time + .seconds(6))) }
                time += .seconds(10)
                if round == 2 {
                    checkpoint = run.machine.checkpoint(
                        statistics: TransportStatistics(), wallSeconds: 1)
                }
                run.perform(run.machine.committed(at: time))
            }
            return (selections, checkpoint)
        }
        var uninterrupted = try MachineHarness(overrides)
        uninterrupted.perform(uninterrupted.machine.start(at: .zero))
        for client in 0..<8 { uninterrupted.register(client, at: .zero) }
        var time = Duration.seconds(1)
        let (all, saved) = play(&uninterrupted, from: 1, time: &time)
        let checkpoint = try #require(saved)
        #expect(checkpoint.header.standing.unresponsive.count == 1)
        #expect(checkpoint.header.standing.cooldownUntil.values.first == 5)
        // The resumed coordinator: every client registers again (new processes), which must
        // neither end the silent client's cooldown nor bring the lost one back early.
        var resumed = try MachineHarness(overrides, resumingFrom: checkpoint)
        resumed.perform(resumed.machine.start(at: .zero))
        for client in 0..<8 { resumed.register(client, at: .zero) }
        time = .seconds(1)
        let (rest, _) = play(&resumed, from: 3, time: &time)
        #expect(rest == Array(all.dropFirst(2)))
        #expect(resumed.finished && uninterrupted.finished)
        #expect(resumed.machine.global.parameters == uninterrupted.machine.global.parameters)
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

@Suite("Link probes: a device measures its link to the coordinator")
struct LinkProbeTests {
    /// Sends a probe frame from `peer` and returns the frames sent back.
    func probe(
        _ harness: inout MachineHarness, _ probe: LinkProbe, from peer: PeerID, key: String? = nil
    ) -> (frame: [UInt8], replies: [(frame: [UInt8], target: PeerID, ticket: SendTicket)]) {
        let frame = WireCodec.encode(.linkProbe(probe), round: 0, sender: 0)
        let actions = harness.machine.received(
            ReceivedFrame(peer: peer, bytes: frame, authenticatedKey: key), at: .seconds(1))
        var replies: [(frame: [UInt8], target: PeerID, ticket: SendTicket)] = []
        for action in actions {
            if case .send(let bytes, let target, let ticket) = action {
                replies.append((bytes, target, ticket))
                _ = harness.machine.delivered(ticket)
            }
        }
        return (frame, replies)
    }

    @Test(
        "A probe is answered at the size it asks for, never above its own size, and moves no model")
    func answered() throws {
        var harness = try MachineHarness([])
        let initial = harness.machine.global.parameters
        let peer = PeerID(bytes: [0x51, 1])
        // 100 000 bytes up, 60 000 asked back.
        let (frame, replies) = probe(
            &harness, LinkProbe(replyFrameBytes: 60_000, paddingBytes: 100_000 - 40),
            from: peer)
        #expect(frame.count == 100_000)
        try #require(replies.count == 1)
        #expect(replies[0].target == peer)
        #expect(replies[0].frame.count == 60_000)
        #expect(replies[0].ticket.purpose == .linkProbeReply)
        let envelope = try WireCodec.decode(replies[0].frame, maximumSize: 1 << 22)
        #expect(envelope.message == .linkProbeReply(LinkProbeReply(paddingBytes: 60_000 - 36)))
        // The smallest reply is its fixed part.
        let (_, small) = probe(
            &harness, LinkProbe(replyFrameBytes: 0, paddingBytes: 0), from: peer)
        #expect(small.first?.frame.count == WireLimits.headerSize + 4)
        #expect(harness.machine.global.parameters == initial)
        #expect(harness.machine.clients.count == 0)

        // Asking for more than was sent is amplification: refused with a small error reply.
        let (asked, refused) = probe(
            &harness, LinkProbe(replyFrameBytes: 1 << 20, paddingBytes: 0), from: peer)
        try #require(refused.count == 1)
        #expect(refused[0].ticket.purpose == .errorReply)
        #expect(refused[0].frame.count < 400)
        let error = try WireCodec.decode(refused[0].frame, maximumSize: 1 << 22)
        guard case .error(let report) = error.message else {
            Issue.record("expected an error reply, got \(error.message)")
            return
        }
        #expect(
            report.message.contains("at most \(asked.count) bytes, not 1048576"),
            "\(report.message)")
        #expect(harness.machine.rejectedCount == 1)
    }

    @Test("With an enrolment only enrolled keys are answered")
    func enrolled() throws {
        let text = "\(EnrolmentTests.keyA) 3 small\n"
        var harness = try MachineHarness([], enrolment: try Enrolment.parse(text, path: "allow"))
        let request = LinkProbe(replyFrameBytes: 100, paddingBytes: 200)
        let (_, stranger) = probe(
            &harness, request, from: PeerID(bytes: [0x51, 2]), key: EnrolmentTests.keyB)
        #expect(stranger.map(\.ticket.purpose) == [.errorReply])
        let (_, enrolled) = probe(
            &harness, request, from: PeerID(bytes: [0x51, 3]), key: EnrolmentTests.keyA)
        #expect(enrolled.map(\.ticket.purpose) == [.linkProbeReply])
        #expect(enrolled.first?.frame.count == 100)
    }
}
