import Federation
import RunRecords
import Transport

extension ProtocolFuzzing.Run {
    /// The transport's I/O thread answered a link probe (``LinkProbeDesk``) and hands the
    /// machine an ``AnsweredFrame`` in the probe's place.
    ///
    /// A valid answer is one the desk gives: a probe on a direct connection with the key the
    /// peer speaks with (enrolled, when there is an enrolment), asking for a reply no larger
    /// than its frame nor than the largest probe reply; the reply is queued as the transport
    /// queues it (refused at the byte budget, the connection then dropped). A forged answer
    /// has any peer (a worker's channel or control channel too), another key, sizes that no
    /// probe asked for (a reply larger than its frame, up to the largest frame the transport
    /// takes) and any send error. Either way the machine must count the probe (and the reply
    /// that went out) in its byte ledger, keep the run going, and, as ever, queue nothing for a
    /// dropped connection.
    mutating func answered(_ peer: PeerID, _ reader: inout ProtocolFuzzing.Reader) throws {
        let mode = reader.byte()
        let requested = Int(reader.word()) << Int(mode >> 5)
        let padding = Int(reader.byte()) << Int(reader.byte() % 8)
        var target = peer
        var key = keys[peer]
        var frameBytes = WireCodec.encodedSize(
            of: .linkProbe(LinkProbe(replyFrameBytes: 0, paddingBytes: UInt32(padding))))
        var replyBytes = WireCodec.encodedSize(
            of: .linkProbeReply(LinkProbeReply(frameBytes: requested)))
        var error: TransportError?
        if mode & 1 == 0 {
            // Valid: as the desk answers, or the probe goes to the machine as a frame.
            target = peer.connection
            key = keys[target]
            let refused = CoordinatorMachine.probeRefusal(
                LinkProbe(replyFrameBytes: UInt32(requested), paddingBytes: UInt32(padding)),
                frameBytes: frameBytes, key: key, enrolment: machine.enrolment)
            guard refused == nil else {
                let probe = LinkProbe(
                    replyFrameBytes: UInt32(requested), paddingBytes: UInt32(padding))
                return try deliver(
                    ReceivedFrame(
                        peer: target,
                        bytes: WireCodec.encode(.linkProbe(probe), round: 0, sender: 0),
                        authenticatedKey: key))
            }
            queues.spoke(target.connection)
            error = queues.queue(replyBytes, for: target)
        } else {
            switch mode >> 1 & 3 {
            case 1: key = nil
            case 2: key = ProtocolFuzzing.workerKey
            case 3: key = ProtocolFuzzing.boundKey
            default: break
            }
            if mode & 8 != 0 { target = Self.workerConnections[Int(mode >> 4 & 1)].onChannel([]) }
            let largestFrame = 64 << 20
            frameBytes = min(largestFrame, requested &* 3 / 2 + padding)
            replyBytes = min(largestFrame, requested &* 2)
            queues.spoke(target.connection)
            error =
                switch padding % 3 {
                case 0: .unknownPeer(target)
                case 1: .peerQueueFull(peer: target, queuedBytes: replyBytes, budget: 1)
                default: queues.queue(replyBytes, for: target)
                }
        }
        let answer = AnsweredFrame(
            peer: target, authenticatedKey: key, frameBytes: frameBytes, replyBytes: replyBytes,
            error: error)
        trace?.append("    answered \(answer)")
        let totalsBefore = machine.totals
        let clientBefore = machine.clientID(of: answer.peer)
        let actions = machine.answered(answer, at: now)
        try checkAnswered(
            answer, actions: actions, totalsBefore: totalsBefore,
            clients: [clientBefore, machine.clientID(of: answer.peer)])
        try perform(actions, answering: nil)
        if !queues.closing.isEmpty { try perform(closeDropped(), answering: nil) }
    }

    /// An answered probe: the run goes on, the ledger has the probe's row (and the reply's,
    /// when it went out) as the peer's (`clients`: its client ID before and after the event,
    /// -1 for none), and the run's totals moved by the rows given.
    func checkAnswered(
        _ answer: AnsweredFrame, actions: [CoordinatorAction], totalsBefore: RunTotals,
        clients: [Int]
    ) throws {
        if actions.contains(where: { if case .fail = $0 { true } else { false } }) {
            throw ProtocolFuzzing.Violation(
                description: "an answered probe from \(answer.peer) ended the run")
        }
        var up = 0
        var down = 0
        var rows: [LedgerEntry] = []
        for case .record(let entry) in actions {
            if entry.direction == .up { up += entry.bytes } else { down += entry.bytes }
            rows.append(entry)
        }
        let probeRow = rows.contains {
            $0.direction == .up && $0.message == "linkProbe" && $0.bytes == answer.frameBytes
                && clients.contains($0.client)
        }
        let replyRow = rows.contains {
            $0.direction == .down && $0.message == "linkProbeReply"
                && $0.bytes == answer.replyBytes && clients.contains($0.client)
        }
        guard probeRow, replyRow == (answer.error == nil),
            machine.totals.bytesUp - totalsBefore.bytesUp == up,
            machine.totals.bytesDown - totalsBefore.bytesDown == down
        else {
            throw ProtocolFuzzing.Violation(
                description:
                    "an answered probe (\(answer)) is not in the ledger as it went: rows \(rows), totals up \(machine.totals.bytesUp - totalsBefore.bytesUp) down \(machine.totals.bytesDown - totalsBefore.bytesDown)"
            )
        }
    }
}
