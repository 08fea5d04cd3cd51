import Fleet
import Foundation
import Report
import RunRecords
import Runtime

/// The live line per round of `fleet` and `coordinator`.
struct ProgressPrinter: Sendable {
    let scenario: Scenario

    func print(_ round: RoundMetrics) {
        var line = String(format: "round %3d/%d", round.round, scenario.rounds)
        if let accuracy = round.accuracyByTier {
            line +=
                "  acc "
                + scenario.tiers.map {
                    String(format: "%@ %.1f%%", $0.name, 100 * (accuracy[$0.name] ?? 0))
                }.joined(separator: " ")
        }
        if let loss = round.trainingLoss { line += String(format: "  loss %.3f", loss) }
        let saved =
            round.cumulativeDenseEquivalentBytes > 0
            ? 100
                * (1 - Double(round.cumulativeBytes) / Double(round.cumulativeDenseEquivalentBytes))
            : 0
        line += "  bytes " + formatBytes(round.bytesUp + round.bytesDown)
        line += String(format: "  saved %.1f%%", saved)
        line += "  clients \(round.participants.count)/\(round.selected.count)"
        if !round.droppedDeadline.isEmpty || !round.droppedTimeout.isEmpty {
            line += " (dropped \(round.droppedDeadline.count + round.droppedTimeout.count))"
        }
        line += "  virtual " + formatDuration(round.virtualTime)
        line += String(format: "  wall %.1fs", round.wallSeconds)
        if scenario.isLowRank {
            line += "  ranks " + round.ranks.map(String.init).joined(separator: "/")
        }
        Swift.print(line)
        flushOutput()
    }
}

/// The registration progress line of a large fleet.
final class RegistrationPrinter: @unchecked Sendable {
    // Called only from the coordinator's thread; the class exists to hold the start time.
    private let started = ProcessClock.monotonic.seconds
    private var printed = false

    func print(registered: Int, needed: Int) {
        let seconds = ProcessClock.monotonic.seconds - started
        if registered >= needed {
            guard printed || seconds >= 1 else { return }
            Swift.print(String(format: "registered %d clients in %.1f s", registered, seconds))
        } else {
            guard seconds >= 0.5 else { return }
            printed = true
            Swift.print(
                String(
                    format: "registering: %d of %d clients (%.1f s)", registered, needed, seconds))
        }
        flushOutput()
    }
}

/// The table `fleet` prints at the end: per tier, bytes vs dense FedAvg and accuracy.
struct SavingsTable {
    let summary: RunSummary

    func render() -> String {
        // With deployment by validation a tier may run a smaller tier's budget: say whose.
        let table = TierTable(
            summary: summary,
            columns: [
                .tier, .rankFraction, .clients, .participations, .bytes, .denseBytes, .ratio,
                .accuracy, .parameters, .deploys, .dataReached,
            ])
        var lines = [
            "\(summary.scenario) (\(summary.strategy)): \(summary.rounds) rounds, wall \(String(format: "%.0f", summary.wallSeconds)) s, virtual \(formatDuration(summary.virtualSeconds))",
            table.text(),
        ]
        let total = summary.bytesUp + summary.bytesDown
        lines.append(
            String(
                format:
                    "total: %@ (up %@, down %@) vs %@ dense-equivalent: %.1f%% of dense, %.1f%% saved (at equal rounds)",
                formatBytes(total) as NSString, formatBytes(summary.bytesUp) as NSString,
                formatBytes(summary.bytesDown) as NSString,
                formatBytes(summary.denseEquivalentBytes) as NSString,
                summary.denseEquivalentBytes > 0
                    ? 100 * Double(total) / Double(summary.denseEquivalentBytes) : 0,
                100 * summary.savingsRatio))
        if let coverage = WidthCoverageTable(summary: summary) { lines.append(coverage.text()) }
        if !summary.rejectedMessages.isEmpty {
            lines.append(
                "rejected messages: "
                    + summary.rejectedMessages.sorted { $0.key < $1.key }.map {
                        "\($0.key) \($0.value)"
                    }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}
