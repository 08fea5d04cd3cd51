import Foundation
import LowRank
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `maestro` executable next to the test bundle.
let maestroPath: String = {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [bundle, bundle.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("maestro").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(
        ".build/debug/maestro"
    ).path
}()

/// The repository root (for Scenarios/).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

struct CommandResult {
    var status: Int32
    var output: String
    var error: String
}

/// Runs `maestro ARGUMENTS` to completion (bounded by `timeout` seconds), inside a network
/// namespace if one is given.
func maestro(
    _ arguments: [String], timeout: Double = 300, namespace: String? = nil
) throws -> CommandResult {
    if let namespace {
        return try runProgram(
            "/usr/bin/env", ["ip", "netns", "exec", namespace, maestroPath] + arguments,
            timeout: timeout)
    }
    return try runProgram(maestroPath, arguments, timeout: timeout)
}

/// Runs a program in the repository's root and collects its output.
func runProgram(
    _ executable: String, _ arguments: [String], timeout: Double = 300
) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = repositoryRoot
    let output = Pipe()
    let error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    // Drain both pipes while waiting so a chatty child never blocks on a full pipe.
    let outputData = LockedData()
    let errorData = LockedData()
    let readers = [(output, outputData), (error, errorData)].map { pipe, sink in
        Thread {
            sink.append(pipe.fileHandleForReading.readDataToEndOfFile())
        }
    }
    readers.forEach { $0.start() }
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning {
        process.terminate()
        process.waitUntilExit()
        Issue.record(
            "\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout) s")
    }
    process.waitUntilExit()
    while !(outputData.isClosed && errorData.isClosed) { usleep(5_000) }
    return CommandResult(
        status: process.terminationStatus, output: String(decoding: outputData.data, as: UTF8.self),
        error: String(decoding: errorData.data, as: UTF8.self))
}

final class LockedData: @unchecked Sendable {
    // Every access holds `lock`.
    private let lock = NSLock()
    private var stored = Data()
    private var closed = false

    func append(_ data: Data) {
        lock.withLock {
            stored.append(data)
            closed = true
        }
    }

    var data: Data { lock.withLock { stored } }
    var isClosed: Bool { lock.withLock { closed } }
}

func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(
        "maestro-test-\(UUID().uuidString)"
    ).path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite("The maestro command line")
struct CommandLineTests {
    @Test("Bad flags are refused with the flag named and a non-zero exit")
    func badFlags() throws {
        let epochs = try maestro(["train", "--epochs", "0"])
        #expect(epochs.status != 0)
        #expect(epochs.error.contains("--epochs"))
        let sampler = try maestro(["train", "--sampler", "sometimes"])
        #expect(sampler.status != 0)
        #expect(sampler.error.contains("sampler"))
        let fractions = try maestro(["eval", "x.maestro", "--rank-fractions", "0.5,2"])
        #expect(fractions.status != 0)
    }

    @Test(
        "Mistakes get one line that says what was meant: a subcommand, a transport, a model the data cannot feed; never a trap"
    )
    func mistakes() throws {
        let typo = try maestro(["trian", "--epochs", "1"])
        #expect(typo.status == 64)
        #expect(typo.error.contains("unknown subcommand 'trian'; did you mean 'train'?"))
        let unknown = try maestro(["xyzzy"])
        #expect(unknown.status == 64 && !unknown.error.contains("did you mean"))
        for (arguments, expected) in [
            (
                ["client", "--connect", "127.0.0.1:5556", "--data", "x"],
                "--connect 127.0.0.1:5556 names no transport: did you mean tcp://127.0.0.1:5556?"
            ),
            (
                ["coordinator", "--scenario", "Scenarios/smoke.yaml", "--bind", "*:5555"],
                "--bind *:5555 names no transport: did you mean tcp://*:5555?"
            ),
        ] {
            let result = try maestro(arguments)
            #expect(result.status != 0)
            #expect(result.error.contains(expected), "\(result.error)")
            // The usage printed is the subcommand's, not the root's.
            #expect(result.error.contains("Usage: maestro \(arguments[0])"), "\(result.error)")
        }
        let lenet = try maestro(["train", "--model", "lenet", "--dataset", "synthetic"])
        #expect(lenet.status == 1)
        #expect(lenet.error.contains("--model lenet: lenet needs images"), "\(lenet.error)")
        #expect(!lenet.error.contains("Precondition") && !lenet.error.contains("crashed"))
        // An error a subcommand throws while running comes with that subcommand's usage.
        let export = try maestro(["export", "none.maestro", "--rank-fraction", "0.5"])
        #expect(export.status != 0 && !export.error.contains("Usage: maestro <subcommand>"))
    }

