import Federation
import Fleet
import LowRank
import RunRecords
import Transport

/// Frames from clients (registration, updates, link probes, the rest) and what the machine
/// sends, with each frame's row in the byte ledger.
extension CoordinatorMachine {
    /// The largest probe reply: `bench --profile --coordinator` asks for at most 1 MiB per
    /// probe, and one reply a peer does not read then stays well within a connection's queue
    /// budget (eight such peers hold 8 MiB of replies, not 64).
    static let maximumProbeReplyBytes = InboundFrameLimit.largestProbeFrame

    /// Why a link probe is refused (`nil`: it is answered).
    ///
    /// With an enrolment, a key that is not enrolled; a reply larger than the probe's own
    /// frame, or than ``maximumProbeReplyBytes``. Shared with ``LinkProbeDesk``, which
    /// answers on the transport's thread exactly the probes this machine would.
    static func probeRefusal(
        _ probe: LinkProbe, frameBytes bytes: Int, key: String?, enrolment: Enrolment?
    ) -> (RejectionReason, String)? {
        if enrolment != nil && enrolment?.entry(forKey: key) == nil {
            (.notEnrolled, "this connection's key is not enrolled")
        } else if Int(probe.replyFrameBytes) > bytes {
            (
                .probeAmplifies,
                "a link probe of \(bytes) bytes may ask for a reply of at most \(bytes) bytes, not \(probe.replyFrameBytes)"
            )
        } else if Int(probe.replyFrameBytes) > maximumProbeReplyBytes {
            (
                .probeTooLarge,
                "a link probe may ask for a reply of at most \(maximumProbeReplyBytes) bytes, not \(probe.replyFrameBytes)"
            )
        } else {
            nil
        }
    }

    /// The transport's thread answered a link probe (see ``LinkProbeDesk``): the probe and
    /// its reply are counted as ``answer(_:from:key:bytes:)`` and ``delivered(_:)`` would
    /// have counted them, after the same check of the connection's key.
    mutating func answeredProbe(_ answer: AnsweredFrame) {
        checkKey(of: answer.peer, key: answer.authenticatedKey)
        let client = clientID(of: answer.peer)
        recordLedger(client: client, direction: .up, message: .linkProbe, bytes: answer.frameBytes)
        if answer.error == nil {
            recordLedger(
                client: client, direction: .down, message: .linkProbeReply,
                bytes: answer.replyBytes)
        }
    }

    /// A frame from a registered client's peer with another key than the client's: another
    /// key now speaks for this peer (a connection took its routing identity over), so the
    /// client is gone until it registers again, and nothing more goes there.
    private mutating func checkKey(of peer: PeerID, key: String?) {
        guard let id = clients.id(of: peer), let record = clients[id], record.key != key,
            !standing.unresponsive.contains(id) || record.connected
        else { return }
        emit(.log("client \(id)'s connection \(peer) now carries another key; treated as gone"))
        clients.markDisconnected(id)
        standing.unresponsive.insert(id)
        if dropFromAttempt(id) { metrics.droppedTimeout.append(Int(id)) }
    }

    /// Handles one frame; returns an accepted update, if it was one.
    mutating func handle(
        _ frame: ReceivedFrame
    ) -> (contribution: ClientContribution, loss: Double)? {
        checkKey(of: frame.peer, key: frame.authenticatedKey)
        let bytes = frame.bytes.count
        let envelope: Envelope
        do {
            envelope = try WireCodec.decode(frame.bytes, maximumSize: maximumMessageSize)
        } catch {
            reject(
                .malformed, peer: frame.peer, bytes: bytes, message: .garbage,
                reply: ErrorReport(code: .malformed, message: "\(error)"))
            return nil
        }
        switch envelope.message {
        case .register(let registration):
            register(registration, from: frame.peer, key: frame.authenticatedKey, bytes: bytes)
        case .update(let update):
            return handleUpdate(update, envelope: envelope, peer: frame.peer, bytes: bytes)
        case .heartbeat:
            recordLedger(
                client: clientID(of: frame.peer), direction: .up, message: .heartbeat, bytes: bytes)
        case .error(let report):
            recordLedger(
                client: clientID(of: frame.peer), direction: .up, message: .error, bytes: bytes)
            emit(
                .log(
                    "client \(envelope.sender) (\(frame.peer)) reported: \(PeerText.escaped(report.message))"
                ))
        case .evaluation:
            recordLedger(
                client: clientID(of: frame.peer), direction: .up, message: .evaluation,
                bytes: bytes)
        case .linkProbe(let probe):
            answer(probe, from: frame.peer, key: frame.authenticatedKey, bytes: bytes)
        case .registered, .train, .evaluate, .shutdown, .workerHello, .workerAssignment,
            .workerRows, .linkProbeReply:
            reject(
                .wrongType, peer: frame.peer, bytes: bytes,
                message: LedgerMessage(envelope.message.type),
                reply: ErrorReport(
                    code: .unexpected, message: "a client may not send \(envelope.message.type)"))
        }
        return nil
    }

