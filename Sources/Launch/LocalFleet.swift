import Fleet
import Foundation
import RunRecords
import Runtime
import Transport

/// A fleet simulated on this machine: the coordinator in this process and a pool of
/// `maestro worker` processes (or one `maestro client` process per client) hosting the
/// scenario's clients; with a public `bind`, devices and workers elsewhere can join.
///
/// Under `security.requireCurve` it makes a key pair for the coordinator and one per client
/// process or worker (in RUNDIR/keys) and allows exactly those; in plaintext, workers prove
/// what they are by a secret that reaches local workers through their environment and remote
/// ones through RUNDIR/worker.secret.
public struct LocalFleet {
    /// How the fleet's clients are hosted.
    public enum Hosting: Equatable, Sendable {
        case processPerClient
        case workers(Int)
    }

    public var start: RunStart
    /// Where the coordinator listens (default: tcp://127.0.0.1 on a free port).
    public var bind: String?
    public var limits = ServerLimits()
    /// Worker processes to start (default: one per core; 0: none, for remote workers).
    public var workers: Int?
    public var processPerClient = false
    /// Timeouts, log and stop request of the coordinator.
    public var options = Coordinator.Options()
    public var output = RunOutput()
    /// The program version and command line recorded in the provenance.
    public var version: String
    public var commandLine: [String]

    public init(start: RunStart, version: String, commandLine: [String] = CommandLine.arguments) {
        self.start = start
        self.version = version
        self.commandLine = commandLine
    }

    /// The command that continues the fleet's run in `directory`.
    public static func resumeCommand(_ directory: String) -> String {
        "maestro fleet --resume \(shellQuoted(directory))"
    }

    /// How `scenario`'s clients are hosted with these options on `cores` cores.
    public func hosting(for scenario: Scenario, cores: Int) -> Hosting {
        if processPerClient { return .processPerClient }
        if let workers { return .workers(min(workers, scenario.clients)) }
        if scenario.simulation.processPerClient { return .processPerClient }
        return .workers(min(max(1, cores), scenario.clients))
    }

    /// Runs the fleet to its end; every process it started is stopped when it returns.
    public func run() throws(LaunchError) -> (summary: RunSummary, directory: String) {
        let run = try PreparedRun(
            start, version: version, commandLine: commandLine, resumeCommand: Self.resumeCommand)
        let scenario = run.scenario
        let directory = run.folder.path
        let hosting = hosting(
            for: scenario, cores: ProcessInfo.processInfo.activeProcessorCount)
        let keyNames: [String]
        switch hosting {
        case .processPerClient: keyNames = (0..<scenario.clients).map { "client-\($0)" }
        case .workers(let count): keyNames = (0..<count).map { "worker-\($0)" }
        }
        let keys =
            scenario.security.requireCurve
            ? try FleetKeys(
                runDirectory: directory, names: keyNames,
                bindings: hosting == .processPerClient
                    ? scenario.fleet().map { (UInt32($0.index), $0.tier.name) } : nil) : nil
        let server = try RunHost.bind(
            bind ?? "tcp://127.0.0.1:*", limits: limits.bounding(scenario),
            curve: keys?.serverConfiguration)
        defer { server.close() }
        let endpoint = loopbackEndpoint(server.endpoint)
        try run.folder.create()
        // Clients read the scenario as run (with overrides) from the run directory.
        let scenarioPath = run.folder.file(RunRecorder.scenarioFile)
        try KeyFiles.write(Array(scenario.yaml().utf8), to: scenarioPath)
        output.note(banner(scenario, hosting: hosting, server: server, directory: directory))
        let launcher = try ProcessLauncher(logPath: run.folder.file("clients.log"))
        defer { launcher.stopAll() }
        // Clients read plain copies of the training files (inflated once, here).
        var dataArguments: [String] = []
        if case .fashionMNIST(let dataDirectory, _) = scenario.dataset {
            do {
                dataArguments = ["--data-dir", try DataCache.plainTrainingFiles(of: dataDirectory)]
            } catch {
                throw .failed("\(error)")
            }
        }
        var options = self.options
        options.expectedClients = scenario.clients
        options.enrolment = keys?.enrolment
        var workerEnvironment: [String: String] = [:]
        if keys == nil, case .workers(let count) = hosting {
            let path = run.folder.file("worker.secret")
            let secret = try KeyFiles.workerSecret(at: path).secret
            options.workerSecret = secret
            workerEnvironment[WorkerSecret.environmentVariable] = secret
            if count == 0 {
                output.note(
                    "workers join with: maestro worker --connect \(server.endpoint) --worker-secret-file \(path)"
                )
            }
        }
        switch hosting {
        case .processPerClient:
            for client in scenario.fleet() {
                try launcher.launch(
                    hosting: stride(from: client.index, to: client.index + 1, by: 1),
                    arguments: [
                        "client", "--connect", endpoint, "--tier", client.tier.name,
                        "--partition-of", scenarioPath, "--index", "\(client.index)", "--gflops",
                        "\(client.tier.gflops)", "--exit-with-parent",
                    ] + dataArguments + (keys?.arguments(name: "client-\(client.index)") ?? []))
            }
        case .workers(let count):
            options.workerSlots = count > 0 ? count : nil
            for slot in 0..<count {
                try launcher.launch(
                    hosting: stride(from: slot, to: scenario.clients, by: count),
                    arguments: [
                        "worker", "--connect", endpoint, "--slot", "\(slot)", "--slots", "\(count)",
                        "--exit-with-parent",
                    ] + dataArguments + (keys?.arguments(name: "worker-\(slot)") ?? []),
                    environment: workerEnvironment)
            }
        }
        options.lostClients = { launcher.exitedClients() }
        let summary = try RunHost.run(
            run, server: server, options: options, output: output,
            resumeCommand: Self.resumeCommand(directory), releasesClients: true)
        launcher.waitForExit(timeout: .seconds(10))
        return (summary, directory)
    }

    private func banner(
        _ scenario: Scenario, hosting: Hosting, server: ZeroMQServer, directory: String
    ) -> String {
        let hosted: String
        switch hosting {
        case .processPerClient: hosted = "one process per client"
        case .workers(0):
            hosted = "no local worker (workers and devices join on \(server.endpoint))"
        case .workers(let count): hosted = "\(count) worker process\(count == 1 ? "" : "es")"
        }
        let tiers = zip(scenario.tiers, scenario.clientsPerTier).map { "\($0.1) \($0.0.name)" }
        return
            "fleet \(scenario.name): \(scenario.clients) clients (\(tiers.joined(separator: ", "))), \(scenario.rounds) rounds, \(scenario.model.strategy.rawValue) \(scenario.modelDescription.summary), \(hosted); coordinator on \(server.endpoint); run directory \(directory)"
    }
}
