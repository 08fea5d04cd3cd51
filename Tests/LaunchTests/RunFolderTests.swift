import Fleet
import Foundation
import RunRecords
import Runtime
import Testing

@testable import Launch

/// A fresh folder under the system's temporary directory.
func scratchFolder() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(
        "maestro-launch-\(UUID().uuidString)"
    ).path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The repository's smoke scenario.
let smokeScenario = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Scenarios/smoke.yaml").path

/// A run folder holding the smoke scenario as run with `--rounds 20`.
func startedRun(in directory: String) throws -> RunFolder {
    let scenario = try ScenarioFile.load(smokeScenario, overrides: [("rounds", "20")])
    let folder = RunFolder(directory)
    try RunRecorder.writeAtomically(
        Array(scenario.yaml().utf8), to: folder.file(RunRecorder.scenarioFile))
    return folder
}

@Suite("The run folder: what may start there, what a resume continues")
struct RunFolderTests {
    @Test(
        "A resume takes its scenario from the folder; the command line that started it is accepted again"
    )
    func scenarioFromTheFolder() throws {
        let directory = scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let folder = try startedRun(in: directory)
        #expect(try folder.scenarioToResume().rounds == 20)
        let again = try folder.scenarioToResume(
            scenarioFile: smokeScenario, overrides: [("rounds", "20")])
        #expect(again.rounds == 20 && again.name == "smoke")
        // The stored scenario with its own values as overrides is the same scenario.
        #expect(try folder.scenarioToResume(overrides: [("seed", "1")]).rounds == 20)
    }

    @Test("Another scenario is refused in one line that names both files and the first difference")
    func otherScenarioRefused() throws {
        let directory = scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let folder = try startedRun(in: directory)
        #expect {
            try folder.scenarioToResume(scenarioFile: smokeScenario)
        } throws: { error in
            let text = "\(error)"
            return text.contains("--scenario \(smokeScenario)")
                && text.contains("\(directory)/scenario.yaml")
                && text.contains("'rounds: 12' given, 'rounds: 20' as run")
                && !text.contains("\n")
        }
        #expect(throws: LaunchError.self) {
            try folder.scenarioToResume(overrides: [("training.learningRate", "0.5")])
        }
    }

    @Test("A finished run, and a folder without a run, are refused")
    func finishedRefused() throws {
        let directory = scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect {
            try RunFolder(directory).scenarioToResume()
        } throws: { "\($0)".contains("no run to resume") }
        let folder = try startedRun(in: directory)
        try Data(#"{"interrupted": true, "rounds": 3}"#.utf8).write(
            to: URL(fileURLWithPath: folder.file(RunRecorder.summaryFile)))
        #expect(!folder.isFinished)
        _ = try folder.scenarioToResume()
        try Data(#"{"interrupted": false, "rounds": 20}"#.utf8).write(
            to: URL(fileURLWithPath: folder.file(RunRecorder.summaryFile)))
        #expect(folder.isFinished)
        #expect {
            try folder.scenarioToResume()
        } throws: { "\($0)".contains("the run finished") }
    }

    @Test(
        "A folder holds a run once a round completed; leftovers of a run that never got there make way"
    )
    func newRunGuard() throws {
        let directory = scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let folder = RunFolder(directory)
        for name in [RunRecorder.metricsFile, RunRecorder.ledgerFile, RunFolder.provenanceFile] {
            FileManager.default.createFile(atPath: folder.file(name), contents: Data())
        }
        try folder.prepareForNewRun(resumeCommand: "maestro fleet --resume \(directory)")
        #expect(!FileManager.default.fileExists(atPath: folder.file(RunRecorder.ledgerFile)))
        #expect(!FileManager.default.fileExists(atPath: folder.file(RunFolder.provenanceFile)))
        FileManager.default.createFile(
            atPath: folder.file(RunRecorder.metricsFile), contents: Data("{}\n".utf8))
        #expect {
            try folder.prepareForNewRun(resumeCommand: "maestro fleet --resume \(directory)")
        } throws: {
            "\($0)".contains("already holds a run (metrics.jsonl)")
                && "\($0)".contains("`maestro fleet --resume \(directory)`")
        }
    }

    @Test("A resume keeps the original command line and appends its own")
    func provenanceAppends() throws {
        let directory = scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let folder = RunFolder(directory)
        func provenance(_ line: [String]) -> RunSummary.Provenance {
            .init(
                version: "1", commit: nil, commandLine: line, startedAt: "t", host: "h")
        }
        // With nothing stored the resume's own command line is all there is.
        #expect(folder.provenance(resumedBy: provenance(["b"])).commandLine == ["b"])
        try folder.record(provenance(["maestro", "fleet", "s.yaml", "--rounds", "20"]))
        let first = folder.provenance(resumedBy: provenance(["maestro", "fleet", "--resume", "d"]))
        try folder.record(first)
        let second = folder.provenance(
            resumedBy: provenance(["maestro", "fleet", "--resume", "d2"]))
        #expect(second.commandLine == ["maestro", "fleet", "s.yaml", "--rounds", "20"])
        #expect(second.resumes?.map(\.commandLine.last) == ["d", "d2"])
        #expect(folder.storedProvenance()?.resumes?.count == 1)
    }
}

