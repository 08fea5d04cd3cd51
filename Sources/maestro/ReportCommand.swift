import ArgumentParser
import Foundation
import Report
import RunRecords
import Runtime

/// Options shared by `report` and `compare`.
struct ComparisonOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Target accuracies of the best tier, comma-separated, as fractions or percent.",
            valueName: "list"))
    var targets: String = "0.80,0.85,0.87"

    @Option(
        help:
            "The run the others are compared with: a run directory given above or its name (default: the first dense FedAvg run, else the last run)."
    )
    var baseline: String?

    func parsedTargets() throws -> [Double] {
        try parseTargets(targets)
    }

    func baselineIndex(_ runs: [RunData]) throws -> Int {
        guard let baseline else { return TargetTable.defaultBaseline(runs) }
        let standard = URL(fileURLWithPath: baseline).standardizedFileURL.path
        if let index = runs.firstIndex(where: {
            URL(fileURLWithPath: $0.directory).standardizedFileURL.path == standard
                || $0.name == baseline
        }) {
            return index
        }
        throw ValidationError(
            "--baseline \(baseline): not one of the runs given (\(runs.map(\.name).joined(separator: ", ")))"
        )
    }
}

/// Target accuracies from "0.8,0.85" or "80,85" (each in (0, 100]).
func parseTargets(_ text: String) throws -> [Double] {
    let values = try text.split(separator: ",").map { item -> Double in
        let trimmed = item.trimmingCharacters(in: .whitespaces).replacingOccurrences(
            of: "%", with: "")
        guard let value = Double(trimmed), value > 0, value <= 100 else {
            throw ValidationError(
                "--targets: '\(item)' is not an accuracy (a fraction in (0, 1] or a percentage in (1, 100])"
            )
        }
        return value > 1 ? value / 100 : value
    }
    guard !values.isEmpty else { throw ValidationError("--targets: give at least one accuracy") }
    return values
}

/// Loads run directories for a report, naming the directory in every error.
func loadRuns(_ directories: [String]) throws -> [RunData] {
    var runs: [RunData] = []
    for directory in directories {
        do {
            var run = try RunData.load(
                directory: directory, architecture: { $0.networkArchitecture })
            // Two folders with the same last component (runs/a/lod, runs/b/lod) stay distinct.
            if runs.contains(where: { $0.name == run.name }) { run.name = directory }
            runs.append(run)
        } catch {
            throw CommandError("\(error)")
        }
    }
    return runs
}

/// Writes the HTML report of `runs` to `path` (atomically).
func writeReport(_ runs: [RunData], targets: [Double], baseline: Int, to path: String) throws {
    let html = HTMLReport(
        runs: runs, targets: targets, baseline: baseline,
        generator: "maestro \(Maestro.configuration.version)"
    ).render()
    do {
        try RunRecorder.writeAtomically(Array(html.utf8), to: path)
    } catch {
        throw CommandError("\(error)")
    }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a self-contained HTML report (charts and tables) of one or more runs.",
        discussion: """
            Draws the runs on shared axes: accuracy per tier against round and against virtual \
            time, accuracy against cumulative bytes (the savings chart), bytes per round per \
            tier, kept ranks, participation, and the final model's truncation curve; tables of \
            the bytes, rounds and virtual time each run took to reach the target accuracies \
            (and their ratio to the baseline run), per-tier savings and provenance. Inline SVG \
            and CSS only: the file opens offline and prints.
            """)

    @Argument(help: "Run directories written by `maestro fleet` or `maestro coordinator`.")
    var runDirectories: [String]

    @Option(help: "Where to write the report (default: report.html in the first run directory).")
    var out: String?

    @OptionGroup var comparison: ComparisonOptions

    func validate() throws {
        guard !runDirectories.isEmpty else {
            throw ValidationError("give at least one run directory")
        }
        _ = try comparison.parsedTargets()
    }

    func run() throws {
        let runs = try loadRuns(runDirectories)
        let path =
            out
            ?? URL(fileURLWithPath: runDirectories[0]).appendingPathComponent(
                RunRecorder.reportFile
            ).path
        try writeReport(
            runs, targets: try comparison.parsedTargets(),
            baseline: try comparison.baselineIndex(runs),
            to: path)
        print("report: \(path)")
    }
}

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract:
            "Print the bytes, rounds and virtual time runs took to reach target accuracies, and their final per-tier figures.",
        discussion: """
            A target is reached at the first evaluated round at which the best tier's accuracy \
            is at or above it; "not reached" otherwise. Ratios are to the baseline run.
            """)

    @Argument(help: "Run directories written by `maestro fleet` or `maestro coordinator`.")
    var runDirectories: [String]

    @OptionGroup var comparison: ComparisonOptions

    @Flag(help: "Print JSON instead of tables.")
    var json = false

    func validate() throws {
        guard !runDirectories.isEmpty else {
            throw ValidationError("give at least one run directory")
        }
        _ = try comparison.parsedTargets()
    }

    func run() throws {
        let runs = try loadRuns(runDirectories)
        let report = CompareReport(
            runs: runs, targets: try comparison.parsedTargets(),
            baseline: try comparison.baselineIndex(runs))
        print(json ? report.json() : report.text())
    }
}
