import Federation
import LowRank
import Transport

/// The coordinator's state in the checkpoint's header: `RunTotals` and `ClientStanding` are
/// encoded whole, into the header's flat JSON object (checkpoints written before still load).
extension CoordinatorCheckpoint.Header {
    /// The header after round `round` of a run whose current process has run `wallSeconds`
    /// and moved `statistics` (added to what its earlier processes did).
    init(
        round: Int, model: Network, totals: RunTotals, standing: ClientStanding,
        lastAccuracy: [String: Double], lastDeployed: [String: String],
        statistics: TransportStatistics, wallSeconds: Double
    ) {
        var totals = totals
        totals.earlierWallSeconds += wallSeconds
        totals.earlierTransportBytesSent += Int(statistics.bytesSent)
        totals.earlierTransportBytesReceived += Int(statistics.bytesReceived)
        self.init(
            round: round, architecture: model.architecture, keptRanks: model.keptRanks,
            totals: totals, lastAccuracy: lastAccuracy, standing: standing,
            deployedBudgets: lastDeployed.isEmpty ? nil : lastDeployed,
            widthRoundsTrained: totals.widthCoverage?.roundsTrained)
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
        if let counts = header.widthRoundsTrained {
            guard let spaces = scenario.channelSpaces(of: global.architecture),
                let coverage = WidthCoverage(
                    roundsTrained: counts, spaces: spaces, rounds: header.round)
            else {
                throw .checkpointMismatch(
                    reason: "its width coverage does not fit the scenario's "
                        + "\(scenario.model.strategy.rawValue) model over \(header.round) rounds")
            }
            totals.widthCoverage = coverage
        }
        standing = header.standing
        lastAccuracy = header.lastAccuracy
        lastDeployed = header.deployedBudgets ?? [:]
        completedRound = header.round
    }
}
