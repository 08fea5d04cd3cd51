import Federation
import RunRecords

/// The run's counters over every round: the byte ledger's totals (what moved, and what dense
/// FedAvg would have moved), participations, rejections, late updates, client compute and
/// virtual time, and what the run's earlier processes measured before it was resumed.
///
/// One value for the summary and the checkpoint, which encodes it whole into its header's
/// flat JSON object under the keys below (the layout checkpoints have always had).
struct RunTotals: Codable, Sendable, Equatable {
    var bytesUp = 0
    var bytesDown = 0
    var denseEquivalentBytes = 0
    var virtualSeconds = 0.0
    var tierBytes: [String: RoundMetrics.TierBytes] = [:]
    /// Aggregated updates per tier.
    var participations: [String: Int] = [:]
    /// Frames refused, by `RejectionReason` raw value.
    var rejected: [String: Int] = [:]
    var lateUpdates = 0
    var clientComputeSeconds = 0.0
    /// Wall seconds and transport bytes of the run's processes before this one (a resume).
    var earlierWallSeconds = 0.0
    var earlierTransportBytesSent = 0
    var earlierTransportBytesReceived = 0
    /// Under a width strategy, the rounds each channel was trained (`nil` until a round is
    /// aggregated, and for other strategies).
    var widthCoverage: WidthCoverage? = nil

    /// The checkpoint header's keys. Its wall time and transport bytes are the whole run's up
    /// to the checkpoint: what a process resumed from it ran before it.
    enum CodingKeys: String, CodingKey {
        case bytesUp, bytesDown, denseEquivalentBytes, virtualSeconds, tierBytes
        case participations, rejected, lateUpdates, clientComputeSeconds
        case earlierWallSeconds = "wallSeconds"
        case earlierTransportBytesSent = "transportBytesSent"
        case earlierTransportBytesReceived = "transportBytesReceived"
    }

    /// Bytes moved both ways.
    var bytesMoved: Int { bytesUp + bytesDown }

    /// Frames refused, over all reasons.
    var rejectedCount: Int { rejected.values.reduce(0, +) }

    /// Counts one rejection in the run and in the round.
    mutating func count(_ reason: RejectionReason, in metrics: inout RoundMetrics) {
        metrics.rejected[reason.rawValue, default: 0] += 1
        rejected[reason.rawValue, default: 0] += 1
    }

    /// Counts one frame of the byte ledger, in the run and, when it belongs to the round
    /// `metrics` describes, in the round (a registration answered as the first round starts
    /// belongs to round 0: the run's totals only). Control messages cost the same under dense
    /// FedAvg: they count at their size (TRAIN and UPDATE count separately, at dense size).
    /// Returns the ledger row.
    mutating func count(
        _ bytes: Int, _ direction: LedgerEntry.Direction, message: LedgerMessage, client: Int,
        tier: String, round: Int, in metrics: inout RoundMetrics
    ) -> LedgerEntry {
        let inRound = round == metrics.round
        switch direction {
        case .up:
            if inRound { metrics.bytesUp += bytes }
            bytesUp += bytes
        case .down:
            if inRound { metrics.bytesDown += bytes }
            bytesDown += bytes
        }
        addTierBytes(tier: tier, inRound: inRound, in: &metrics) { entry in
            if direction == .up { entry.up += bytes } else { entry.down += bytes }
        }
        if !message.carriesModel {
            countDenseEquivalent(bytes, tier: tier, round: round, in: &metrics)
        }
        return LedgerEntry(
            round: round, client: client, tier: tier, direction: direction,
            message: message.rawValue, bytes: bytes)
    }

    /// Adds what dense FedAvg would have moved for one message.
    mutating func countDenseEquivalent(
        _ bytes: Int, tier: String, round: Int, in metrics: inout RoundMetrics
    ) {
        let inRound = round == metrics.round
        if inRound { metrics.denseEquivalentBytes += bytes }
        denseEquivalentBytes += bytes
        addTierBytes(tier: tier, inRound: inRound, in: &metrics) { $0.denseEquivalent += bytes }
    }

    private mutating func addTierBytes(
        tier: String, inRound: Bool, in metrics: inout RoundMetrics,
        _ update: (inout RoundMetrics.TierBytes) -> Void
    ) {
        if inRound { update(&metrics.bytesByTier[tier, default: RoundMetrics.TierBytes()]) }
        update(&tierBytes[tier, default: RoundMetrics.TierBytes()])
    }
}
