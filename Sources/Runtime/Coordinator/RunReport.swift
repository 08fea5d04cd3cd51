import Federation
import Fleet
import LowRank
import RunRecords
import Transport

/// What the coordinator's state reports about its run: the summary (`summary.json`), the
/// checkpoint for `--resume`, the final model's truncation curve and its metadata.
///
/// A snapshot of the machine's state (`CoordinatorMachine.report`), read only.
struct RunReport {
    let scenario: Scenario
    /// The last round started (the current one while it runs).
    let round: Int
    let global: Network
    let serverState: ServerOptimizerState
    let averaged: Network?
    let clients: ClientTable
    let standing: ClientStanding
    let totals: RunTotals
    let lastAccuracy: [String: Double]
    let lastDeployed: [String: String]
    let evaluationSet: TrainingSamples
    /// Recomputes batch-norm statistics for each point of the truncation curve.
    let calibration: BatchNormCalibration

    /// The model tiers deploy: the moving average of the server's model, or the model.
    var deployedModel: Network { averaged ?? global }

    /// Budgets of tier `tierIndex` for the current global ranks, in the current round.
    func budgets(tierIndex: Int) -> [Int] {
        RoundLogic(scenario: scenario).budgets(
            tierIndex: tierIndex, keptRanks: global.keptRanks, round: round)
    }

    /// The state after the current round, for `--resume`.
    func checkpoint(statistics: TransportStatistics, wallSeconds: Double) -> CoordinatorCheckpoint {
        CoordinatorCheckpoint(
            header: CoordinatorCheckpoint.Header(
                round: round, model: global, totals: totals, standing: standing,
                lastAccuracy: lastAccuracy, lastDeployed: lastDeployed,
                statistics: statistics, wallSeconds: wallSeconds),
            parameters: global.parameters, serverState: serverState,
            averagedParameters: averaged?.parameters)
    }

    /// The final (deployed) model's accuracy, parameters and MACs with every layer cut to each
    /// of `TruncationPoint.fractions` of its kept rank (one point for a dense model).
    ///
    /// Under a width strategy, the points are the prefix sub-models at those width fractions.
    func truncationCurve() -> [TruncationPoint] {
        let model = deployedModel
        if let spaces = scenario.channelSpaces(of: model.architecture) {
            let subs = TruncationPoint.fractions.map {
                calibration.calibrated(WidthPlan.prefix(spaces, fraction: $0).gather(model))
            }
            let results = RoundLogic.evaluateRows(subs, on: evaluationSet)
            return zip(TruncationPoint.fractions, zip(subs, results)).map { fraction, pair in
                TruncationPoint(
                    rankFraction: fraction, accuracy: pair.1.accuracy,
                    parameters: pair.0.parameterCount(ranks: []), macs: pair.0.macs(ranks: []),
                    ranks: [])
            }
        }
        let fractions = scenario.isLowRank ? TruncationPoint.fractions : [1]
        let rankSets = fractions.map { model.ranks(atFraction: $0) }
        // With batch normalisation, each point with statistics of its own ranks.
        let results =
            calibration.applies(to: model)
            ? BatchNormCalibration.evaluate(
                rankSets.map {
                    calibration.calibrated(BatchNormCalibration.cut(model, toRanks: $0))
                },
                on: evaluationSet
            ).map { ($0.accuracy, $0.loss) }
            : model.evaluate(
                on: evaluationSet, rankSets: rankSets,
                threads: CoordinatorMachine.evaluationThreads)
        return zip(fractions, zip(rankSets, results)).map { fraction, pair in
            TruncationPoint(
                rankFraction: fraction, accuracy: pair.1.accuracy,
                parameters: model.parameterCount(ranks: pair.0), macs: model.macs(ranks: pair.0),
                ranks: pair.0)
        }
    }

    /// The final model file's metadata.
    var modelMetadata: [String: String] {
        [
            "dataset": scenario.dataset.name, "dataDirectory": scenario.dataDirectory,
            "model": scenario.modelDescription.summary,
            "variant": scenario.isLowRank ? "lod" : "dense", "seed": "\(scenario.seed)",
            "scenario": scenario.name,
            "rounds": "\(scenario.rounds)",
        ]
    }

