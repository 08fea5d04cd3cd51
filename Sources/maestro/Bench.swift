import ArgumentParser
import Foundation
import Launch
import LowRank
import Runtime
import Tensors

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure sgemm, training steps, the codec and a fleet (a benchmark, not a test).",
        discussion: """
            Times are medians over repeated runs on one BLAS thread, after a warm-up. \
            `maestro bench` runs every part (`all`); the subcommands run one. The spellings \
            `bench --profile` and `bench --layers` still mean `bench profile` and `bench layers`.
            """,
        subcommands: [
            All.self, Kernels.self, Steps.self, Layers.self, Federation.self,
            Fleet.self, Profile.self,
        ],
        defaultSubcommand: All.self)

    /// `bench --profile …` and `bench --layers …`, the spellings from before the modes were
    /// subcommands, as `bench profile …` and `bench layers …`.
    static func modernSpelling(of arguments: [String]) -> [String] {
        guard arguments.first == "bench", arguments.count > 1,
            !configuration.subcommands.contains(where: { $0._commandName == arguments[1] })
        else { return arguments }
        for (flag, mode) in [("--profile", "profile"), ("--layers", "layers")]
        where arguments.contains(flag) {
            return ["bench", mode] + arguments.dropFirst().filter { $0 != flag }
        }
        return arguments
    }

    struct All: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every part: kernels, training steps, codec and aggregation, a fleet.")

        @OptionGroup var timing: BenchTimingOptions
        @OptionGroup var cases: BenchCaseOptions
        @OptionGroup var fleet: BenchFleetOptions
        @OptionGroup var output: BenchOutputOptions

        func run() throws {
            let scenario = try fleet.scenario()  // a wrong --fleet fails before measuring
            let suite = timing.suite
            var results = BenchResults(kernel: BLASKernel.coreName)
            var generator = SeededGenerator(seed: 1)
            suite.measureKernels(into: &results)
            suite.measureSteps(cases.selected, into: &results, generator: &generator)
            suite.measureModelSteps(cases, into: &results, generator: &generator)
            suite.measureFederation(into: &results, generator: &generator)
            if let scenario {
                results.fleet = try suite.measureFleet(scenario: scenario, rounds: fleet.rounds)
            }
            try output.print(results)
        }
    }

    struct Kernels: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Single-thread sgemm: 1024³ and the models' layer shapes.")

        @OptionGroup var timing: BenchTimingOptions
        @OptionGroup var output: BenchOutputOptions

        func run() throws {
            var results = BenchResults(kernel: BLASKernel.coreName)
            timing.suite.measureKernels(into: &results)
            try output.print(results)
        }
    }

    struct Steps: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One SGD step of each case, against single-thread sgemm 1024³.")

        @OptionGroup var timing: BenchTimingOptions
        @OptionGroup var cases: BenchCaseOptions
        @OptionGroup var output: BenchOutputOptions

        func run() throws {
            let suite = timing.suite
            var results = BenchResults(kernel: BLASKernel.coreName)
            results.sgemmGflopsSingleThread = suite.sgemmRate(m: 1024, n: 1024, k: 1024)
            var generator = SeededGenerator(seed: 1)
            suite.measureSteps(cases.selected, into: &results, generator: &generator)
            suite.measureModelSteps(cases, into: &results, generator: &generator)
            try output.print(results)
        }
    }

    struct Layers: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Each layer's forward and backward time in the selected step cases.")

        @OptionGroup var timing: BenchTimingOptions
        @OptionGroup var cases: BenchCaseOptions

        func run() throws {
            print(
                timing.suite.layerProfile(
                    cases.selected,
                    models: { cases.isSelected(model: $0, variant: $1, fraction: $2) }))
        }
    }

    struct Federation: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wire codec and ordered aggregation throughput on MLP-sized updates.")

        @OptionGroup var timing: BenchTimingOptions
        @OptionGroup var output: BenchOutputOptions

        func run() throws {
            var results = BenchResults(kernel: BLASKernel.coreName)
            var generator = SeededGenerator(seed: 1)
            timing.suite.measureFederation(into: &results, generator: &generator)
            try output.print(results)
        }
    }

    struct Fleet: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The CPU share of client training in a fleet run.")

        @OptionGroup var fleet: BenchFleetOptions
        @OptionGroup var output: BenchOutputOptions

        func run() throws {
            var results = BenchResults(kernel: BLASKernel.coreName)
            guard let scenario = try fleet.scenario() else {
                throw CommandError("give --fleet FILE: the scenario whose fleet run is measured")
            }
            results.fleet = try BenchSuite(seconds: 0, batchSize: 1).measureFleet(
                scenario: scenario, rounds: fleet.rounds)
            try output.print(results)
        }
    }

    struct Profile: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Measure this device and print its tier line, to paste into a scenario (see docs/devices.md).",
            discussion: """
                GFLOP/s at the model's shapes and the memory; with --coordinator also the link \
                (latency, uplink, downlink) to a running coordinator.
                """)

        @OptionGroup var timing: BenchTimingOptions

        @Option(help: "The model whose dense training steps are timed (mlp, lenet).")
        var model: String = "lenet"

        @Option(help: "The tier name to print.")
        var name = "device"

        @Option(
            help:
                "A running coordinator's address (tcp://IP:PORT) to measure the link to (round trip, uplink and downlink)."
        )
        var coordinator: String?

        @Option(
            name: .customLong("coordinator-wait"),
            help: "With --coordinator: seconds to wait for the coordinator's first answer.")
        var coordinatorWait: Double = 30

        @OptionGroup var keys: CurveClientKeyOptions

        func validate() throws {
            guard coordinatorWait > 0, coordinatorWait.isFinite else {
                throw ValidationError("--coordinator-wait must be a positive number of seconds")
            }
            guard let kind = ModelKind(rawValue: model), kind != .logistic else {
                throw ValidationError("--model must be mlp or lenet (got '\(model)')")
            }
            if let coordinator { try validateEndpoint(coordinator, flag: "--coordinator") }
        }

        func run() throws {
            let kind = ModelKind(rawValue: model) ?? .lenet
            var link: LinkFigures?
            let curve = try keys.configuration()
            let step = timing.suite.deviceSpeed(kind)
            if let coordinator {
                do {
                    link = try LinkMeasurement.measure(
                        to: coordinator, curve: curve,
                        wait: .milliseconds(Int64(coordinatorWait * 1000)),
                        log: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
                } catch {
                    throw CommandError(error.description)
                }
            }
            let lines = DeviceProfile.tierLines(
                name: name, model: kind, batchSize: timing.batchSize, gflops: step,
                link: link, coordinator: coordinator)
            print(lines.joined(separator: "\n"))
        }
    }
}
