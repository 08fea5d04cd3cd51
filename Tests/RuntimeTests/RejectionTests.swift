import Federation
import Testing
import Transport

@testable import Runtime

@Suite("Rejection reasons and ledger message names")
struct RejectionTests {
    /// The words in `metrics.jsonl`, `summary.json`, `ledger.csv` and the log: renaming a
    /// case must not change them.
    @Test("Every rejection reason is written as the word runs have always written")
    func reasonWords() {
        let words = [
            "malformed_envelope", "malformed", "wrong_type", "not_enrolled", "probe_amplifies",
            "probe_too_large", "unknown_tier", "key_id_mismatch", "key_tier_mismatch",
            "not_hosted", "wrong_tier", "worker_key", "peer_has_id", "population_full",
            "no_client_id", "id_out_of_range", "id_bound_to_other_key", "id_taken",
            "unknown_client", "late", "wrong_round", "not_selected_or_duplicate",
            "not_dispatched_here", "shape_mismatch", "non_finite_or_absurd",
            "bad_training_loss", "bad_compute_seconds", "update_norm_too_large",
        ]
        #expect(RejectionReason.allCases.map(\.rawValue) == words)
    }

    @Test("A ledger row names a message as its type's name; an undecodable frame as garbage")
    func ledgerWords() {
        for type in MessageType.allCases {
            #expect(LedgerMessage(type).rawValue == type.description)
            #expect(LedgerMessage(type).carriesModel == (type == .train || type == .update))
        }
        #expect(LedgerMessage.garbage.rawValue == "garbage")
    }

    @Test("A rejection's log line: message, peer, reason and the reply's text")
    func logLine() {
        let peer = PeerID(bytes: [0x70, 1])
        let answered = Rejection(
            reason: .unknownTier, message: .register, peer: peer,
            reply: ErrorReport(code: .unexpected, message: "unknown tier 'x'"))
        #expect(
            answered.description
                == "rejected register from \(peer): unknown_tier (unknown tier 'x')")
        let silent = Rejection(reason: .late, message: .update, peer: peer, reply: nil)
        #expect(silent.description == "rejected update from \(peer): late")
    }
}
