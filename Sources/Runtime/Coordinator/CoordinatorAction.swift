import Federation
import RunRecords
import Transport

/// What the coordinator's driver must do for its state machine.
enum CoordinatorAction {
    /// Send `frame` to `peer`, then report the result with `delivered` or `undelivered`.
    case send([UInt8], to: PeerID, ticket: SendTicket)
    /// Append a row to the byte ledger.
    case record(LedgerEntry)
    case log(String)
    /// A frame was refused (already counted and in the ledger): log `rejection.description`.
    case rejected(Rejection)
    /// Write the buffered ledger rows out.
    case flushLedger
    /// The round is done: write its metrics and the checkpoint, then call `committed`.
    case commit(RoundMetrics)
    /// Every round is done and every client told: write the final model and the summary.
    case finish
    /// The run cannot go on.
    case fail(CoordinatorError)
}

/// What a send was for, so that its outcome can be accounted for.
struct SendTicket {
    enum Purpose: Equatable {
        case registrationReply(UInt32)
        case train(UInt32)
        case errorReply
        case shutdown
        /// The answer to a link probe from the peer whose frame is being answered.
        case linkProbeReply
        /// A frame on a worker's control channel (simulation plumbing, not in the ledger).
        case workerControl
    }

    let purpose: Purpose
    /// The round the frame belongs to (the machine may have moved on when it is delivered).
    let round: Int
    /// The ledger's client column (-1 for a peer that is no registered client).
    let client: Int
    /// The ledger's message column.
    let message: LedgerMessage
    let bytes: Int
    /// A TRAIN handed to a worker of the pool (not to the client's home peer).
    var viaWorker = false
    /// Where such a TRAIN went: a failure reported for it after the client's task went
    /// elsewhere (the worker was dropped, the task handed to another) is not the new worker's.
    var worker: PeerID? = nil
}
