import Foundation
import Testing

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

        var bytes: [UInt8] {
            switch self {
            case .register(let peer, let nonce, let requested, let tier, let key):
                [peer, 0, nonce, requested, tier, 40, 0, 0, key]
            case .answer(let peer, let damage): [peer, 1, 0, 40, 0, damage]
            case .tick(let units): [0, 4, units]
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
}
