import Federation
import Testing
import Transport

@testable import Runtime

/// Plays a synthetic run of 8 clients, all invited every round they are not excluded, in
/// which `silent` never answers a TRAIN; returns who was invited each round.
///
/// Before each round's updates, `chatter(round, &run)` may send frames (a heartbeat, a
/// REGISTER …); `answers(round)` says whether the silent client answers that round after all.
private func play(
    _ run: inout MachineHarness, rounds: ClosedRange<Int>, silent: UInt32,
    time: inout Duration,
    answers: (Int) -> Bool = { _ in false },
    chatter: (Int, inout MachineHarness, Duration) -> Void = { _, _, _ in },
    checkpointAfter: Int? = nil
) -> (invited: [[UInt32]], checkpoint: CoordinatorCheckpoint?) {
    var invitedByRound: [[UInt32]] = []
    var checkpoint: CoordinatorCheckpoint?
    for round in rounds {
        let invited = run.trains.filter { $0.round == round }.map(\.client)
        invitedByRound.append(invited)
        chatter(round, &run, time)
        for client in invited where client != silent || answers(round) {
            run.answer(client, at: time)
        }
        if invited.contains(silent) && !answers(round) {
            run.perform(run.machine.tick(at: time + .seconds(6)))
        }
        time += .seconds(10)
        if round == checkpointAfter {
            checkpoint = run.machine.checkpoint(statistics: TransportStatistics(), wallSeconds: 1)
        }
        run.perform(run.machine.committed(at: time))
    }
    return (invitedByRound, checkpoint)
}

/// The rounds of `invited` (numbered from `first`) that include `client`.
private func rounds(of client: UInt32, in invited: [[UInt32]], from first: Int = 1) -> [Int] {
    invited.indices.filter { invited[$0].contains(client) }.map { $0 + first }
}

/// Sends `message` from client `client`'s peer.
private func send(
    _ message: Message, from client: UInt32, round: Int, _ run: inout MachineHarness,
    at time: Duration
) {
    let frame = WireCodec.encode(message, round: UInt32(round), sender: client)
    run.perform(
        run.machine.received(
            ReceivedFrame(peer: MachineHarness.peer(Int(client)), bytes: frame), at: time))
}

@Suite("Cooldowns: only useful work ends them, and repeated time-outs lengthen them")
struct CooldownTests {
    static let overrides = [("clientsPerRound", "8")]

    @Test("The cooldown after 1, 2, 3 … time-outs in a row: 3, 6, 12, 24 rounds, then 24")
    func lengths() {
        #expect((1...7).map(Cooldowns.rounds(afterTimeouts:)) == [3, 6, 12, 24, 24, 24, 24])
        #expect(Cooldowns.rounds(afterTimeouts: Int.max) == 24)
    }

    @Test(
        "Heartbeats, errors, evaluations and link probes from a cooling client end nothing; each time-out in a row doubles the wait"
    )
    func chatterDoesNotEndCooldown() throws {
        var run = try MachineHarness(Self.overrides + [("rounds", "20")])
        run.perform(run.machine.start(at: .zero))
        for client in 0..<8 { run.register(client, at: .milliseconds(client)) }
        var time = Duration.seconds(1)
        let silent: UInt32 = 5
        let (invited, _) = play(
            &run, rounds: 1...20, silent: silent, time: &time,
            chatter: { round, run, time in
                send(.heartbeat, from: silent, round: round, &run, at: time)
                send(
                    .error(ErrorReport(code: .unexpected, message: "busy")), from: silent,
                    round: round, &run, at: time)
                send(
                    .evaluation(EvaluationReport(results: [])), from: silent, round: round, &run,
                    at: time)
                send(
                    .linkProbe(LinkProbe(replyFrameBytes: 64, paddingBytes: 64)), from: silent,
                    round: round, &run, at: time)
            })
        // Out for 3 rounds after round 1, 6 after round 5, 12 after round 12.
        #expect(rounds(of: silent, in: invited) == [1, 5, 12])
        #expect(run.commits.count == 20 && run.failures.isEmpty)
        #expect(run.commits.flatMap(\.droppedTimeout) == [5, 5, 5])
    }

