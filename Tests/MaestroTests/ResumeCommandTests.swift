import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Resume: the scenario from the run folder, no second life for a finished run", .serialized)
struct ResumeCommandTests {
    @Test(
        "A fleet stopped after round 1 is refused another --scenario, resumed by a coordinator without --scenario, keeps its original command line, and once finished is refused"
    )
    func resumeSemantics() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = "\(directory)/run"
        let started = [
            "fleet", "Scenarios/smoke.yaml", "--rounds", "4", "--out", run, "--quiet",
        ]
        let fleet = try startMaestro(started)
        let deadline = Date().addingTimeInterval(300)
        while metricsLines(run) < 1 && fleet.isRunning && Date() < deadline { usleep(20_000) }
        #expect(fleet.isRunning, "the run ended before it could be interrupted")
        kill(fleet.processIdentifier, SIGINT)
        fleet.waitUntilExit()
        #expect(fleet.terminationStatus == 130)
        let done = metricsLines(run)
        #expect((1..<4).contains(done))

        // The scenario file without the run's --rounds 4 is another scenario.
        let endpoint = "tcp://127.0.0.1:\(20_000 + Int.random(in: 0..<20_000))"
        let other = try maestro([
            "coordinator", "--scenario", "Scenarios/smoke.yaml", "--bind", endpoint, "--out", run,
            "--resume", "--quiet",
        ])
        #expect(other.status == 1)
        let line = other.error.split(separator: "\n").first { $0.contains("not the scenario") }
        #expect(line?.contains("--scenario Scenarios/smoke.yaml") == true, "\(other.error)")
        #expect(line?.contains("\(run)/scenario.yaml") == true, "\(other.error)")
        #expect(line?.contains("'rounds: 12' given, 'rounds: 4' as run") == true, "\(other.error)")
        #expect(metricsLines(run) == done, "a refused resume touched the run")

        // No --scenario: the coordinator continues the folder's scenario with six devices.
        let coordinator = try startMaestro([
            "coordinator", "--bind", endpoint, "--out", run, "--resume", "--expect", "6",
            "--quiet",
        ])
        let tiers = ["low", "low", "low", "full", "full", "full"]
        let clients = try tiers.enumerated().map { index, tier in
            try startMaestro([
                "client", "--connect", endpoint, "--tier", tier, "--partition-of",
                "\(run)/scenario.yaml", "--index", "\(index)",
            ])
        }
        defer { for client in clients where client.isRunning { client.terminate() } }
        let finished = Date().addingTimeInterval(300)
        while coordinator.isRunning && Date() < finished { usleep(20_000) }
        if coordinator.isRunning { coordinator.terminate() }
        coordinator.waitUntilExit()
        #expect(coordinator.terminationStatus == 0)
        #expect(metricsLines(run) == 4)

        // The provenance keeps the command line that started the run and adds the resume.
        let provenance = try summary(run)["provenance"] as? [String: Any] ?? [:]
        let commandLine = provenance["command_line"] as? [String] ?? []
        #expect(Array(commandLine.dropFirst()) == started, "\(provenance)")
        let resumes = provenance["resumes"] as? [[String: Any]] ?? []
        #expect(resumes.count == 1)
        let resumedBy = resumes.first?["command_line"] as? [String] ?? []
        #expect(resumedBy.dropFirst().first == "coordinator" && resumedBy.contains("--resume"))

        // A finished run is refused by both commands, and nothing in it changes.
        let ledger = try Data(contentsOf: URL(fileURLWithPath: "\(run)/ledger.csv"))
        let written = try Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json"))
        for arguments in [
            ["fleet", "--resume", run, "--quiet"],
            ["coordinator", "--bind", endpoint, "--out", run, "--resume", "--quiet"],
        ] {
            let again = try maestro(arguments, timeout: 120)
            #expect(again.status == 1, "\(arguments)")
            #expect(again.error.contains("\(run): the run finished"), "\(again.error)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(run)/ledger.csv")) == ledger)
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json")) == written)
    }
}

/// Runs `executable ARGUMENTS` in `folder` and collects its output.
func runProgram(
    _ executable: String, _ arguments: [String], in folder: String, timeout: Double = 600
) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: folder)
    let output = folder + "/stdout.txt"
    let error = folder + "/stderr.txt"
    _ = FileManager.default.createFile(atPath: output, contents: nil)
    _ = FileManager.default.createFile(atPath: error, contents: nil)
    process.standardOutput = FileHandle(forWritingAtPath: output)
    process.standardError = FileHandle(forWritingAtPath: error)
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus,
        output: (try? String(contentsOfFile: output, encoding: .utf8)) ?? "",
        error: (try? String(contentsOfFile: error, encoding: .utf8)) ?? "")
}

@Suite("maestro bench outside the repository", .serialized)
struct BenchOutsideTests {
    @Test(
        "Run elsewhere, bench finds the smoke scenario in its source tree; an installed copy prints what it measured and a one-line note"
    )
    func elsewhere() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let quick = ["bench", "--seconds", "0", "--cases", "mlp/dense", "--json"]
        let built = try runProgram(
            maestroPath, quick + ["--fleet-rounds", "1"], in: directory)
        #expect(built.status == 0, "\(built.error.suffix(800))")
        let measured = try JSONSerialization.jsonObject(with: Data(built.output.utf8))
        let fleet = (measured as? [String: Any])?["fleet"] as? [String: Any]
        #expect(
            (fleet?["scenario"] as? String)?.hasSuffix("/Scenarios/smoke.yaml") == true,
            "\(built.output.suffix(600))")
        #expect(fleet?["rounds"] as? Int == 1)

        // A copy outside any source tree, as an installed binary is.
        let copy = "\(directory)/maestro"
        try FileManager.default.copyItem(atPath: maestroPath, toPath: copy)
        let installed = try runProgram(copy, quick, in: directory)
        #expect(installed.status == 0, "\(installed.error.suffix(800))")
        let object =
            try JSONSerialization.jsonObject(with: Data(installed.output.utf8)) as? [String: Any]
        #expect(object?["fleet"] == nil)
        #expect((object?["training_steps"] as? [Any])?.count == 1)
        #expect(object?["sgemm_gflops_single_thread"] as? Double ?? 0 > 0)
        let notes = installed.error.split(separator: "\n").filter {
            $0.contains("the fleet is not measured")
        }
        #expect(notes.count == 1, "\(installed.error)")

        // A --fleet that is not there fails before anything is measured.
        let missing = try runProgram(copy, quick + ["--fleet", "nowhere.yaml"], in: directory)
        #expect(missing.status != 0 && missing.output.isEmpty)
        #expect(missing.error.contains("--fleet nowhere.yaml: no such scenario file"))
    }

    @Test("The old spelling bench --layers runs the subcommand; a mistyped mode is refused")
    func oldSpellings() throws {
        let layers = try maestro(["bench", "--layers", "--cases", "mlp/dense", "--seconds", "0"])
        #expect(layers.status == 0, "\(layers.error)")
        #expect(layers.output.hasPrefix("mlp dense, batch 64"), "\(layers.output)")
        let typo = try maestro(["bench", "kernles"])
        #expect(typo.status != 0)
    }
}
