import Federation
import Transport

extension ProtocolFuzzing {
    /// The bytes the transport holds for each connection, kept as `ZeroMQServer` keeps them
    /// (`ServerLimits`): every frame costs its size plus ``ServerLimits/frameOverhead`` until
    /// the peer reads it; a frame that would take a connection holding anything past the
    /// budget is refused (`TransportError.peerQueueFull`) and the connection is dropped; one
    /// frame of any size always goes to a connection that holds nothing.
    ///
    /// A connection reads everything queued for it before it speaks, unless the input made it
    /// one that never reads. The budget is ``budget``, well below the coordinator's 4 MiB, so
    /// that a few probe replies, REGISTERED replies or TRAINs reach it.
    struct Queues {
        static let budget = 16 << 10

        /// Bytes queued for each connection and not yet read.
        private(set) var held: [PeerID: Int] = [:]
        /// Connections that do not read what is sent to them.
        private var deaf: Set<PeerID> = []
        /// Connections dropped for their queue and not heard from since. Once the machine is
        /// told of the refusal it may queue nothing more for them (but SHUTDOWN, which goes to
        /// every client at the end and which the transport refuses as it refuses any send to
        /// a closed connection); sends it had decided before it knew are refused.
        private(set) var dropped: Set<PeerID> = []
        /// Connections dropped during the current batch of actions, whose closing the driver
        /// reports to the machine once the batch is carried out (the socket monitor's event).
        var closing: [PeerID] = []
        /// Sends refused so far.
        private(set) var refusals = 0

        /// `connection` speaks: it is connected again, and (unless it never reads) has taken
        /// everything queued for it.
        mutating func spoke(_ connection: PeerID) {
            dropped.remove(connection)
            if !deaf.contains(connection) { held[connection] = nil }
        }

        /// `connection` closed: what it held is gone.
        mutating func closed(_ connection: PeerID) { held[connection] = nil }

        mutating func setReading(_ connection: PeerID, _ reading: Bool) {
            if reading { deaf.remove(connection) } else { deaf.insert(connection) }
        }

        /// Queues `bytes` for `connection`, or refuses them (the error) and drops it. A dropped
        /// connection takes nothing more: it is going away.
        mutating func queue(_ bytes: Int, for target: PeerID) -> TransportError? {
            let connection = target.connection
            guard !dropped.contains(connection) else { return .unknownPeer(target) }
            let cost = bytes + ServerLimits.frameOverhead
            let queued = held[connection, default: 0]
            guard queued == 0 || queued + cost <= Self.budget else {
                held[connection] = nil
                dropped.insert(connection)
                closing.append(connection)
                refusals += 1
                return .peerQueueFull(peer: target, queuedBytes: queued, budget: Self.budget)
            }
            held[connection] = queued + cost
            return nil
        }
    }
}

extension ProtocolFuzzing.Run {
    /// Checks a send against the queues before it is carried out: nothing goes to a connection
    /// dropped for its queue until it speaks again.
    func checkQueue(to target: PeerID, ticket: SendTicket) throws {
        guard ticket.purpose == .shutdown || !queues.dropped.contains(target.connection) else {
            throw ProtocolFuzzing.Violation(
                description:
                    "\(ticket.message) queued for \(target), whose connection the transport dropped for passing its byte budget"
            )
        }
    }

    /// Checks what the machine did about a send the transport refused for its queue.
    func checkRefusal(_ followUp: [CoordinatorAction], to target: PeerID) throws {
        if followUp.contains(where: { if case .fail = $0 { true } else { false } }) {
            throw ProtocolFuzzing.Violation(
                description:
                    "a send refused because \(target) does not read what it is sent ended the run")
        }
    }

    /// The connections dropped during a batch close, as the socket monitor then reports.
    mutating func closeDropped() -> [CoordinatorAction] {
        guard !queues.closing.isEmpty else { return [] }
        let closing = queues.closing
        queues.closing = []
        return machine.disconnected(closing, at: now)
    }
}
