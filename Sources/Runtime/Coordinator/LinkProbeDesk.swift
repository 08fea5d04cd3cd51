import Federation
import Synchronization
import Transport

/// Answers link probes on the transport's I/O thread (``ServedServer``), so that a device
/// timing its link is answered within milliseconds while the coordinator aggregates or
/// evaluates a round.
///
/// It answers exactly the probes the machine would answer, with the same bytes: direct
/// connections only (a worker's channels and control channel go to the machine), the same
/// checks (``CoordinatorMachine/probeRefusal(_:frameBytes:key:enrolment:)``), and the round
/// the coordinator last published. Any other frame, and every refused probe, is passed on
/// for the machine to handle, reject and count; the machine counts an answered probe from
/// the ``AnsweredFrame`` the transport hands it in the probe's place.
public final class LinkProbeDesk: Sendable {
    private let enrolment: Enrolment?
    private let maximumMessageSize: Int
    private let currentRound = Atomic<Int>(0)

    public init(enrolment: Enrolment?, maximumMessageSize: Int) {
        self.enrolment = enrolment
        self.maximumMessageSize = maximumMessageSize
    }

    /// The round replies carry (the coordinator's current round).
    var round: Int {
        get { currentRound.load(ordering: .relaxed) }
        set { currentRound.store(newValue, ordering: .relaxed) }
    }

    /// The reply to `frame` when it is a link probe the machine would answer, else `nil`.
    @Sendable public func reply(to frame: ReceivedFrame) -> [UInt8]? {
        let typeOffset = 6  // magic (4 bytes), version (2), then the type
        guard frame.peer.channel == nil, frame.bytes.count >= WireLimits.headerSize,
            frame.bytes[typeOffset] == MessageType.linkProbe.rawValue,
            let envelope = try? WireCodec.decode(frame.bytes, maximumSize: maximumMessageSize),
            case .linkProbe(let probe) = envelope.message,
            CoordinatorMachine.probeRefusal(
                probe, frameBytes: frame.bytes.count, key: frame.authenticatedKey,
                enrolment: enrolment) == nil
        else { return nil }
        return WireCodec.encode(
            .linkProbeReply(LinkProbeReply(frameBytes: Int(probe.replyFrameBytes))),
            round: UInt32(clamping: round), sender: 0)
    }
}
