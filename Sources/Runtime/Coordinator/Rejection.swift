import Federation
import Transport

/// Why the coordinator refused a frame: the key of `rejected` in `metrics.jsonl` and
/// `summary.json`, and the reason in the log line (raw values are those words).
enum RejectionReason: String, CaseIterable, Sendable {
    /// The transport refused the frame's envelope (before the machine saw it).
    case malformedEnvelope = "malformed_envelope"
    /// The frame does not decode as a message.
    case malformed
    /// A message type no client sends to the coordinator.
    case wrongType = "wrong_type"
    /// With an enrolment: the connection's key is not enrolled.
    case notEnrolled = "not_enrolled"
    /// A link probe asks for a reply larger than itself.
    case probeAmplifies = "probe_amplifies"
    /// A link probe asks for more than `CoordinatorMachine.maximumProbeReplyBytes`.
    case probeTooLarge = "probe_too_large"

    // Registration (`RegistrationDesk`).
    case unknownTier = "unknown_tier"
    case keyIDMismatch = "key_id_mismatch"
    case keyTierMismatch = "key_tier_mismatch"
    case notHosted = "not_hosted"
    case wrongTier = "wrong_tier"
    case workerKey = "worker_key"
    case peerHasID = "peer_has_id"
    case populationFull = "population_full"
    case noClientID = "no_client_id"
    case idOutOfRange = "id_out_of_range"
    case idBoundToOtherKey = "id_bound_to_other_key"
    case idTaken = "id_taken"

    // Updates.
    case unknownClient = "unknown_client"
    /// An update of an earlier round (also counted in `late_updates`).
    case late
    case wrongRound = "wrong_round"
    case notSelectedOrDuplicate = "not_selected_or_duplicate"
    case notDispatchedHere = "not_dispatched_here"
    /// The update's content (`UpdateCheck.Problem`).
    case shapeMismatch = "shape_mismatch"
    case nonFiniteOrAbsurd = "non_finite_or_absurd"
    case badTrainingLoss = "bad_training_loss"
    case badComputeSeconds = "bad_compute_seconds"
    case updateNormTooLarge = "update_norm_too_large"
}

/// The message column of a ledger row (`ledger.csv`): a message type's name, or `garbage`
/// for a frame that does not decode. Case names are the words written.
enum LedgerMessage: String, Sendable {
    case register, registered, train, update, evaluate, evaluation, shutdown, error, heartbeat
    case workerHello, workerAssignment, linkProbe, linkProbeReply, workerRows
    /// A frame that does not decode.
    case garbage

    init(_ type: MessageType) {
        self =
            switch type {
            case .register: .register
            case .registered: .registered
            case .train: .train
            case .update: .update
            case .evaluate: .evaluate
            case .evaluation: .evaluation
            case .shutdown: .shutdown
            case .error: .error
            case .heartbeat: .heartbeat
            case .workerHello: .workerHello
            case .workerAssignment: .workerAssignment
            case .linkProbe: .linkProbe
            case .linkProbeReply: .linkProbeReply
            case .workerRows: .workerRows
            }
    }

    /// Whether dense FedAvg would move this message at another size (TRAIN and UPDATE carry
    /// the model; control messages cost the same).
    var carriesModel: Bool { self == .train || self == .update }
}

/// A refused frame: what it was, who sent it, why, and the error reply it gets (if any).
struct Rejection: Sendable, CustomStringConvertible {
    let reason: RejectionReason
    let message: LedgerMessage
    let peer: PeerID
    let reply: ErrorReport?

    /// The log line: `rejected MESSAGE from PEER: REASON (reply)`.
    var description: String {
        "rejected \(message.rawValue) from \(peer): \(reason.rawValue)"
            + (reply.map { " (\($0.message))" } ?? "")
    }
}