    /// Answers a device's link measurement (`bench --profile --coordinator`) with a reply of
    /// the size it asks for, at most the size of its own frame: a probe never makes the
    /// coordinator send more than it received. With an enrolment, only enrolled keys are
    /// answered (as only they may register). Probes and replies are ledger rows like any
    /// other traffic.
    private mutating func answer(_ probe: LinkProbe, from peer: PeerID, key: String?, bytes: Int) {
        if let (reason, message) = Self.probeRefusal(
            probe, frameBytes: bytes, key: key, enrolment: enrolment)
        {
            reject(
                reason, peer: peer, bytes: bytes, message: .linkProbe,
                reply: ErrorReport(code: .unexpected, message: message))
            return
        }
        let client = clientID(of: peer)
        recordLedger(client: client, direction: .up, message: .linkProbe, bytes: bytes)
        let reply = LinkProbeReply(frameBytes: Int(probe.replyFrameBytes))
        let frame = WireCodec.encode(.linkProbeReply(reply), round: UInt32(round), sender: 0)
        emit(
            .send(
                frame, to: peer,
                ticket: SendTicket(
                    purpose: .linkProbeReply, round: round, client: client,
                    message: .linkProbeReply, bytes: frame.count)))
    }

    /// A REGISTER: the desk decides who it may be; an admitted client is recorded (its
    /// standing renewed outside the registration phase) and answered.
    private mutating func register(
        _ registration: Registration, from peer: PeerID, key: String?, bytes: Int
    ) {
        let admission: RegistrationDesk.Admission
        switch desk.admit(
            registration, from: peer, key: key, clients: clients, workers: workers,
            unresponsive: standing.unresponsive)
        {
        case .success(let admitted):
            admission = admitted
        case .failure(let refusal):
            reject(
                refusal.reason, peer: peer, bytes: bytes, message: .register,
                reply: ErrorReport(code: .unexpected, message: refusal.message))
            return
        }
        let (id, previous) = (admission.id, admission.previous)
        if let previous, previous.nonce != registration.instanceNonce {
            emit(.log("client \(id) re-registered from \(peer) (restarted)"))
        }
        if !isRegistering {
            standing.unresponsive.remove(id)
            // A new process (another nonce) ends a cooldown; the same one registering again
            // (a reconnect, or a peer replaying its REGISTER) does not. See `Cooldowns`.
            if previous?.nonce != registration.instanceNonce { standing.cooldownUntil[id] = nil }
        }
        let record = ClientRecord(
            id: id, peer: peer, tierIndex: admission.tierIndex,
            sampleCount: min(Int(registration.sampleCount), sampleBound),
            nonce: registration.instanceNonce, reportedGflops: registration.capability, key: key)
        clients.insert(record)
        if let key { connectionKeys[peer.connection] = key }
        recordLedger(client: Int(id), direction: .up, message: .register, bytes: bytes)
        send(
            .registered(
                RegistrationAccepted(clientID: id, runID: runID, modelDescription: modelDescription)
            ), to: record, purpose: .registrationReply(id))
    }

