import Foundation

/// `maestro compare`: the to-target table and the final per-tier table, as text or JSON.
public struct CompareReport: Sendable {
    public var runs: [RunData]
    public var targets: [Double]
    public var baseline: Int

    public init(runs: [RunData], targets: [Double], baseline: Int) {
        precondition(!runs.isEmpty && runs.indices.contains(baseline))
        self.runs = runs
        self.targets = targets
        self.baseline = baseline
    }

    var table: TargetTable { TargetTable(runs: runs, targets: targets, baseline: baseline) }

    public func text() -> String {
        let table = self.table
        let width = max(8, runs.map(\.name.count).max() ?? 0)
        var lines = [
            // One run has nothing to be compared with: no baseline, no ratio columns.
            "to target (best tier; first evaluated round at or above it"
                + (runs.count > 1 ? "; baseline \(runs[baseline].name))" : ")"),
            pad("target", 7) + "  " + pad("run", width) + pad("round", 8, right: true)
                + pad("bytes", 12, right: true) + pad("virtual", 10, right: true)
                + (runs.count > 1
                    ? pad("bytes/base", 12, right: true) + pad("rounds/base", 12, right: true)
                        + pad("time/base", 11, right: true) : ""),
        ]
        for (t, target) in targets.enumerated() {
            for (index, row) in table.rows.enumerated() {
                let reach = row.reaches[t]
                var line =
                    pad(index == 0 ? percent(target, digits: 1) : "", 7) + "  "
                    + pad(row.run, width)
                if reach.isReached {
                    line +=
                        pad("\(reach.round!)", 8, right: true)
                        + pad(formatBytes(reach.bytes!), 12, right: true)
                        + pad(formatTime(reach.virtualSeconds!), 10, right: true)
                } else {
                    line += pad("not reached", 30, right: true)
                }
                if runs.count == 1 {
                    // No ratio columns.
                } else if index == table.baseline {
                    line += pad("baseline", 12, right: true)
                } else {
                    let r = reach.ratios(to: table.rows[table.baseline].reaches[t])
                    line +=
                        pad(r.bytes.map { percent($0) } ?? "-", 12, right: true)
                        + pad(r.rounds.map { String(format: "%.2fx", $0) } ?? "-", 12, right: true)
                        + pad(r.time.map { String(format: "%.2fx", $0) } ?? "-", 11, right: true)
                }
                lines.append(line)
            }
        }
        for run in runs {
            let s = run.summary
            let total = s.bytesUp + s.bytesDown
            lines.append("")
            lines.append(
                "\(run.name): \(s.scenario) (\(run.strategyLabel)), seed \(s.seed), \(s.rounds) rounds, \(formatBytes(total)), virtual \(formatTime(s.virtualSeconds))"
                    + (s.denseEquivalentBytes > 0 && !run.isDense
                        ? String(
                            format: ", %.1f%% of dense-equivalent at equal rounds",
                            100 * Double(total) / Double(s.denseEquivalentBytes)) : ""))
            lines.append(
                TierTable(
                    summary: s,
                    columns: [
                        .tier, .rankFraction, .clients, .participations, .bytes, .denseBytes,
                        .ratio, .accuracy, .macs, .trainingMFLOPs, .dataReached,
                    ]
                ).text())
        }
        let seeds = seedText()
        return lines.joined(separator: "\n") + (seeds.isEmpty ? "" : "\n" + seeds)
    }

    /// The same figures as JSON: `targets` (one object per target and run; `null` where not
    /// reached) and `runs` (the final per-tier figures).
    public func json() -> String {
        let table = self.table
        var reaches: [[String: Any]] = []
        for (t, target) in targets.enumerated() {
            for (index, row) in table.rows.enumerated() {
                let reach = row.reaches[t]
                let r = reach.ratios(to: table.rows[table.baseline].reaches[t])
                reaches.append([
                    "target": target, "run": row.run, "baseline": index == table.baseline,
                    "reached": reach.isReached, "round": reach.round ?? NSNull(),
                    "bytes": reach.bytes ?? NSNull(),
                    "virtual_seconds": reach.virtualSeconds ?? NSNull(),
                    "bytes_ratio": index == table.baseline ? NSNull() : (r.bytes ?? NSNull()),
                    "rounds_ratio": index == table.baseline ? NSNull() : (r.rounds ?? NSNull()),
                    "time_ratio": index == table.baseline ? NSNull() : (r.time ?? NSNull()),
                ])
            }
        }
        let runRows: [[String: Any]] = runs.map { run in
            let s = run.summary
            return [
                "run": run.name, "directory": run.directory, "scenario": s.scenario,
                "strategy": s.strategy, "seed": s.seed, "rounds": s.rounds,
                "bytes": s.bytesUp + s.bytesDown, "dense_equivalent_bytes": s.denseEquivalentBytes,
                "virtual_seconds": s.virtualSeconds,
                "tiers": s.tiers.map { tier in
                    [
                        "tier": tier.tier, "rank_fraction": tier.rankFraction,
                        "clients": tier.clients, "participations": tier.participations,
                        "bytes": tier.bytes, "dense_equivalent_bytes": tier.denseEquivalentBytes,
                        "accuracy": tier.accuracy ?? NSNull(), "parameters": tier.parameters,
                        "macs": tier.macs ?? NSNull(),
                        "training_flops_per_sample": tier.trainingFlopsPerSample ?? NSNull(),
                        "contributing_clients": tier.contributingClients ?? NSNull(),
                        "samples": tier.samples ?? NSNull(),
                        "contributed_samples": tier.contributedSamples ?? NSNull(),
                    ] as [String: Any]
                },
            ]
        }
        let object: [String: Any] = [
            "baseline": runs[baseline].name, "targets": reaches, "runs": runRows,
            "seed_groups": seedJSON(),
        ]
        let data = try! JSONSerialization.data(
            withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
