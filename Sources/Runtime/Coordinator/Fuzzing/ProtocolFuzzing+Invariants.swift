import Federation
import Fleet
import LowRank
import Tensors
import Transport

/// The fuzzer's invariants: how a run hands frames to the machine, carries out its actions
/// as the driver does, and checks every send and the model against what the protocol allows.
extension ProtocolFuzzing.Run {
    /// Hands a frame to the machine and checks the model invariant for it.
    mutating func deliver(_ frame: ReceivedFrame) throws {
        let before = machine
        let rejectedBefore = machine.rejectedCount
        answeredFrameBytes = frame.bytes.count
        let queuesBefore = queues
        queues.spoke(frame.peer.connection)
        let actions = machine.received(frame, at: now)
        let rejected = machine.rejectedCount > rejectedBefore
        if actions.contains(where: { if case .fail = $0 { true } else { false } }) {
            throw ProtocolFuzzing.Violation(description: "a frame from \(frame.peer) ended the run")
        }
        // Whether a client left the round (or the round moved on) with this frame: only then
        // can it have been an accepted update, so only then is the frame decoded again.
        let roundMoved =
            machine.round != before.round
            || Set(machine.pendingClients) != Set(before.pendingClients)
        if checksSends, !rejected, roundMoved,
            let envelope = try? WireCodec.decode(frame.bytes, maximumSize: 1 << 22),
            case .update = envelope.message, before.isPending(envelope.sender),
            !machine.isPending(envelope.sender) || machine.round != before.round
        {
            // Accepted (the client left the round without a rejection): it must come
            // from where the TRAIN went.
            guard let sent = trainedAt[envelope.sender], sent.round == before.round,
                sent.peer == frame.peer
            else {
                throw ProtocolFuzzing.Violation(
                    description:
                        "client \(envelope.sender)'s update was accepted from \(frame.peer), its TRAIN went to \(trainedAt[envelope.sender].map(\.peer.description) ?? "nobody")"
                )
            }
        }
        try perform(actions, answering: frame.peer)
        guard rejected, machine.global.parameters != before.global.parameters else { return }
        // The rejected frame completed a round: the same step with its content removed
        // must reach the same model.
        // Two ways to remove the content: the frame is ignored (garbage from the same peer
        // at the same time), or its sender leaves the round without it (a drop). The
        // rejected frame's model must be one of theirs.
        var matched = false
        var alternatives: [ProtocolFuzzing.Run] = []
        var ignored = counterfactual(from: before, queues: queuesBefore)
        ignored.queues.spoke(frame.peer.connection)
        try ignored.perform(
            ignored.machine.received(ReceivedFrame(peer: frame.peer, bytes: [0x47]), at: now),
            answering: frame.peer)
        alternatives.append(ignored)
        if let id = before.clients.id(of: frame.peer), before.isPending(id) {
            var dropped = counterfactual(from: before, queues: queuesBefore)
            try dropped.perform(dropped.machine.abandoned([id], at: now), answering: nil)
            alternatives.append(dropped)
        }
        for alternative in alternatives
        where alternative.machine.global.parameters == machine.global.parameters {
            matched = true
        }
        guard matched else {
            throw ProtocolFuzzing.Violation(
                description:
                    "a rejected frame from \(frame.peer) changed the model (round \(before.round))"
            )
        }
    }

    /// A run from `machine` in this run's conditions, for a step that did not happen.
    func counterfactual(
        from machine: CoordinatorMachine, queues: ProtocolFuzzing.Queues
    ) -> ProtocolFuzzing.Run {
        var run = ProtocolFuzzing.Run(machine: machine)
        run.checksSends = false
        run.now = now
        run.failingSends = failingSends
        run.keys = keys
        run.queues = queues
        return run
    }

    /// Carries out actions as the driver does, checking where each send goes.
    mutating func perform(_ actions: [CoordinatorAction], answering peer: PeerID?) throws {
        var queue = actions[...]
        // Where the actions start that the machine returned once told that the transport
        // dropped a connection in this batch: sends before that were decided without knowing.
        var droppedAt: [PeerID: Int] = [:]
        while !queue.isEmpty {
            let index = queue.startIndex
            let action = queue.removeFirst()
            switch action {
            case .send(let frame, let target, let ticket):
                trace?.append("    send \(ticket.message) to \(target) (\(ticket.purpose))")
                if index < droppedAt[target.connection, default: 0] {
                    // Decided before the machine knew the connection is dropped: the transport
                    // refuses it (below), so it reaches nobody, whatever changed since.
                    if rowsSent?.connection == target.connection { rowsSent = nil }
                } else if checksSends {
                    try checkSend(frame, to: target, ticket: ticket, answering: peer)
                    try checkQueue(to: target, ticket: ticket)
                }
                if failingSends {
                    queue += machine.undelivered(ticket, error: .unknownPeer(target), at: now)
                } else if let refusal = queues.queue(frame.count, for: target) {
                    trace?.append("    refused: \(refusal)")
                    if case .peerQueueFull = refusal {
                        droppedAt[target.connection] = queue.endIndex
                    }
                    let followUp = machine.undelivered(ticket, error: refusal, at: now)
                    if checksSends { try checkRefusal(followUp, to: target) }
                    queue += followUp
                } else {
                    if case .train(let id) = ticket.purpose,
                        let envelope = try? WireCodec.decode(frame, maximumSize: 1 << 22),
                        case .train(let task) = envelope.message
                    {
                        trains[id] = (envelope.round, task)
                        trainedAt[id] = (Int(envelope.round), target)
                    }
                    queue += machine.delivered(ticket)
                }
            case .commit:
                queue += machine.committed(at: now)
            case .finish, .fail:
                isOver = true
            case .log(let line):
                trace?.append("    " + line)
            case .rejected(let rejection):
                trace?.append("    \(rejection)")
            case .record, .flushLedger:
                break
            }
            if queue.isEmpty { queue += closeDropped() }
        }
        guard machine.clients.count <= machine.populationBound else {
            throw ProtocolFuzzing.Violation(
                description:
                    "\(machine.clients.count) clients registered, the bound is \(machine.populationBound)"
            )
        }
    }

