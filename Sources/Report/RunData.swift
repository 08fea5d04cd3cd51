import Fleet
import Foundation
import LowRank
import RunRecords

/// What a report reads from one run directory.
public struct RunData: Sendable {
    /// How the run is named in legends and tables (the directory's last component).
    public var name: String
    public var directory: String
    public var summary: RunSummary
    /// One entry per completed round, in round order.
    public var rounds: [RoundMetrics]
    /// A label per LoD layer (the entries of `RoundMetrics.ranks`).
    public var layerNames: [String]
    /// The final model's truncation curve, when the run wrote one.
    public var truncation: [TruncationPoint]?
    /// The target accuracies the run's scenario states (`report.targets`), if any.
    public var scenarioTargets: [Double]?
    /// The run's scenario as run, but for its seed (`nil` when the folder holds none): runs
    /// with the same identity and different seeds form a ``SeedGroup``.
    public var scenarioIdentity: String?
    /// The run's `training.widthDistillation` (`nil`: off, or no scenario in the folder).
    public var widthDistillation: Scenario.WidthDistillation?

    public init(
        name: String, directory: String, summary: RunSummary, rounds: [RoundMetrics],
        layerNames: [String], truncation: [TruncationPoint]?
    ) {
        self.name = name
        self.directory = directory
        self.summary = summary
        self.rounds = rounds
        self.layerNames = layerNames
        self.truncation = truncation
    }

    /// The strategy as the report names it: with FjORD's self-distillation, its weight and
    /// temperature.
    public var strategyLabel: String {
        guard let distillation = widthDistillation else { return summary.strategy }
        return "\(summary.strategy) with self-distillation (\(distillation.summary))"
    }

    /// True for a dense FedAvg run: every tier is evaluated on the one full model.
    public var isDense: Bool { summary.strategy == Scenario.Strategy.denseFedAvg.rawValue }

    /// The tiers in the run's order (smallest budget first in the shipped scenarios).
    public var tierNames: [String] { summary.tiers.map(\.tier) }

    /// The evaluated rounds.
    public var evaluations: [RoundMetrics] { rounds.filter { $0.accuracyByTier != nil } }

    /// The best tier's accuracy at an evaluated round.
    public static func bestAccuracy(_ round: RoundMetrics) -> Double? {
        round.accuracyByTier?.values.max()
    }
}

/// A run directory that cannot be reported on, and why.
public struct ReportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension RunData {
    /// Reads `summary.json`, `metrics.jsonl`, `scenario.yaml` and, when present,
    /// `truncation.json` of a finished run directory.
    ///
    /// `architecture` builds the model a scenario names (the runtime's binding), so the LoD
    /// layers are labelled by their shapes (`dense 784→300`); without it, or when the run's
    /// scenario does not load, they are numbered (`LoD layer 1`).
    public static func load(
        directory: String, architecture: ((Scenario) -> Architecture)? = nil
    ) throws(ReportError) -> RunData {
        let url = URL(fileURLWithPath: directory)
        func read(_ file: String) throws(ReportError) -> Data {
            let path = url.appendingPathComponent(file).path
            guard FileManager.default.fileExists(atPath: path) else {
                throw ReportError(
                    "\(path): not found (is \(directory) a finished run directory of `maestro fleet` or `maestro coordinator`?)"
                )
            }
            do {
                return try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw ReportError("\(path): cannot read (\(error.localizedDescription))")
            }
        }
        let decoder = RunJSON.decoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let summary: RunSummary
        do {
            summary = try decoder.decode(RunSummary.self, from: try read(RunRecorder.summaryFile))
        } catch let error as ReportError {
            throw error
        } catch {
            throw ReportError(
                "\(url.appendingPathComponent(RunRecorder.summaryFile).path): not a run summary (\(describe(error)))"
            )
        }
        let metricsData = try read(RunRecorder.metricsFile)
        var rounds: [RoundMetrics] = []
        for (number, line) in String(decoding: metricsData, as: UTF8.self).split(
            separator: "\n", omittingEmptySubsequences: false
        ).enumerated() where !line.isEmpty {
            do {
                rounds.append(try decoder.decode(RoundMetrics.self, from: Data(line.utf8)))
            } catch {
                throw ReportError(
                    "\(url.appendingPathComponent(RunRecorder.metricsFile).path):\(number + 1): not a round's metrics (\(describe(error)))"
                )
            }
        }
        guard !rounds.isEmpty else {
            throw ReportError(
                "\(url.appendingPathComponent(RunRecorder.metricsFile).path): no rounds recorded")
        }
        var layerNames = rounds.last!.ranks.indices.map { "LoD layer \($0 + 1)" }
        let scenarioPath = url.appendingPathComponent(RunRecorder.scenarioFile).path
        let scenario = try? Scenario.load(path: scenarioPath)
        if let architecture, let scenario {
            let architecture = architecture(scenario)
            let names = architecture.lowRankLayerIndices.map { layerLabel(architecture.layers[$0]) }
            if names.count == layerNames.count { layerNames = names }
        }
        var truncation: [TruncationPoint]?
        let truncationPath = url.appendingPathComponent(RunRecorder.truncationFile).path
        if FileManager.default.fileExists(atPath: truncationPath) {
            do {
                truncation = try decoder.decode(
                    [TruncationPoint].self, from: try read(RunRecorder.truncationFile))
            } catch {
                throw ReportError("\(truncationPath): not a truncation curve (\(describe(error)))")
            }
        }
        let name = url.standardizedFileURL.lastPathComponent
        var run = RunData(
            name: name.isEmpty ? directory : name, directory: directory, summary: summary,
            rounds: rounds, layerNames: layerNames, truncation: truncation)
        run.scenarioTargets = scenario?.report?.targets
        run.scenarioIdentity = scenario.flatMap { try? $0.overriding([("seed", "0")]).yaml() }
        run.widthDistillation = scenario?.training.widthDistillation
        return run
    }

    /// The targets a report uses without `--targets`: the first run's that states its own
    /// (`report.targets` in its scenario), else ``Scenario/defaultReportTargets``.
    public static func targets(of runs: [RunData]) -> [Double] {
        runs.lazy.compactMap(\.scenarioTargets).first ?? Scenario.defaultReportTargets
    }

    /// A LoD layer's legend label: `LoD fc 784→300`, `LoD conv 5×5 1→6`.
    static func layerLabel(_ layer: LayerSpec) -> String {
        switch layer {
        case .lowRankDense(let inputs, let outputs, _): "LoD fc \(inputs)→\(outputs)"
        case .lowRankConvolution(let geometry, let outputs, _):
            "LoD conv \(geometry.kernelSize)×\(geometry.kernelSize) \(geometry.channels)→\(outputs)"
        default: "LoD \(layer)"
        }
    }
}

/// A decoding error in a few words: the key path and what was wrong.
func describe(_ error: any Error) -> String {
    guard let decoding = error as? DecodingError else { return "\(error)" }
    // The file's spelling of a key (the decoder reports Swift's camel case).
    func snake(_ key: String) -> String {
        key.reduce(into: "") { out, c in
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
    }
    func path(_ context: DecodingError.Context) -> String {
        let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? snake($0.stringValue) }
        return keys.isEmpty ? "" : " at \(keys.joined(separator: "."))"
    }
    switch decoding {
    case .keyNotFound(let key, let context):
        return "missing key \(snake(key.stringValue))\(path(context))"
    case .typeMismatch(_, let context), .valueNotFound(_, let context),
        .dataCorrupted(let context):
        return "\(context.debugDescription)\(path(context))"
    @unknown default: return "\(error)"
    }
}
