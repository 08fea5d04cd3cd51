import RunRecords

/// When a run first reached an accuracy: the first evaluated round at which its best tier
/// (the most accurate tier's model) was at or above the target, and what it had cost by then.
///
/// Nothing is interpolated between evaluations: a run evaluated every 10 rounds reaches a
/// target at a multiple of 10. A target never reached has no round, bytes or time, and
/// reports say "not reached" (never 0).
public struct TargetReach: Sendable, Equatable {
    public var target: Double
    public var round: Int?
    /// Cumulative wire bytes, up and down, including control messages, through `round`.
    public var bytes: Int?
    /// Cumulative virtual (device) time through `round`, in seconds.
    public var virtualSeconds: Double?

    public init(target: Double, round: Int?, bytes: Int?, virtualSeconds: Double?) {
        self.target = target
        self.round = round
        self.bytes = bytes
        self.virtualSeconds = virtualSeconds
    }

    public var isReached: Bool { round != nil }

    /// Where `rounds` (one run's metrics, in round order) first reached `target`.
    public static func first(_ target: Double, in rounds: [RoundMetrics]) -> TargetReach {
        for round in rounds {
            guard let best = RunData.bestAccuracy(round), best >= target else { continue }
            return TargetReach(
                target: target, round: round.round, bytes: round.cumulativeBytes,
                virtualSeconds: round.virtualTime)
        }
        return TargetReach(target: target, round: nil, bytes: nil, virtualSeconds: nil)
    }

    /// This reach over the baseline's, for bytes, rounds and virtual time; `nil` where
    /// either did not reach the target (or the baseline's figure is 0).
    public func ratios(to baseline: TargetReach) -> (bytes: Double?, rounds: Double?, time: Double?)
    {
        func ratio(_ a: Double?, _ b: Double?) -> Double? {
            guard let a, let b, b > 0 else { return nil }
            return a / b
        }
        return (
            ratio(bytes.map(Double.init), baseline.bytes.map(Double.init)),
            ratio(round.map(Double.init), baseline.round.map(Double.init)),
            ratio(virtualSeconds, baseline.virtualSeconds)
        )
    }
}

/// The to-target table of several runs against one of them.
public struct TargetTable: Sendable {
    public struct Row: Sendable {
        public var run: String
        public var reaches: [TargetReach]
    }

    public var targets: [Double]
    public var rows: [Row]
    /// The index of the baseline run in `rows`.
    public var baseline: Int

    public init(runs: [RunData], targets: [Double], baseline: Int) {
        self.targets = targets
        self.baseline = baseline
        rows = runs.map { run in
            Row(run: run.name, reaches: targets.map { TargetReach.first($0, in: run.rounds) })
        }
    }

    /// The default baseline: the first dense FedAvg run, else the last run.
    public static func defaultBaseline(_ runs: [RunData]) -> Int {
        runs.firstIndex(where: \.isDense) ?? runs.count - 1
    }
}

/// The savings table's at-equal-accuracy line: for each target, this run's bytes to reach it
/// over the baseline's.
public func equalAccuracyLine(run: RunData, baseline: RunData, targets: [Double]) -> String {
    let parts = targets.map { target -> String in
        let mine = TargetReach.first(target, in: run.rounds)
        let theirs = TargetReach.first(target, in: baseline.rounds)
        let label = percent(target, digits: 0)
        switch (mine.round, theirs.round) {
        case (nil, nil): return "\(label) reached by neither"
        case (nil, let b?): return "\(label) not reached (baseline: round \(b))"
        case (let a?, nil): return "\(label) at round \(a), baseline never"
        case (let a?, let b?):
            let ratio = mine.ratios(to: theirs).bytes.map { percent($0) } ?? "-"
            return
                "\(label) \(ratio) of the bytes (\(formatBytes(mine.bytes!)) at round \(a) vs \(formatBytes(theirs.bytes!)) at round \(b))"
        }
    }
    return "at equal accuracy (best tier) vs \(baseline.name): " + parts.joined(separator: "; ")
}
