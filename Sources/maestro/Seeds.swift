import ArgumentParser
import Foundation
import Launch
import Report

/// The most runs one `--seeds` starts.
let maximumSeedRuns = 100

/// The seeds of `--seeds`: comma-separated seeds and ranges, `1-5`, `1,3,7`, `1-3,7`, in the
/// order given.
///
/// - Throws: `ValidationError` naming the item that is not a seed or an increasing range, a
///   seed given twice, or more than ``maximumSeedRuns`` seeds.
func parseSeeds(_ text: String) throws -> [UInt64] {
    var seeds: [UInt64] = []
    for item in text.split(separator: ",", omittingEmptySubsequences: false) {
        let trimmed = item.trimmingCharacters(in: .whitespaces)
        let bounds = trimmed.split(separator: "-", omittingEmptySubsequences: false).map {
            UInt64($0.trimmingCharacters(in: .whitespaces))
        }
        guard (1...2).contains(bounds.count), let low = bounds.first ?? nil,
            let high = bounds.last ?? nil
        else {
            throw ValidationError(
                "--seeds: '\(trimmed)' is not a seed or a range of seeds (write 1-5, 1,3,7 or 1-3,7)"
            )
        }
        guard low <= high else {
            throw ValidationError(
                "--seeds: the range \(trimmed) runs backwards (write \(high)-\(low))")
        }
        guard high - low < UInt64(maximumSeedRuns), seeds.count + Int(high - low) < maximumSeedRuns
        else {
            throw ValidationError(
                "--seeds \(text): more than \(maximumSeedRuns) runs; give fewer seeds")
        }
        for seed in low...high {
            guard !seeds.contains(seed) else {
                throw ValidationError("--seeds: seed \(seed) is given twice")
            }
            seeds.append(seed)
        }
    }
    return seeds
}

/// The run folder of seed `seed` of a `--seeds` run whose folders go under `base`.
func seedFolder(_ base: String, seed: UInt64) -> String {
    (base as NSString).appendingPathComponent("seed-\(seed)")
}

extension FleetCommand {
    /// `fleet --seeds`: the scenario once per seed, one run after another, in `DIR/seed-N`
    /// (DIR: `--out`, else `runs/<scenario>-<time>`); then the figures over the seeds.
    ///
    /// Every seed's folder is checked before the first run starts, so that a folder that
    /// already holds a run stops nothing half-way.
    func runSeeds(_ seeds: [UInt64], baseline: RunData?) throws {
        let overrides = runOptions.scenario.overrides
        let scenarios = try seeds.map { seed in
            try loadScenario(scenarioFile!, overrides: overrides + [("seed", "\(seed)")])
        }
        let base = runOptions.out ?? RunFolder.defaultPath(for: scenarios[0])
        for seed in seeds {
            let folder = RunFolder(seedFolder(base, seed: seed))
            if let found = folder.completedRunFile {
                throw CommandError(
                    "\(folder.path) already holds a run (\(found)): continue it with `maestro fleet --resume \(folder.path)`, or give --seeds another --out"
                )
            }
        }
        var directories: [String] = []
        for (index, (seed, scenario)) in zip(seeds, scenarios).enumerated() {
            let directory = seedFolder(base, seed: seed)
            print("seed \(seed) (\(index + 1) of \(seeds.count)): \(directory)")
            flushOutput()
            var fleet = configuredFleet(start: .new(scenario, directory: directory))
            fleet.limits = try peerLimits.serverLimits()
            let (summary, written) = try launching { () throws(LaunchError) in try fleet.run() }
            try runOptions.finish(summary: summary, directory: written, baseline: baseline)
            directories.append(written)
            print()
        }
        // One seed: its run's savings table was the summary.
        guard seeds.count > 1 else { return }
        let runs = try loadRuns(directories)
        let report = CompareReport(
            runs: runs,
            targets: try runOptions.targets.map(parseTargets) ?? RunData.targets(of: runs),
            baseline: runs.count - 1)
        print(
            "\(scenarios[0].name), seeds \(formatSeeds(seeds)): \(seeds.count) runs in \(base)/seed-*; "
                + "compare them with `maestro compare \(base)/seed-*`")
        print(report.seedText())
    }
}