    /// The run's summary.
    func summary(statistics: TransportStatistics, wallSeconds: Double) -> RunSummary {
        let counts = scenario.clientsPerTier
        var samples = scenario.tiers.map { _ in (all: 0, contributed: 0, clients: 0) }
        clients.forEach { client in
            guard samples.indices.contains(client.tierIndex) else { return }
            samples[client.tierIndex].all += client.sampleCount
            if standing.contributors.contains(client.id) {
                samples[client.tierIndex].contributed += client.sampleCount
                samples[client.tierIndex].clients += 1
            }
        }
        let spaces = scenario.channelSpaces(of: global.architecture)
        let tiers = scenario.tiers.enumerated().map { index, tier in
            let ranks = scenario.isLowRank ? budgets(tierIndex: index) : []
            // Under a width strategy: the tier's trained and deployed sub-models.
            let trained = spaces.map {
                scenario.widthPlan($0, tier: tier, round: max(round, 1)).gather(global)
            }
            let deployedWidth = spaces.map {
                scenario.deployedWidthPlan($0, tier: tier).gather(deployedModel)
            }
            let deployedTier = lastDeployed[tier.name].flatMap { name in
                scenario.tiers.firstIndex { $0.name == name }
            }
            let deployedRanks = deployedTier.map { budgets(tierIndex: $0) }
            let bytes = totals.tierBytes[tier.name] ?? RoundMetrics.TierBytes()
            var summary = RunSummary.TierSummary(
                tier: tier.name, rankFraction: tier.rankFraction, clients: counts[index],
                participations: totals.participations[tier.name] ?? 0,
                bytes: bytes.up + bytes.down,
                denseEquivalentBytes: bytes.denseEquivalent, accuracy: lastAccuracy[tier.name],
                ranks: ranks,
                parameters: trained?.parameterCount(ranks: [])
                    ?? global.parameterCount(ranks: scenario.isLowRank ? ranks : []),
                trainingFlopsPerSample: trained?.trainingStepFLOPs(batch: 1)
                    ?? global.trainingStepFLOPs(
                        batch: 1, ranks: scenario.isLowRank ? ranks : nil,
                        frozenLayers: scenario.frozenLayers(
                            of: tier, architecture: global.architecture)),
                macs: deployedWidth?.macs(ranks: [])
                    ?? global.macs(ranks: deployedRanks ?? (scenario.isLowRank ? ranks : [])),
                contributingClients: samples[index].clients,
                samples: samples[index].all, contributedSamples: samples[index].contributed)
            summary.deployedBudget = lastDeployed[tier.name].map {
                scenario.deployedBudgetLabel($0, round: round)
            }
            summary.deployedRanks = deployedRanks
            return summary
        }
        let coverage = spaces.map { spaces in
            (totals.widthCoverage ?? WidthCoverage(spaces: spaces)).layers(of: spaces).map {
                RunSummary.WidthLayerCoverage(
                    layer: $0.layer, kind: $0.kind, channels: $0.channels,
                    trainedChannels: $0.trained, coverage: $0.fraction,
                    roundsMin: $0.minimumRounds, roundsMean: $0.meanRounds,
                    roundsMax: $0.maximumRounds)
            }
        }
        let moved = Double(totals.bytesMoved)
        let dense = totals.denseEquivalentBytes
        let savings: Double = dense > 0 ? 1 - moved / Double(dense) : 0
        var summary = RunSummary(
            scenario: scenario.name, strategy: scenario.model.strategy.rawValue, rounds: round,
            seed: scenario.seed,
            finalAccuracyByTier: lastAccuracy, bytesUp: totals.bytesUp,
            bytesDown: totals.bytesDown, denseEquivalentBytes: dense,
            savingsRatio: savings,
            wallSeconds: totals.earlierWallSeconds + wallSeconds,
            virtualSeconds: totals.virtualSeconds,
            finalRanks: global.keptRanks, tiers: tiers, rejectedMessages: totals.rejected,
            lateUpdates: totals.lateUpdates, clientComputeSeconds: totals.clientComputeSeconds,
            transportBytesSent: totals.earlierTransportBytesSent + Int(statistics.bytesSent),
            transportBytesReceived: totals.earlierTransportBytesReceived
                + Int(statistics.bytesReceived),
            modelFile: RunRecorder.finalModelFile)
        summary.widthCoverage = coverage
        return summary
    }
}

extension CoordinatorMachine {
    /// What the run reports now.
    var report: RunReport {
        RunReport(
            scenario: scenario, round: round, global: global, serverState: serverState,
            averaged: averaged, clients: clients, standing: standing, totals: totals,
            lastAccuracy: lastAccuracy, lastDeployed: lastDeployed, evaluationSet: evaluationSet,
            calibration: calibration)
    }

    /// The state after the current round, for `--resume`.
    func checkpoint(statistics: TransportStatistics, wallSeconds: Double) -> CoordinatorCheckpoint {
        report.checkpoint(statistics: statistics, wallSeconds: wallSeconds)
    }

    /// The run's summary.
    func summary(statistics: TransportStatistics, wallSeconds: Double) -> RunSummary {
        report.summary(statistics: statistics, wallSeconds: wallSeconds)
    }

    /// The final model's truncation curve (`RunReport.truncationCurve()`).
    func truncationCurve() -> [TruncationPoint] { report.truncationCurve() }

    /// The final model file's metadata.
    var modelMetadata: [String: String] { report.modelMetadata }
}
