import Foundation
import RunRecords

/// The sample mean and standard deviation of one figure over the runs of a seed group.
public struct MeanDeviation: Sendable, Equatable {
    /// How many values (seeds) the figure has.
    public var count: Int
    public var mean: Double
    /// The sample standard deviation (divisor n − 1); 0 for a single value.
    public var deviation: Double

    /// `nil` for no values.
    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        count = values.count
        mean = values.reduce(0, +) / Double(values.count)
        let mean = self.mean
        deviation =
            values.count > 1
            ? (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1))
                .squareRoot() : 0
    }

    /// `mean ± deviation`, each formatted by `format`; the mean alone for a single value.
    public func text(_ format: (Double) -> String) -> String {
        count > 1 ? "\(format(mean)) ± \(format(deviation))" : format(mean)
    }
}

/// Runs of one scenario that differ only in their seed, in the order they were given.
///
/// Two runs are of the same scenario when their run folders' `scenario.yaml` are the same
/// scenario but for `seed` (name, data, model, training, fleet, rounds: everything else). A run
/// whose folder holds no readable scenario, or whose seed the group already has, is a group of
/// its own.
public struct SeedGroup: Sendable {
    public var runs: [RunData]

    public var seeds: [UInt64] { runs.map(\.summary.seed) }
    /// More than one seed: figures are reported as mean ± standard deviation.
    public var isGroup: Bool { runs.count > 1 }

    /// `smoke, seeds 1-3` for a group; the run's name for a single run.
    public var name: String {
        isGroup ? "\(runs[0].summary.scenario), seeds \(formatSeeds(seeds))" : runs[0].name
    }

    /// Groups `runs` by scenario identity; groups keep the order of their first run.
    public static func grouping(_ runs: [RunData]) -> [SeedGroup] {
        var groups: [SeedGroup] = []
        for run in runs {
            if let identity = run.scenarioIdentity,
                let index = groups.firstIndex(where: {
                    $0.runs[0].scenarioIdentity == identity
                        && !$0.seeds.contains(run.summary.seed)
                })
            {
                groups[index].runs.append(run)
            } else {
                groups.append(SeedGroup(runs: [run]))
            }
        }
        return groups
    }

    /// Over the group's runs that reached `target`: how many did, and the mean ± deviation of
    /// their round, bytes and virtual time at that point.
    public func reach(
        _ target: Double
    ) -> (reached: Int, round: MeanDeviation?, bytes: MeanDeviation?, time: MeanDeviation?) {
        let reaches = runs.map { TargetReach.first(target, in: $0.rounds) }.filter(\.isReached)
        return (
            reaches.count, MeanDeviation(reaches.map { Double($0.round!) }),
            MeanDeviation(reaches.map { Double($0.bytes!) }),
            MeanDeviation(reaches.map { $0.virtualSeconds! })
        )
    }

    /// A figure of each run's summary, over the group.
    public func figure(_ value: (RunSummary) -> Double) -> MeanDeviation {
        MeanDeviation(runs.map { value($0.summary) })!
    }

    /// A figure of one tier's summary, over the runs that have it (`nil`: none has).
    public func tierFigure(
        _ tier: String, _ value: (RunSummary.TierSummary) -> Double?
    ) -> MeanDeviation? {
        MeanDeviation(
            runs.compactMap { run in run.summary.tiers.first { $0.tier == tier }.flatMap(value) })
    }
}

/// Seeds as a user writes them: `1-5` for consecutive seeds, `1, 3, 7` otherwise (`1-3, 7`).
public func formatSeeds(_ seeds: [UInt64]) -> String {
    var parts: [String] = []
    var index = 0
    while index < seeds.count {
        var end = index
        while end + 1 < seeds.count, seeds[end] < UInt64.max, seeds[end + 1] == seeds[end] + 1 {
            end += 1
        }
        parts.append(end > index ? "\(seeds[index])-\(seeds[end])" : "\(seeds[index])")
        index = end + 1
    }
    return parts.joined(separator: ", ")
}

/// The tables over seeds of a set of runs, as rows of cells: rendered as text by `compare`
/// and as HTML by `report`.
struct SeedTables {
    let groups: [SeedGroup]
    let targets: [Double]
    /// The group of the baseline run.
    let base: Int?

    init(runs: [RunData], targets: [Double], baseline: Int) {
        groups = SeedGroup.grouping(runs)
        self.targets = targets
        base = groups.firstIndex { group in
            group.runs.contains { $0.directory == runs[baseline].directory }
        }
    }

    /// Whether some scenario ran with more than one seed.
    var isEmpty: Bool { !groups.contains(where: \.isGroup) }

    var caption: String {
        "over seeds (mean ± sample standard deviation over the n seeds of each scenario; "
            + "to a target: over the seeds that reached it"
            + (groups.count > 1 ? "; baseline \(groups[base ?? 0].name))" : ")")
    }

