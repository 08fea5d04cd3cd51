import Foundation
import Testing
import Transport

@testable import Runtime

/// The stateful protocol fuzzer's corpus (tools/fuzz protocol), replayed: every input keeps
/// every invariant (no trap, rejected input never changes the model, registrations within the
/// bound, no send to an unenrolled peer).
@Suite("Protocol fuzzing: corpus replay and scripted attacks")
struct ProtocolFuzzingTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("FuzzCorpus/protocol")

    @Test("Every corpus input keeps every invariant; the corpus reaches aggregation and rejections")
    func replay() throws {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: Self.corpus.path)) ?? []
        #expect(files.count >= 50, "the protocol corpus is missing (run tools/fuzz protocol)")
        var rounds = 0
        var rejected = 0
        for file in files.sorted() {
            let input = Array(try Data(contentsOf: Self.corpus.appendingPathComponent(file)))
            let outcome = ProtocolFuzzing.run(input)
            #expect(
                outcome.violation == nil,
                "\(file): \(ProtocolFuzzing.run(input, tracing: true).violation.map(\.description) ?? "")"
            )
            rounds = max(rounds, outcome.rounds)
            rejected += outcome.rejected
        }
        #expect(rounds >= 2, "no corpus input completes two rounds")
        #expect(rejected > 100)
    }

    /// Event bytes, as `ProtocolFuzzing.Run.step` reads them.
    enum Event {
        case register(peer: UInt8, nonce: UInt8, requested: UInt8, tier: UInt8, key: UInt8)
        case answer(peer: UInt8, damage: UInt8)
        case tick(UInt8)
        /// The peer's connection stops reading what is sent to it.
        case deaf(peer: UInt8)
        /// A link probe padded with 32 640 bytes asking for a reply of that size.
        case bigProbe(peer: UInt8)
        /// A probe the transport answered: `mode` bit 0 forges it (its other bits pick the
        /// key, the worker control channel and the requested size's shift); the probe is
        /// padded with `padding << shift` bytes.
        case answered(peer: UInt8, mode: UInt8, requested: UInt16, padding: UInt8, shift: UInt8)

        var bytes: [UInt8] {
            switch self {
            case .deaf(let peer): [peer, 7, 2]
            case .bigProbe(let peer): [peer, 3, 0, 6, 255, 7, 255, 7, 0]
            case .register(let peer, let nonce, let requested, let tier, let key):
                [peer, 0, nonce, requested, tier, 40, 0, 0, key]
            case .answer(let peer, let damage): [peer, 1, 0, 40, 0, damage]
            case .tick(let units): [0, 4, units]
            case .answered(let peer, let mode, let requested, let padding, let shift):
                [peer, 248, mode, UInt8(requested & 0xFF), UInt8(requested >> 8), padding, shift]
            }
        }
    }

    func run(enrolled: Bool, _ events: [Event]) -> ProtocolFuzzing.Outcome {
        ProtocolFuzzing.run([enrolled ? 1 : 0] + events.flatMap(\.bytes))
    }

    @Test("Scripted: three honest clients complete rounds; damaged and foreign updates are refused")
    func scriptedRounds() {
        var events: [Event] = (0..<3).map {
            .register(peer: UInt8($0), nonce: UInt8($0), requested: UInt8($0), tier: 0, key: 0)
        }
        for _ in 0..<3 {
            events += (0..<3).map { .answer(peer: UInt8($0), damage: 1) }  // NaN: refused
            events += (0..<3).map { .answer(peer: UInt8($0), damage: 0) }  // honest
            events.append(.tick(100))
        }
        let outcome = run(enrolled: false, events)
        #expect(outcome.violation == nil, "\(outcome.violation!)")
        #expect(outcome.rounds >= 1 && outcome.rejected >= 3)
    }

    @Test(
        "Scripted: a registration flood and ID takeovers stay within the bound, with or without keys"
    )
    func scriptedFlood() {
        for enrolled in [false, true] {
            var events: [Event] = []
            for peer in 0..<7 {
                for nonce in 0..<12 {
                    events.append(
                        .register(
                            peer: UInt8(peer), nonce: UInt8(nonce),
                            requested: UInt8((peer * nonce) % 16),
                            tier: UInt8(nonce & 1), key: UInt8(nonce % 4)))
                }
            }
            let outcome = run(enrolled: enrolled, events)
            #expect(outcome.violation == nil, "\(outcome.violation!)")
            #expect(outcome.rejected > 0)
        }
    }

    @Test(
        "Scripted: a peer that never reads is refused at its byte budget and dropped; the run goes on"
    )
    func scriptedDeafPeer() {
        for enrolled in [false, true] {
            var events: [Event] = [
                .register(peer: 0, nonce: 0, requested: 0, tier: 0, key: 2), .deaf(peer: 0),
            ]
            events += Array(repeating: .bigProbe(peer: 0), count: 6)
            let outcome = run(enrolled: enrolled, events)
            #expect(outcome.violation == nil, "\(outcome.violation!)")
            // Each probe's reply passes the budget of a connection holding the last one:
            // every other reply is refused (the connection is dropped, and speaks again).
            #expect(outcome.refusedSends == 3)
        }
    }

    @Test(
        "The budget invariant fails for a machine that sends to a dropped connection or ends the run"
    )
    func budgetInvariantFails() throws {
        var run = ProtocolFuzzing.Run(machine: ProtocolFuzzing.templates.plain)
        let peer = ProtocolFuzzing.Run.peers[0]
        run.answeredFrameBytes = 100  // the reply answers a frame larger than itself
        run.queues.setReading(peer, false)
        let big = ProtocolFuzzing.Queues.budget
        #expect(run.queues.queue(big, for: peer) == nil)
        #expect(run.queues.queue(1, for: peer) != nil)
        #expect(run.queues.dropped.contains(peer))
        // A probe reply to the dropped connection, as a machine retrying the send would queue.
        let ticket = SendTicket(
            purpose: .linkProbeReply, round: 0, client: -1, message: .linkProbeReply, bytes: 1)
        #expect(throws: ProtocolFuzzing.Violation.self) {
            try run.perform([.send([0], to: peer, ticket: ticket)], answering: peer)
        }
        // A machine that ends the run when a peer does not read.
        #expect(throws: ProtocolFuzzing.Violation.self) {
            try run.checkRefusal([.fail(.stopped)], to: peer)
        }
        // The peer speaks again: it may be answered.
        run.queues.spoke(peer)
        try run.perform([.send([0], to: peer, ticket: ticket)], answering: peer)
    }

    @Test(
        "Scripted: probes the transport answered, valid and forged, are in the ledger; the run goes on"
    )
    func scriptedAnsweredProbes() {
        for enrolled in [false, true] {
            var events: [Event] = [
                .register(peer: 0, nonce: 0, requested: 0, tier: 0, key: 2),
                .register(peer: 1, nonce: 1, requested: 1, tier: 1, key: 2),
            ]
            // Valid: small replies to a probe padded to 64 bytes; a deaf peer's replies pass
            // its budget and are refused.
            events += [
                .answered(peer: 0, mode: 0, requested: 40, padding: 1, shift: 6),
                .deaf(peer: 1),
            ]
            events += Array(
                repeating: .answered(peer: 1, mode: 0, requested: 20_000, padding: 255, shift: 7),
                count: 4)
            // Forged: every key, the worker control channel, sizes no probe asked for, every
            // send error.
            for mode in stride(from: 1, to: 32, by: 2) {
                for error in 0..<3 {
                    events.append(
                        .answered(
                            peer: UInt8(mode % 6), mode: UInt8(mode), requested: 60_000,
                            padding: UInt8(error), shift: 3))
                }
            }
            let outcome = run(enrolled: enrolled, events)
            #expect(outcome.violation == nil, "\(outcome.violation!)")
            #expect(outcome.refusedSends >= 1)
        }
    }

    @Test("The ledger invariant fails for a machine that does not count an answered probe")
    func answeredInvariantFails() throws {
        var run = ProtocolFuzzing.Run(machine: ProtocolFuzzing.templates.plain)
        let peer = ProtocolFuzzing.Run.peers[0]
        let answer = AnsweredFrame(
            peer: peer, authenticatedKey: nil, frameBytes: 300, replyBytes: 200, error: nil)
        let before = run.machine.totals
        let actions = run.machine.answered(answer, at: .zero)
        try run.checkAnswered(answer, actions: actions, totalsBefore: before, clients: [-1])
        // The probe's rows left out of the ledger, or the totals not moved by them.
        let unrecorded = actions.filter { if case .record = $0 { false } else { true } }
        #expect(throws: ProtocolFuzzing.Violation.self) {
            try run.checkAnswered(answer, actions: unrecorded, totalsBefore: before, clients: [-1])
        }
        #expect(throws: ProtocolFuzzing.Violation.self) {
            try run.checkAnswered(
                answer, actions: actions, totalsBefore: run.machine.totals, clients: [-1])
        }
        // A reply that did not go out has no row.
        var refused = answer
        refused.error = .unknownPeer(peer)
        #expect(throws: ProtocolFuzzing.Violation.self) {
            try run.checkAnswered(refused, actions: actions, totalsBefore: before, clients: [-1])
        }
        // A run that ends on an answered probe.
        #expect(throws: ProtocolFuzzing.Violation.self) {
            try run.checkAnswered(
                answer, actions: actions + [.fail(.stopped)], totalsBefore: before, clients: [-1])
        }
    }
}
