import Federation
import Fleet
import Testing
import Transport

@testable import Runtime

@Suite("Link probes answered on the transport's thread")
struct LinkProbeDeskTests {
    /// Probes and other frames: answered, refused (amplifying, too large, not enrolled),
    /// on a worker's channels, not probes at all, corrupt.
    static func frames() -> [ReceivedFrame] {
        let direct = PeerID(bytes: [0x41])
        let stranger = PeerID(bytes: [0x42])
        func probe(reply: Int, padding: Int) -> [UInt8] {
            WireCodec.encode(
                .linkProbe(
                    LinkProbe(replyFrameBytes: UInt32(reply), paddingBytes: UInt32(padding))),
                round: 0, sender: 0)
        }
        var corrupt = probe(reply: 40, padding: 64)
        corrupt[corrupt.count - 1] ^= 1
        return [
            ReceivedFrame(
                peer: direct, bytes: probe(reply: 40, padding: 0), authenticatedKey: "k1"),
            ReceivedFrame(
                peer: direct, bytes: probe(reply: 4096, padding: 4096), authenticatedKey: "k1"),
            ReceivedFrame(
                peer: direct, bytes: probe(reply: 4096, padding: 64), authenticatedKey: "k1"),
            ReceivedFrame(
                peer: direct, bytes: probe(reply: (1 << 20) + 1, padding: 1 << 20),
                authenticatedKey: "k1"),
            ReceivedFrame(
                peer: direct, bytes: probe(reply: 1 << 20, padding: 1 << 20), authenticatedKey: "k1"
            ),
            ReceivedFrame(
                peer: stranger, bytes: probe(reply: 40, padding: 0), authenticatedKey: "k2"),
            ReceivedFrame(
                peer: direct.onChannel([1]), bytes: probe(reply: 40, padding: 0),
                authenticatedKey: "k1"),
            ReceivedFrame(
                peer: direct.onChannel([]), bytes: probe(reply: 40, padding: 0),
                authenticatedKey: "k1"),
            ReceivedFrame(peer: direct, bytes: corrupt, authenticatedKey: "k1"),
            ReceivedFrame(
                peer: direct, bytes: WireCodec.encode(.heartbeat, round: 0, sender: 0),
                authenticatedKey: "k1"),
            ReceivedFrame(peer: direct, bytes: [1, 2, 3], authenticatedKey: "k1"),
        ]
    }

    @Test(
        "The desk answers exactly the probes the machine answers, with the same bytes, and the machine counts them the same",
        arguments: [false, true])
    func sameAsMachine(enrolled: Bool) throws {
        var enrolment = Enrolment()
        _ = enrolment.add(key: "k1", entry: Enrolment.Entry())
        let scenario = try Scenario.parse(yaml: syntheticScenarioYAML)
        func machine() throws -> CoordinatorMachine {
            var machine = try CoordinatorMachine(
                scenario: scenario, evaluationSet: scenario.evaluationSamples(),
                expectedClients: nil, registrationTimeout: .seconds(10),
                roundTimeout: .seconds(5), maximumMessageSize: 32 << 20,
                enrolment: enrolled ? enrolment : nil, resumingFrom: nil)
            _ = machine.start(at: .zero)
            return machine
        }
        var answering = try machine()  // answers every frame itself
        var counting = try machine()  // told of the desk's answers
        let desk = LinkProbeDesk(
            enrolment: enrolled ? enrolment : nil, maximumMessageSize: 32 << 20)
        var answeredByDesk = 0
        for frame in Self.frames() {
            var machineReplies: [[UInt8]] = []
            for action in answering.received(frame, at: .seconds(1)) {
                guard case .send(let bytes, let peer, let ticket) = action else { continue }
                _ = answering.delivered(ticket)  // error replies too, as on the other side
                if ticket.purpose == .linkProbeReply {
                    #expect(peer == frame.peer)
                    machineReplies.append(bytes)
                }
            }
            let reply = desk.reply(to: frame)
            #expect(machineReplies.count <= 1)
            if frame.peer.channel == nil {
                #expect(reply == machineReplies.first, "\(frame.peer) \(frame.bytes.count) bytes")
            } else {
                #expect(reply == nil)  // a worker's channels are the machine's
            }
            if let reply {
                answeredByDesk += 1
                _ = counting.answered(
                    AnsweredFrame(
                        peer: frame.peer, authenticatedKey: frame.authenticatedKey,
                        frameBytes: frame.bytes.count, replyBytes: reply.count, error: nil),
                    at: .seconds(1))
            } else {
                for action in counting.received(frame, at: .seconds(1)) {
                    if case .send(_, _, let ticket) = action { _ = counting.delivered(ticket) }
                }
            }
        }
        #expect(answeredByDesk == (enrolled ? 3 : 4))
        #expect(counting.totals == answering.totals)
    }

    @Test("Replies carry the round the coordinator published")
    func round() throws {
        let desk = LinkProbeDesk(enrolment: nil, maximumMessageSize: 1 << 22)
        desk.round = 7
        let frame = ReceivedFrame(
            peer: PeerID(bytes: [9]),
            bytes: WireCodec.encode(
                .linkProbe(LinkProbe(replyFrameBytes: 40, paddingBytes: 0)), round: 0, sender: 0))
        let reply = try #require(desk.reply(to: frame))
        #expect(try WireCodec.decode(reply, maximumSize: 1 << 22).round == 7)
    }
}