    @Test("An accepted update resets the streak: the next time-out costs 3 rounds again")
    func updateResetsStreak() throws {
        var run = try MachineHarness(Self.overrides + [("rounds", "12")])
        run.perform(run.machine.start(at: .zero))
        for client in 0..<8 { run.register(client, at: .milliseconds(client)) }
        var time = Duration.seconds(1)
        let silent: UInt32 = 2
        let (invited, _) = play(
            &run, rounds: 1...12, silent: silent, time: &time, answers: { $0 == 5 })
        // Silent in 1 (out 2–4), answers in 5, silent in 6 (out 7–9: 3 rounds, not 6), in 10.
        #expect(rounds(of: silent, in: invited) == [1, 5, 6, 10])
    }

    @Test(
        "A REGISTER from a new process ends a cooldown, the same process's REGISTER does not; the streak stays"
    )
    func registrationEndsCooldown() throws {
        var run = try MachineHarness(Self.overrides + [("rounds", "12")])
        run.perform(run.machine.start(at: .zero))
        for client in 0..<8 { run.register(client, at: .milliseconds(client)) }
        var time = Duration.seconds(1)
        let silent: UInt32 = 6
        let peer = MachineHarness.peer(Int(silent))
        let (invited, _) = play(
            &run, rounds: 1...12, silent: silent, time: &time,
            chatter: { round, run, time in
                // The same process (nonce 7, as `register` sends) in round 2, a new one in 3.
                let nonce: UInt64? = round == 2 ? 7 : round == 3 ? 70 : nil
                if let nonce {
                    #expect(
                        run.registration(
                            from: peer, nonce: nonce, requested: silent, tier: "large", at: time)
                            == .registered(silent))
                }
            })
        // Out after round 1; the new process is back in round 4, times out again: 6 rounds
        // (the streak is 2), back in 11.
        #expect(rounds(of: silent, in: invited) == [1, 4, 11])
    }

    @Test("A resumed run keeps the streaks: the same selections and model as the uninterrupted one")
    func resumeKeepsStreaks() throws {
        let overrides = Self.overrides + [("rounds", "14")]
        let silent: UInt32 = 3
        var uninterrupted = try MachineHarness(overrides)
        uninterrupted.perform(uninterrupted.machine.start(at: .zero))
        for client in 0..<8 { uninterrupted.register(client, at: .zero) }
        var time = Duration.seconds(1)
        let (all, saved) = play(
            &uninterrupted, rounds: 1...14, silent: silent, time: &time, checkpointAfter: 5)
        #expect(rounds(of: silent, in: all) == [1, 5, 12])
        let checkpoint = try CoordinatorCheckpoint(
            bytes: try #require(saved).encoded(), path: "checkpoint.bin")
        #expect(checkpoint.header.standing.timeoutStreaks == [silent: 2])
        var resumed = try MachineHarness(overrides, resumingFrom: checkpoint)
        resumed.perform(resumed.machine.start(at: .zero))
        for client in 0..<8 { resumed.register(client, at: .zero) }
        time = .seconds(1)
        let (rest, _) = play(&resumed, rounds: 6...14, silent: silent, time: &time)
        #expect(rest == Array(all.dropFirst(5)))
        #expect(resumed.finished && uninterrupted.finished)
        #expect(resumed.machine.global.parameters == uninterrupted.machine.global.parameters)
    }

    @Test("A run with no time-out writes no streaks: its checkpoint's bytes are as before")
    func noStreaksNoKey() throws {
        var run = try MachineHarness(Self.overrides + [("rounds", "2")])
        run.perform(run.machine.start(at: .zero))
        for client in 0..<8 { run.register(client, at: .zero) }
        var time = Duration.seconds(1)
        let (_, saved) = play(
            &run, rounds: 1...1, silent: 99, time: &time, checkpointAfter: 1)
        let bytes = try #require(saved).encoded()
        #expect(!String(decoding: bytes, as: UTF8.self).contains("timeoutStreaks"))
    }
}
