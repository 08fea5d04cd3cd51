import Federation
import LowRank
import Transport

/// The one place where the coordinator's state maps to the checkpoint's header and back. The
/// header keeps its flat JSON layout (checkpoints written before still load); `RunTotals`
/// and `ClientStanding` are the machine's side of it.
extension CoordinatorCheckpoint.Header {
    /// The header after round `round` of a run whose current process has run `wallSeconds`
    /// and moved `statistics` (added to what its earlier processes did).
    init(
        round: Int, model: Network, totals: RunTotals, standing: ClientStanding,
        lastAccuracy: [String: Double], lastDeployed: [String: String],
        statistics: TransportStatistics, wallSeconds: Double
    ) {
        self.init(
            round: round, architecture: model.architecture, keptRanks: model.keptRanks,
            bytesUp: totals.bytesUp, bytesDown: totals.bytesDown,
            denseEquivalentBytes: totals.denseEquivalentBytes,
            virtualSeconds: totals.virtualSeconds,
            wallSeconds: totals.earlierWallSeconds + wallSeconds,
            clientComputeSeconds: totals.clientComputeSeconds,
            transportBytesSent: totals.earlierTransportBytesSent + Int(statistics.bytesSent),
            transportBytesReceived: totals.earlierTransportBytesReceived
                + Int(statistics.bytesReceived),
            tierBytes: totals.tierBytes, participations: totals.participations,
            rejected: totals.rejected, lateUpdates: totals.lateUpdates,
            lastAccuracy: lastAccuracy, cooldownUntil: standing.cooldownUntil,
            unresponsive: standing.unresponsive.sorted(),
            contributors: standing.contributors.sorted(),
            deployedBudgets: lastDeployed.isEmpty ? nil : lastDeployed,
            timeoutStreaks: standing.timeoutStreaks.isEmpty ? nil : standing.timeoutStreaks)
    }

    /// The run's totals as the checkpoint left them (its wall time and transport bytes are
    /// the resumed run's earlier ones).
    var totals: RunTotals {
        RunTotals(
            bytesUp: bytesUp, bytesDown: bytesDown, denseEquivalentBytes: denseEquivalentBytes,
            virtualSeconds: virtualSeconds, tierBytes: tierBytes, participations: participations,
            rejected: rejected, lateUpdates: lateUpdates,
            clientComputeSeconds: clientComputeSeconds, earlierWallSeconds: wallSeconds,
            earlierTransportBytesSent: transportBytesSent,
            earlierTransportBytesReceived: transportBytesReceived)
    }

    /// Who may be selected, as the checkpoint left it (fields absent in older checkpoints
    /// read as none).
    var standing: ClientStanding {
        ClientStanding(
            unresponsive: Set(unresponsive ?? []), cooldownUntil: cooldownUntil ?? [:],
            timeoutStreaks: timeoutStreaks ?? [:], contributors: Set(contributors ?? []))
    }
}

extension CoordinatorMachine {
    /// Continues from `checkpoint`: the model, the server optimiser, the deployed average and
    /// every counter as they were after its round.
    mutating func restore(from checkpoint: CoordinatorCheckpoint) throws(CoordinatorError) {
        let header = checkpoint.header
        guard header.architecture == global.architecture else {
            throw .checkpointMismatch(
                reason:
                    "the checkpoint's model is not the scenario's \(scenario.modelDescription.summary)"
            )
        }
        guard header.round <= scenario.rounds else {
            throw .checkpointMismatch(
                reason:
                    "the checkpoint is at round \(header.round), the scenario has \(scenario.rounds)"
            )
        }
        global = Network(
            architecture: header.architecture, parameters: checkpoint.parameters,
            keptRanks: header.keptRanks)
        serverState = checkpoint.serverState
        // A scenario that no longer averages deploys the server's model again.
        averaged =
            scenario.evaluation.averageDecay > 0
            ? checkpoint.averagedParameters.map {
                Network(
                    architecture: header.architecture, parameters: $0, keptRanks: header.keptRanks)
            } : nil
        round = header.round
        totals = header.totals
        standing = header.standing
        lastAccuracy = header.lastAccuracy
        lastDeployed = header.deployedBudgets ?? [:]
        completedRound = header.round
    }
}