    private mutating func handleUpdate(
        _ update: TrainingUpdate, envelope: Envelope, peer: PeerID, bytes: Int
    ) -> (contribution: ClientContribution, loss: Double)? {
        let id = envelope.sender
        guard let client = clients[id], client.peer == peer || trainedAt[id] == peer else {
            reject(
                .unknownClient, peer: peer, bytes: bytes, message: .update,
                reply: ErrorReport(
                    code: .unknownClient, message: "client \(id) is not registered from \(peer)"))
            return nil
        }
        guard Int(envelope.round) == round else {
            let late = Int(envelope.round) < round
            if late {
                metrics.lateUpdates += 1
                totals.lateUpdates += 1
            }
            reject(
                late ? .late : .wrongRound, peer: peer, bytes: bytes, message: .update, reply: nil)
            return nil
        }
        guard let budgets = attempt?.pending[id] else {
            reject(
                .notSelectedOrDuplicate, peer: peer, bytes: bytes, message: .update,
                reply: ErrorReport(
                    code: .unexpected,
                    message: "no update expected from client \(id) in round \(round)"))
            return nil
        }
        guard trainedAt[id] == peer else {
            // Its TRAIN went to another worker (or is still queued): only that peer answers.
            reject(
                .notDispatchedHere, peer: peer, bytes: bytes, message: .update,
                reply: ErrorReport(
                    code: .unexpected,
                    message: "client \(id)'s task of round \(round) was not sent to \(peer)"))
            return nil
        }
        let frozen = scenario.frozenLayers(
            of: scenario.tiers[client.tierIndex], architecture: global.architecture)
        let widthPlan = logic.widthPlan(
            tierIndex: client.tierIndex, round: round, architecture: global.architecture)
        if let problem = UpdateCheck.problem(
            with: update, budgets: budgets, global: global, frozenLayers: frozen,
            widthPlan: widthPlan, maximumNormRatio: scenario.robustness.maximumUpdateNormRatio)
        {
            // The client answered, wrongly: it leaves the round (no waiting for the timeout).
            _ = dropFromAttempt(id)
            metrics.droppedInvalid.append(Int(id))
            reject(
                problem.reason, peer: peer, bytes: bytes, message: .update,
                reply: ErrorReport(code: .shapeMismatch, message: problem.message))
            return nil
        }
        _ = dropFromAttempt(id)
        if let largest = UpdateCheck.updateNormRatio(
            of: update, budgets: budgets, global: global, frozenLayers: frozen,
            widthPlan: widthPlan)
        {
            metrics.largestUpdateNormRatio = max(
                metrics.largestUpdateNormRatio ?? 0, largest.ratio)
        }
        standing.worked(id)
        metrics.clientComputeSeconds += Double(update.computeSeconds)
        totals.clientComputeSeconds += Double(update.computeSeconds)
        recordLedger(client: Int(id), direction: .up, message: .update, bytes: bytes)
        countDenseEquivalent(denseMessageBytes.update, client: Int(id), round: round)
        // The weight is the count fixed (and capped) at registration: an update's own count
        // is the client's word, and a client could claim its way to a larger say.
        let samples = client.sampleCount
        // A frozen layer's factors came back with no rows: its budget in the update is 0.
        let slice = ModelSlice(
            budgets: update.factors.map { $0.up.shape.first ?? 0 }, factors: update.factors,
            shared: update.shared)
        return (
            ClientContribution(clientID: Int(id), sampleCount: max(samples, 1), slice: slice),
            Double(update.trainingLoss)
        )
    }

    /// Counts and records a refused frame, and answers it with `reply` (if any).
    private mutating func reject(
        _ reason: RejectionReason, peer: PeerID, bytes: Int, message: LedgerMessage,
        reply: ErrorReport?
    ) {
        totals.count(reason, in: &metrics)
        let client = clientID(of: peer)
        recordLedger(client: client, direction: .up, message: message, bytes: bytes)
        emit(.rejected(Rejection(reason: reason, message: message, peer: peer, reply: reply)))
        if let reply {
            let frame = WireCodec.encode(.error(reply), round: UInt32(round), sender: 0)
            emit(
                .send(
                    frame, to: peer,
                    ticket: SendTicket(
                        purpose: .errorReply, round: round, client: client, message: .error,
                        bytes: frame.count)
                ))
        }
    }

    func clientID(of peer: PeerID) -> Int {
        clients.id(of: peer).map(Int.init) ?? -1
    }

    mutating func send(
        _ message: Message, to client: ClientRecord, purpose: SendTicket.Purpose
    ) {
        let frame = WireCodec.encode(message, round: UInt32(round), sender: 0)
        var ticket = SendTicket(
            purpose: purpose, round: round, client: Int(client.id),
            message: LedgerMessage(message.type), bytes: frame.count)
        if case .train(let id) = purpose {
            if workers.dispatch.dispatches(client.peer) {
                // A hosted client: the first free worker trains it (dispatchTraining).
                ticket.viaWorker = true
                workers.enqueue(
                    .init(frame: frame, home: client.peer, ticket: ticket, round: round))
                return
            }
            trainedAt[id] = client.peer
        }
        emit(.send(frame, to: client.peer, ticket: ticket))
    }

    // MARK: - Ledger

    /// Records a frame in the ledger and the byte counts. A frame of an earlier round (a
    /// registration answered as the first round starts) counts in the run's totals but not in
    /// the current round's metrics.
    mutating func recordLedger(
        client: Int, direction: LedgerEntry.Direction, message: LedgerMessage, bytes: Int,
        round entryRound: Int? = nil
    ) {
        let entry = totals.count(
            bytes, direction, message: message, client: client, tier: tierName(client: client),
            round: entryRound ?? round, in: &metrics)
        emit(.record(entry))
    }

    /// Adds what dense FedAvg would have moved for this message.
    mutating func countDenseEquivalent(_ bytes: Int, client: Int, round entryRound: Int) {
        totals.countDenseEquivalent(
            bytes, tier: tierName(client: client), round: entryRound, in: &metrics)
    }

    private func tierName(client: Int) -> String {
        client >= 0
            ? clients[UInt32(client)].map { scenario.tiers[$0.tierIndex].name } ?? "-" : "-"
    }
}
