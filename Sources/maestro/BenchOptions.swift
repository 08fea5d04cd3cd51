import ArgumentParser
import Foundation
import Launch
import LowRank

/// How long `bench` times each case, and at what batch.
struct BenchTimingOptions: ParsableArguments {
    @Option(help: "Minimum seconds spent timing each case.")
    var seconds: Double = 1.0

    @Option(name: .customLong("batch-size"), help: "Mini-batch of the training-step cases.")
    var batchSize = 64

    @Flag(
        name: .customLong("cpu-time"),
        help:
            "Time in this process's CPU seconds, not wall seconds (on a shared machine, where the wall clock also counts other jobs' turns on the cores)."
    )
    var cpuTime = false

    func validate() throws {
        guard seconds >= 0, seconds.isFinite else {
            throw ValidationError("--seconds must be a non-negative number (got \(seconds))")
        }
        guard batchSize >= 1 else {
            throw ValidationError("--batch-size must be at least 1 (got \(batchSize))")
        }
    }

    var suite: BenchSuite { BenchSuite(seconds: seconds, batchSize: batchSize, cpuTime: cpuTime) }
}

/// Which training-step cases `bench` times.
struct BenchCaseOptions: ParsableArguments {
    @Option(
        help:
            "Only these training-step cases, e.g. mlp/lod/0.125,lenet/dense,lenet/tier-frozen (variants: dense, lod, tier, tier-frozen; default: all)."
    )
    var cases: String?

    func validate() throws {
        guard let cases else { return }
        for item in cases.split(separator: ",") {
            let parts = item.split(separator: "/")
            guard (1...3).contains(parts.count), ModelKind(rawValue: String(parts[0])) != nil,
                parts.count < 3 || Double(parts[2]) != nil
            else {
                throw ValidationError(
                    "--cases \(item): expected MODEL[/VARIANT[/FRACTION]], e.g. mlp/lod/0.125")
            }
        }
        let selectsModel = ModelStepTiming.cases.contains {
            isSelected(model: $0.model, variant: $0.variant, fraction: $0.fraction)
        }
        if selected.isEmpty && !selectsModel {
            throw ValidationError("--cases \(cases) selects no case")
        }
    }

    /// The cases `--cases` selects, in the suite's order.
    var selected: [(ModelKind, String, Double)] {
        BenchSuite.cases.filter { isSelected(model: $0.0, variant: $0.1, fraction: $0.2) }
    }

    func isSelected(model: ModelKind, variant: String, fraction: Double) -> Bool {
        guard let cases else { return true }
        return cases.split(separator: ",").contains { item in
            let parts = item.split(separator: "/").map(String.init)
            return parts.first == model.rawValue && (parts.count < 2 || parts[1] == variant)
                && (parts.count < 3 || Double(parts[2]) == fraction)
        }
    }
}

/// The fleet run whose CPU share `bench` measures.
struct BenchFleetOptions: ParsableArguments {
    static let defaultScenario = "Scenarios/smoke.yaml"

    @Option(
        help: ArgumentHelp(
            "Scenario whose fleet run measures the CPU share of client training ('none' to skip; default: \(Self.defaultScenario), here or in the source tree of this executable).",
            valueName: "file"))
    var fleet: String?

    @Option(
        name: .customLong("fleet-rounds"),
        help: "Rounds of that fleet run (default: the scenario's).")
    var rounds: Int?

    func validate() throws {
        if let rounds, rounds < 1 {
            throw ValidationError("--fleet-rounds must be at least 1 (got \(rounds))")
        }
    }

    /// The scenario file to run, or `nil` to skip the fleet. A file given that is not there
    /// fails at once; the default is looked for here, then in the source tree this
    /// executable was built in, and if neither holds it the fleet is skipped with a note.
    func scenario() throws -> String? {
        if let fleet {
            guard fleet != "none" else { return nil }
            guard FileManager.default.fileExists(atPath: fleet) else {
                throw CommandError(
                    "--fleet \(fleet): no such scenario file (give --fleet FILE or --fleet none)")
            }
            return fleet
        }
        if FileManager.default.fileExists(atPath: Self.defaultScenario) {
            return Self.defaultScenario
        }
        if let root = SourceTree.root() {
            let path = URL(fileURLWithPath: root).appendingPathComponent(Self.defaultScenario)
                .path
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        FileHandle.standardError.write(
            Data(
                "maestro bench: the fleet is not measured: no \(Self.defaultScenario) here or in this executable's source tree (give --fleet FILE, or --fleet none)\n"
                    .utf8))
        return nil
    }
}

/// How `bench` prints what it measured.
struct BenchOutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    func print(_ results: BenchResults) throws {
        Swift.print(json ? try results.json() : results.table)
    }
}