    /// The to-target table, heading first: one row per target and group.
    var targetRows: [[String]] {
        var rows = [
            ["target", "runs", "n", "reached", "round", "bytes", "virtual"]
                + (groups.count > 1 ? ["bytes/base"] : [])
        ]
        for target in targets {
            let baseBytes = base.flatMap { groups[$0].reach(target).bytes?.mean }
            for (index, group) in groups.enumerated() {
                let reach = group.reach(target)
                var row = [
                    index == 0 ? percent(target, digits: 1) : "", group.name,
                    "\(group.runs.count)", "\(reach.reached)/\(group.runs.count)",
                    reach.round?.text { String(format: "%.1f", $0) } ?? "-",
                    reach.bytes?.text { formatBytes(Int($0.rounded())) } ?? "-",
                    reach.time?.text(formatTime) ?? "-",
                ]
                if groups.count > 1 {
                    row.append(
                        index == base
                            ? "baseline"
                            : (reach.bytes.flatMap { mine in
                                baseBytes.map { percent(mine.mean / $0) }
                            } ?? "-"))
                }
                rows.append(row)
            }
        }
        return rows
    }

    /// `smoke, seeds 1-2 (orderedLoD), n = 2: 12 rounds, 4.10 MB ± 0.01 MB, virtual …`.
    func summaryLine(_ group: SeedGroup) -> String {
        let first = group.runs[0].summary
        let bytes = group.figure { Double($0.bytesUp + $0.bytesDown) }
        return
            "\(group.name) (\(first.strategy)), n = \(group.runs.count): \(first.rounds) rounds, "
            + bytes.text { formatBytes(Int($0.rounded())) } + ", virtual "
            + group.figure(\.virtualSeconds).text(formatTime)
    }

    /// A group's final per-tier figures, heading first.
    func tierRows(_ group: SeedGroup) -> [[String]] {
        var rows = [
            [
                "tier", "p", "clients", "participations", "bytes", "accuracy", "MACs",
                "train MFLOP/sample",
            ]
        ]
        for tier in group.runs[0].summary.tiers {
            let name = tier.tier
            rows.append([
                name, String(format: "%.3f", tier.rankFraction), "\(tier.clients)",
                group.tierFigure(name) { Double($0.participations) }?.text {
                    String(format: "%.1f", $0)
                } ?? "-",
                group.tierFigure(name) { Double($0.bytes) }?.text {
                    formatBytes(Int($0.rounded()))
                } ?? "-",
                group.tierFigure(name, \.accuracy)?.text { percent($0, digits: 2) } ?? "-",
                group.tierFigure(name) { $0.macs.map(Double.init) }?.text {
                    String(format: "%.0f", $0)
                } ?? "-",
                group.tierFigure(name, \.trainingFlopsPerSample)?.text {
                    String(format: "%.2f", $0 / 1e6)
                } ?? "-",
            ])
        }
        return rows
    }

    /// Rows as aligned text: column `left` and before left-aligned, the rest right-aligned.
    static func text(_ rows: [[String]], left: Int) -> String {
        let widths = rows[0].indices.map { column in
            max(rows.map { $0[column].count }.max() ?? 0, column == 0 ? 8 : 0)
        }
        return rows.map { row in
            row.indices.map { pad(row[$0], widths[$0], right: $0 > left) }.joined(separator: "  ")
                .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }.joined(separator: "\n")
    }

    /// The tables as text, empty when no scenario ran with more than one seed.
    var text: String {
        guard !isEmpty else { return "" }
        var lines = ["", caption, Self.text(targetRows, left: 1)]
        for group in groups where group.isGroup {
            lines += ["", summaryLine(group), Self.text(tierRows(group), left: 0)]
        }
        return lines.joined(separator: "\n")
    }
}

extension CompareReport {
    /// The figures over seeds (``SeedTables``), empty when every run is a group of its own.
    public func seedText() -> String {
        SeedTables(runs: runs, targets: targets, baseline: baseline).text
    }

    /// The seed groups as JSON objects: name, scenario, strategy, seeds, n, the to-target
    /// figures and the final per-tier figures, each as `{mean, sd, n}` (or `null`).
    func seedJSON() -> [[String: Any]] {
        func object(_ value: MeanDeviation?) -> Any {
            guard let value else { return NSNull() }
            return ["mean": value.mean, "sd": value.deviation, "n": value.count]
        }
        return SeedGroup.grouping(runs).map { group in
            let first = group.runs[0].summary
            return [
                "name": group.name, "scenario": first.scenario, "strategy": first.strategy,
                "seeds": group.seeds, "n": group.runs.count,
                "runs": group.runs.map(\.name),
                "bytes": object(group.figure { Double($0.bytesUp + $0.bytesDown) }),
                "virtual_seconds": object(group.figure(\.virtualSeconds)),
                "targets": targets.map { target in
                    let reach = group.reach(target)
                    return [
                        "target": target, "reached": reach.reached, "round": object(reach.round),
                        "bytes": object(reach.bytes), "virtual_seconds": object(reach.time),
                    ] as [String: Any]
                },
                "tiers": first.tiers.map { tier in
                    [
                        "tier": tier.tier, "rank_fraction": tier.rankFraction,
                        "accuracy": object(group.tierFigure(tier.tier, \.accuracy)),
                        "bytes": object(group.tierFigure(tier.tier) { Double($0.bytes) }),
                        "participations": object(
                            group.tierFigure(tier.tier) { Double($0.participations) }),
                        "macs": object(group.tierFigure(tier.tier) { $0.macs.map(Double.init) }),
                        "training_flops_per_sample": object(
                            group.tierFigure(tier.tier, \.trainingFlopsPerSample)),
                    ] as [String: Any]
                },
            ] as [String: Any]
        }
    }
}