@Suite("The source tree and command lines a run records")
struct SourceTreeTests {
    @Test("The commit is read from .git, a worktree's .git file and packed refs alike")
    func commits() throws {
        let root = scratchFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let main = "\(root)/main/.git"
        let commit = String(repeating: "a", count: 40)
        let packed = String(repeating: "b", count: 40)
        try FileManager.default.createDirectory(
            atPath: "\(main)/refs/heads", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            atPath: "\(main)/worktrees/wt", withIntermediateDirectories: true)
        try "ref: refs/heads/main\n".write(
            toFile: "\(main)/HEAD", atomically: true, encoding: .utf8)
        try "\(commit)\n".write(
            toFile: "\(main)/refs/heads/main", atomically: true, encoding: .utf8)
        try "# pack-refs\n\(packed) refs/heads/wt\n".write(
            toFile: "\(main)/packed-refs", atomically: true, encoding: .utf8)
        try "ref: refs/heads/wt\n".write(
            toFile: "\(main)/worktrees/wt/HEAD", atomically: true, encoding: .utf8)
        try "../..\n".write(
            toFile: "\(main)/worktrees/wt/commondir", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(
            atPath: "\(root)/wt/.build/debug", withIntermediateDirectories: true)
        try "gitdir: \(main)/worktrees/wt\n".write(
            toFile: "\(root)/wt/.git", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(
            atPath: "\(root)/main/.build/debug", withIntermediateDirectories: true)
        #expect(SourceTree.commit(ofExecutable: "\(root)/main/.build/debug/maestro") == commit)
        #expect(SourceTree.commit(ofExecutable: "\(root)/wt/.build/debug/maestro") == packed)
        #expect(SourceTree.root(ofExecutable: "\(root)/wt/.build/debug/maestro") == "\(root)/wt")
        #expect(SourceTree.commit(ofExecutable: "\(root)/installed/maestro") == nil)
    }

    @Test("A standalone coordinator's resume command is its own command line with --resume")
    func resumeCommand() throws {
        let scenario = try ScenarioFile.load(smokeScenario)
        let coordinator = StandaloneCoordinator(
            start: .new(scenario, directory: nil), bind: "tcp://*:5555", version: "0",
            arguments: ["coordinator", "--scenario", "a b.yaml", "--bind", "tcp://*:5555"])
        #expect(
            coordinator.resumeCommand("runs/x")
                == "maestro coordinator --scenario 'a b.yaml' --bind 'tcp://*:5555' --out runs/x --resume"
        )
        #expect(LocalFleet.resumeCommand("runs/it's") == "maestro fleet --resume 'runs/it'\\''s'")
    }
}
