import Federation
import Transport

/// Worker processes: their control channels (HELLO, shares, rows) and the dispatch of
/// queued TRAINs to free workers.
extension CoordinatorMachine {
    /// Hands queued TRAINs to the free workers, each after the rows of its client if that
    /// worker does not host it and has not had them.
    mutating func dispatchTraining() {
        while let (task, target) = workers.next(currentRound: round) {
            // A task whose client left the round (gone, dropped, registered again elsewhere)
            // while it waited, or whose client's TRAIN of this attempt already went out (a
            // retry queued it again), is not sent: it frees the worker at once.
            guard case .train(let id) = task.ticket.purpose, attempt?.pending[id] != nil,
                clients[id]?.peer == task.home, trainedAt[id] == nil
            else {
                workers.arrived(from: target)
                continue
            }
            let rows: WorkerRows?
            do {
                rows = try workers.rows(forGuest: Int(id), on: target.connection)
            } catch {
                emit(.log("round \(round): cannot read client \(id)'s rows: \(error)"))
                rows = nil
            }
            if let rows { sendControl(.workerRows(rows), to: target.connection) }
            trainedAt[id] = target
            var ticket = task.ticket
            ticket.worker = target
            emit(.send(task.frame, to: target, ticket: ticket))
        }
    }

    private mutating func sendControl(_ message: Message, to connection: PeerID) {
        let frame = WireCodec.encode(message, round: 0, sender: 0)
        emit(
            .send(
                frame, to: connection.onChannel([]),
                ticket: SendTicket(
                    purpose: .workerControl, round: round, client: -1,
                    message: LedgerMessage(message.type), bytes: frame.count)))
    }

    /// A frame on a worker's control channel: a HELLO from an admitted worker gets its share
    /// of the fleet; anything else gets a short refusal or nothing.
    mutating func handleWorkerControl(_ frame: ReceivedFrame) {
        workerControl.recordReceived(frame.bytes.count)
        let envelope: Envelope
        do {
            envelope = try WireCodec.decode(frame.bytes, maximumSize: maximumMessageSize)
        } catch {
            // No answer: a reply to garbage would be more bytes than the garbage.
            emit(
                .log("ignored a malformed frame on the control channel of \(frame.peer): \(error)"))
            return
        }
        guard case .workerHello(let hello) = envelope.message else {
            emit(.log("ignored a \(envelope.type) on the control channel of \(frame.peer)"))
            return
        }
        switch workers.hello(hello, from: frame.peer, key: frame.authenticatedKey) {
        case .refused(let reason, let admitted, let retryable):
            emit(
                .log(
                    admitted
                        ? "refused the worker on \(PeerText.escaped(hello.host)) (\(frame.peer)): \(reason)"
                        : "refused a worker HELLO from \(frame.peer): no worker credential"))
            sendControl(
                .error(ErrorReport(code: retryable ? .retryLater : .unexpected, message: reason)),
                to: frame.peer.connection)
        case .assigned(let slot, let slots, let renewed):
            let assignment: WorkerAssignment
            do {
                assignment = try workers.assignment(
                    slot: slot, slots: slots, runID: runID, scenario: scenarioYAML)
            } catch {
                emit(.log("cannot assign share \(slot) to \(frame.peer): \(error)"))
                sendControl(
                    .error(ErrorReport(code: .internalFailure, message: "\(error)")),
                    to: frame.peer.connection)
                return
            }
            if let key = frame.authenticatedKey { connectionKeys[frame.peer.connection] = key }
            if !renewed {
                emit(
                    .log(
                        "worker on \(PeerText.escaped(hello.host)) (\(frame.peer)) hosts share \(slot) of \(slots)"
                    ))
            }
            sendControl(.workerAssignment(assignment), to: frame.peer.connection)
        }
    }
}