    mutating func checkSend(
        _ frame: [UInt8], to target: PeerID, ticket: SendTicket, answering peer: PeerID?
    ) throws {
        if let grant = rowsSent {
            rowsSent = nil
            guard case .train(let id) = ticket.purpose, id == grant.client,
                target.connection == grant.connection
            else {
                throw ProtocolFuzzing.Violation(
                    description:
                        "client \(grant.client)'s rows went to \(grant.connection), and no TRAIN of it followed there"
                )
            }
        }
        switch ticket.purpose {
        case .workerControl:
            try checkControl(frame, to: target, answering: peer)
        case .train(let id) where ticket.viaWorker:
            guard let record = machine.clients[id], record.peer.channel == target.channel,
                admitted.contains(target.connection), machine.workers.isWorker(target.connection)
            else {
                throw ProtocolFuzzing.Violation(
                    description:
                        "a TRAIN of client \(id) to \(target), no admitted worker on its channel (client at \(machine.clients[id].map(\.peer.description) ?? "nowhere"), admitted \(admitted.contains(target.connection)), pooled \(machine.workers.isWorker(target.connection)))"
                )
            }
        case .errorReply:
            guard target == peer, frame.count <= 4200 else {
                throw ProtocolFuzzing.Violation(
                    description:
                        "an error reply of \(frame.count) bytes to \(target), answering \(peer.map(\.description) ?? "nothing")"
                )
            }
        case .registrationReply(let id), .train(let id):
            guard let record = machine.clients[id], record.peer == target else {
                throw ProtocolFuzzing.Violation(
                    description: "\(ticket.message) to \(target), not client \(id)'s peer")
            }
            if let enrolment = machine.enrolment {
                guard let key = keys[target], let entry = enrolment.entry(forKey: key),
                    entry.clientID == nil || entry.clientID == id,
                    enrolment.key(boundTo: id) == nil || enrolment.key(boundTo: id) == key
                else {
                    throw ProtocolFuzzing.Violation(
                        description:
                            "\(ticket.message) to \(target) as client \(id), a key not enrolled as it"
                    )
                }
            }
        case .linkProbeReply:
            guard target == peer, frame.count <= answeredFrameBytes else {
                throw ProtocolFuzzing.Violation(
                    description:
                        "a link probe reply of \(frame.count) bytes to \(target), answering \(answeredFrameBytes) bytes from \(peer.map(\.description) ?? "nothing")"
                )
            }
            if let enrolment = machine.enrolment {
                guard let key = keys[target], enrolment.entry(forKey: key) != nil else {
                    throw ProtocolFuzzing.Violation(
                        description: "a link probe reply to \(target), a key not enrolled")
                }
            }
        case .shutdown:
            guard machine.clients.id(of: target) != nil else {
                throw ProtocolFuzzing.Violation(
                    description: "SHUTDOWN to \(target), no registered client")
            }
        }
    }

    /// A frame on a control channel: assignments and rows only to admitted workers, with
    /// exactly their share's rows; anything else no larger than what it answers.
    mutating func checkControl(
        _ frame: [UInt8], to target: PeerID, answering peer: PeerID?
    )
        throws
    {
        guard target.channel == [] else {
            throw ProtocolFuzzing.Violation(
                description: "a control frame to \(target), not a control channel")
        }
        let message = try? WireCodec.decode(frame, maximumSize: 1 << 22).message
        switch message {
        case .workerAssignment(let assignment):
            guard admitted.contains(target.connection), peer == target else {
                throw ProtocolFuzzing.Violation(
                    description: "a worker assignment to \(target), which proved nothing")
            }
            let share = stride(
                from: Int(assignment.slot), to: 8, by: Int(assignment.slots))
            guard assignment.rows == share.map(ProtocolFuzzing.rows(ofClient:)) else {
                throw ProtocolFuzzing.Violation(
                    description:
                        "share \(assignment.slot) of \(assignment.slots) came with rows \(assignment.rows)"
                )
            }
        case .workerRows(let rows):
            guard admitted.contains(target.connection),
                rows.rows == ProtocolFuzzing.rows(ofClient: Int(rows.client))
            else {
                throw ProtocolFuzzing.Violation(
                    description: "client \(rows.client)'s rows to \(target), no admitted worker")
            }
            rowsSent = (rows.client, target.connection)
        default:
            guard peer == target,
                admitted.contains(target.connection) || frame.count <= answeredFrameBytes
            else {
                throw ProtocolFuzzing.Violation(
                    description:
                        "a control reply of \(frame.count) bytes to \(target), answering \(answeredFrameBytes) bytes from \(peer.map(\.description) ?? "nothing")"
                )
            }
        }
    }
}

extension CoordinatorMachine {
    /// Frames rejected so far, over all reasons (for the fuzzer's model invariant).
    var rejectedCount: Int { rejectedTotalsSum }

    /// Whether the current round still waits for this client's update.
    func isPending(_ id: UInt32) -> Bool { pendingClients.contains(id) }
}