    @Test(
        "Ctrl-C on a standalone coordinator names the command that continues it; a folder whose run stopped before its first round takes a new run"
    )
    func coordinatorInterrupted() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = "\(directory)/run"
        let endpoint = "tcp://127.0.0.1:\(20_000 + Int.random(in: 0..<20_000))"
        let arguments = [
            "coordinator", "--scenario", "Scenarios/smoke.yaml", "--bind", endpoint, "--out", run,
            "--expect", "2", "--quiet",
        ]
        let errors = Pipe()
        let coordinator = try startMaestro(arguments, standardError: errors)
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: "\(run)/worker.secret") && Date() < deadline {
            usleep(20_000)
        }
        let device = try startMaestro([
            "client", "--connect", endpoint, "--tier", "low", "--partition-of",
            "Scenarios/smoke.yaml", "--index", "0", "--idle-timeout", "4",
        ])
        defer { if device.isRunning { device.terminate() } }
        usleep(1_500_000)
        kill(coordinator.processIdentifier, SIGINT)
        coordinator.waitUntilExit()
        // The device is not told to stop: it waits for a resumed run, and gives up only at its
        // idle timeout, with a failure a service manager restarts.
        usleep(1_500_000)
        #expect(device.isRunning, "the device left with the interrupted coordinator")
        device.waitUntilExit()
        #expect(device.terminationStatus != 0)
        let error = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(coordinator.terminationStatus == 130)
        #expect(
            error.contains(
                "continue with: maestro coordinator --scenario Scenarios/smoke.yaml --bind \(endpoint) --out \(run) --expect 2 --quiet --resume"
            ), "\(error)")
        #expect(!error.contains("maestro fleet"))
        // Nothing was completed there: a new run may start in the folder.
        let again = try maestro(["fleet", "Scenarios/smoke.yaml", "--rounds", "1", "--out", run, "--quiet"])
        #expect(again.status == 0, "\(again.error.suffix(600))")
        let ledger = try String(contentsOfFile: "\(run)/ledger.csv", encoding: .utf8)
        #expect(ledger.split(separator: "\n").filter { $0.hasPrefix("0,") || $0.hasPrefix("1,") }.count > 0)
        let refused = try maestro(["fleet", "Scenarios/smoke.yaml", "--rounds", "1", "--out", run, "--quiet"])
        #expect(refused.status != 0 && refused.error.contains("already holds a run"))
    }

    @Test("--quiet prints the savings table and nothing else: no blank line first")
    func quietFleet() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try maestro([
            "fleet", "Scenarios/smoke.yaml", "--rounds", "1", "--quiet", "--out", "\(directory)/run",
        ])
        #expect(result.status == 0, "\(result.error.suffix(600))")
        #expect(result.output.hasPrefix("smoke (orderedLoD): 1 rounds"), "\(result.output.prefix(200))")
        #expect(result.output.contains("participations"))
    }

    @Test("A client whose --tier contradicts its scenario index is refused before connecting")
    func contradictoryTier() throws {
        // Client 0 of smoke.yaml is in tier low.
        let result = try maestro([
            "client", "--connect", "tcp://127.0.0.1:1", "--tier", "full", "--partition-of",
            "Scenarios/smoke.yaml", "--index", "0",
        ])
        #expect(result.status != 0)
        #expect(result.error.contains("--tier full contradicts"), "\(result.error)")
        #expect(result.error.contains("tier low"))
    }

    @Test("A client pointed at a dead address says what it waits for, then gives up naming it")
    func deadCoordinator() throws {
        let result = try maestro(
            [
                "client", "--connect", "tcp://127.0.0.1:9", "--tier", "low", "--partition-of",
                "Scenarios/smoke.yaml", "--index", "0", "--idle-timeout", "11",
            ], timeout: 60)
        #expect(result.status != 0)
        // Nothing listens on port 9: said at once, again after 10 s, and in the last word.
        #expect(
            result.error.contains("cannot connect to tcp://127.0.0.1:9: connection refused"),
            "\(result.error)")
        #expect(
            result.error.contains(
                "no connection to the coordinator at tcp://127.0.0.1:9 after 10 s"),
            "\(result.error)")
        #expect(
            result.error.contains(
                "nothing accepts connections at tcp://127.0.0.1:9 (connection refused for 11 s)"))
    }

    @Test("export refuses to write over its own input, under any name")
    func exportOverItsInput() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let model = "\(directory)/m.maestro"
        try Data("not even read".utf8).write(to: URL(fileURLWithPath: model))
        try FileManager.default.createSymbolicLink(
            atPath: "\(directory)/link.maestro", withDestinationPath: model)
        for out in [model, "\(directory)/./m.maestro", "\(directory)/link.maestro"] {
            let result = try maestro(["export", model, "--rank-fraction", "0.5", "--out", out])
            #expect(result.status != 0)
            #expect(result.error.contains("is the input model"), "\(result.error)")
        }
        #expect(FileManager.default.contents(atPath: model) == Data("not even read".utf8))
    }

    @Test("A missing or corrupt model file is named in the error")
    func badModelFiles() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let missing = try maestro(["eval", "\(directory)/none.maestro"])
        #expect(missing.status != 0)
        #expect(missing.error.contains("none.maestro") && missing.error.contains("no such file"))
        let corrupt = "\(directory)/corrupt.maestro"
        try Data("MAESTRO\0 not really a model".utf8).write(to: URL(fileURLWithPath: corrupt))
        let result = try maestro(["eval", corrupt])
        #expect(result.status != 0)
        #expect(result.error.contains("corrupt.maestro"))
    }

    @Test("A missing data folder is named in the error")
    func missingData() throws {
        let result = try maestro([
            "train", "--model", "mlp", "--epochs", "1", "--data-dir", "/nonexistent/fmnist",
        ])
        #expect(result.status != 0)
        #expect(result.error.contains("/nonexistent/fmnist"))
    }

    @Test("scenario validate lists every problem with its key path; show prints budgets")
    func scenarioCommands() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bad = "\(directory)/bad.yaml"
        try """
        name: bad
        seed: 1
        clients: 10
        rounds: 0
        clientsPerRound: 20
        dataset: {name: fashion-mnist, partition: {scheme: dirichlet, alpha: -1}}
        model: {architecture: lenet, strategy: orderedLoD}
        training: {localEpochs: 1, batchSize: 32, learningRate: 0.05, sampler: perLayr}
        tiers:
          - {name: a, share: 0.5, rankFraction: 1.5, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
        """.write(toFile: bad, atomically: true, encoding: .utf8)
        let result = try maestro(["scenario", "validate", bad])
        #expect(result.status != 0)
        for keyPath in [
            "rounds", "clientsPerRound", "dataset.partition.alpha", "training.sampler",
            "tiers[0].rankFraction",
        ] {
            #expect(
                result.error.contains("bad.yaml: \(keyPath)"),
                "no problem reported at \(keyPath):\n\(result.error)")
        }
        let valid = try maestro([
            "scenario", "validate", "Scenarios/default.yaml", "Scenarios/smoke.yaml",
        ])
        #expect(valid.status == 0, "\(valid.error)")
        let show = try maestro(["scenario", "show", "Scenarios/default.yaml"])
        #expect(show.status == 0)
        #expect(show.output.contains("low") && show.output.contains("fc1"))
        // conv1 stays dense in the default scenario; --set factors it like the other layers.
        let conv1 = { (output: String) in
            output.split(separator: "\n").first { $0.hasPrefix("conv1") }.map(String.init) ?? ""
        }
        #expect(conv1(show.output).contains("dense"), "\(conv1(show.output))")
        let factored = try maestro([
            "scenario", "show", "Scenarios/default.yaml", "--set", "model.factoredMinimumWeights=0",
        ])
        #expect(factored.status == 0, "\(factored.error)")
        #expect(!conv1(factored.output).contains("dense"), "\(conv1(factored.output))")
        let refused = try maestro([
            "scenario", "show", "Scenarios/default.yaml", "--set",
            "model.factoredMinimumWeights=-1",
        ])
        #expect(refused.status != 0 && refused.error.contains("model.factoredMinimumWeights"))
    }
}
