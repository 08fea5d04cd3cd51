import Fleet
import Foundation
import RunRecords
import Runtime

/// A run folder: what may start in it, what a resume continues, and who ran it.
///
/// A folder holds a run once a round of it completed (its checkpoint, a metrics line or a
/// final model is there). A run that stopped or timed out before its first round left nothing
/// to continue: its files make way for a new run. A resume continues the scenario as the
/// folder holds it (`scenario.yaml`, written when the run started) and refuses a finished run.
public struct RunFolder: Sendable {
    public let path: String

    /// The original provenance of the run, kept for its resumes (`summary.json` is written
    /// only when a run ends).
    public static let provenanceFile = "provenance.json"

    public init(_ path: String) { self.path = path }

    /// `runs/<scenario>-<yyyyMMdd-HHmmss>`: the folder of a run started at `date`.
    public static func defaultPath(for scenario: Scenario, startedAt date: Date = Date()) -> String
    {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "runs/\(scenario.name)-\(formatter.string(from: date))"
    }

    /// The path of a file of the folder.
    public func file(_ name: String) -> String {
        URL(fileURLWithPath: path).appendingPathComponent(name).path
    }

    private func size(_ name: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: file(name)))?[.size] as? Int
    }

    /// The file that shows a completed round (`nil`: no run to continue here).
    public var completedRunFile: String? {
        [CoordinatorCheckpoint.fileName, RunRecorder.finalModelFile].first { size($0) != nil }
            ?? ((size(RunRecorder.metricsFile) ?? 0) > 0 ? RunRecorder.metricsFile : nil)
    }

    /// Refuses to start a new run where one is (its metrics, ledger and checkpoint would mix
    /// with the new run's); removes what a run stopped before its first round left.
    ///
    /// Nothing is written before this check.
    public func prepareForNewRun(resumeCommand: String) throws(LaunchError) {
        if let found = completedRunFile {
            throw .failed(
                "\(path) already holds a run (\(found)): continue it with `\(resumeCommand)`, or choose another --out"
            )
        }
        for name in [
            RunRecorder.metricsFile, RunRecorder.ledgerFile, RunRecorder.summaryFile,
            Self.provenanceFile,
        ] {
            try? FileManager.default.removeItem(atPath: file(name))
        }
    }

    /// Creates the folder (and its parents) if it is not there.
    public func create() throws(LaunchError) {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true)
        } catch {
            throw .failed("\(path): cannot create the run folder (\(error.localizedDescription))")
        }
    }

    /// Whether the run ran to its end (`summary.json` says so).
    public var isFinished: Bool {
        guard let data = FileManager.default.contents(atPath: file(RunRecorder.summaryFile)),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return false }
        return object["interrupted"] as? Bool == false
    }

    /// The scenario a resume continues: the folder's `scenario.yaml` as run.
    ///
    /// A scenario file and overrides may be given again (the command line that started the
    /// run, with `--resume`): they must describe that same scenario, or the resume is refused
    /// naming both and their first difference. A finished run is refused.
    public func scenarioToResume(
        scenarioFile: String? = nil, overrides: [(keyPath: String, value: String)] = []
    ) throws(LaunchError) -> Scenario {
        let stored = file(RunRecorder.scenarioFile)
        guard FileManager.default.fileExists(atPath: stored) else {
            throw .failed("\(path): no run to resume (no \(RunRecorder.scenarioFile) there)")
        }
        let asRun = try ScenarioFile.load(stored)
        if isFinished {
            throw .failed(
                "\(path): the run finished (\(RunRecorder.summaryFile)); nothing to resume: start a new run with another --out"
            )
        }
        guard scenarioFile != nil || !overrides.isEmpty else { return asRun }
        let given = try ScenarioFile.load(scenarioFile ?? stored, overrides: overrides)
        let (mine, theirs) = (given.yaml(), asRun.yaml())
        guard mine != theirs else { return asRun }
        let source =
            (scenarioFile.map { "--scenario \($0)" } ?? "the options")
            + (overrides.isEmpty
                ? ""
                : " with "
                    + overrides.map { "\($0.keyPath)=\($0.value)" }
                    .joined(separator: ", "))
        throw .failed(
            "\(source) is not the scenario of the run in \(path) (\(stored))\(Self.firstDifference(mine, theirs)): a resume continues the run as it started; drop the scenario options, or start a new run with another --out"
        )
    }

    /// `; first difference: 'a' here, 'b' there` between two YAML texts, or "".
    static func firstDifference(_ given: String, _ stored: String) -> String {
        let a = given.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let b = stored.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        for index in 0..<max(a.count, b.count) {
            let left = index < a.count ? a[index] : "(end)"
            let right = index < b.count ? b[index] : "(end)"
            if left != right { return "; first difference: '\(left)' given, '\(right)' as run" }
        }
        return ""
    }

    // MARK: - Provenance

    /// The provenance of a resumed run: the one it started with (from `provenance.json`, else
    /// an interrupted `summary.json`) with `resume` appended to its resumes; `resume` itself
    /// when the folder holds neither.
    public func provenance(resumedBy resume: RunSummary.Provenance) -> RunSummary.Provenance {
        guard var original = storedProvenance() else { return resume }
        original.resumes =
            (original.resumes ?? []) + [
                RunSummary.Provenance.Resume(
                    commandLine: resume.commandLine, startedAt: resume.startedAt,
                    host: resume.host, version: resume.version, commit: resume.commit)
            ]
        return original
    }

    /// The provenance the folder holds, if any.
    public func storedProvenance() -> RunSummary.Provenance? {
        let decoder = RunJSON.decoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        if let data = FileManager.default.contents(atPath: file(Self.provenanceFile)),
            let provenance = try? decoder.decode(RunSummary.Provenance.self, from: data)
        {
            return provenance
        }
        guard let data = FileManager.default.contents(atPath: file(RunRecorder.summaryFile)),
            let summary = try? decoder.decode(RunSummary.self, from: data)
        else { return nil }
        return summary.provenance
    }

    /// Writes `provenance.json`: who started the run, and who resumed it.
    public func record(_ provenance: RunSummary.Provenance) throws(LaunchError) {
        let encoder = RunJSON.encoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try create()
        do {
            try RunRecorder.writeAtomically(
                Array(try encoder.encode(provenance)), to: file(Self.provenanceFile))
        } catch {
            throw LaunchError(error)
        }
    }
}

/// Scenario files as the command line names them.
public enum ScenarioFile {
    /// Loads a scenario file with command-line overrides, or fails with every problem.
    public static func load(
        _ path: String, overrides: [(keyPath: String, value: String)] = []
    ) throws(LaunchError) -> Scenario {
        do {
            let scenario = try Scenario.load(path: path)
            return overrides.isEmpty
                ? scenario : try scenario.overriding(overrides, source: "command-line options")
        } catch {
            throw .failed("\(error)")
        }
    }
}
