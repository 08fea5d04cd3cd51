import ArgumentParser
import Foundation
import Launch

struct FleetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract:
            "Simulate a fleet on this machine: a coordinator and a pool of worker processes that host the clients.",
        discussion: """
            Starts the coordinator in this process and a pool of `maestro worker` processes (one \
            per core unless --workers says otherwise), each hosting a share of the scenario's \
            clients over one connection; with --process-per-client (or the scenario's \
            simulation.processPerClient) one `maestro client` process per client instead. Shows a \
            line per round, stops every process at the end or on Ctrl-C, and prints the savings \
            table against dense FedAvg. With --bind, real devices and workers on other machines \
            can join (--workers 0 starts no local worker).

            --resume RUNDIR continues an interrupted run from its last completed round, with the \
            scenario as the folder holds it (a scenario file or overrides given again must be \
            the same); a finished run is refused.
            """)

    @Argument(
        help:
            "Scenario file (YAML), e.g. Scenarios/default.yaml (with --resume: optional, and must be the run's)."
    )
    var scenarioFile: String?

    @OptionGroup var runOptions: RunOptions

    @OptionGroup var peerLimits: PeerLimitOptions

    @Option(help: "Address to listen on (default: tcp://127.0.0.1 on a free port).")
    var bind: String?

    @Option(help: "Continue the run in this directory from its last completed round.")
    var resume: String?

    @Option(
        help:
            "Worker processes to start, each hosting a share of the clients (default: one per core; 0: none, for workers on other machines)."
    )
    var workers: Int?

    @Option(
        help: ArgumentHelp(
            "Run the scenario once per seed, one after another, each in DIR/seed-N (DIR: --out, else runs/<scenario>-<time>), then print each figure's mean ± standard deviation over the seeds: 1-5, 1,3,7 or 1-3,7.",
            valueName: "seeds"))
    var seeds: String?

    @Flag(
        name: .customLong("process-per-client"),
        help: "One `maestro client` OS process per client instead of worker processes.")
    var processPerClient = false

    func validate() throws {
        if let bind { try validateEndpoint(bind, flag: "--bind") }
        guard scenarioFile != nil || resume != nil else {
            throw ValidationError("give a scenario file, or --resume RUNDIR")
        }
        if let resume, let out = runOptions.out, !samePath(out, resume) {
            throw ValidationError("--resume \(resume) names the run folder: no --out \(out)")
        }
        if let workers, workers < 0 {
            throw ValidationError("--workers must be ≥ 0 (got \(workers))")
        }
        if workers != nil && processPerClient {
            throw ValidationError("give --workers N or --process-per-client, not both")
        }
        if let seeds {
            _ = try parseSeeds(seeds)
            if runOptions.scenario.seed != nil {
                throw ValidationError("give --seed N or --seeds LIST, not both")
            }
            if let resume {
                throw ValidationError(
                    "--seeds starts new runs: resume one seed's run with --resume \(resume)/seed-N alone"
                )
            }
        }
    }

    func run() throws {
        installStopHandlers()
        returnLargeBuffersToTheSystem()
        let baseline = try runOptions.loadBaseline()
        if let seeds {
            try runSeeds(try parseSeeds(seeds), baseline: baseline)
            return
        }
        let start: RunStart
        if let resume {
            start = .resume(
                directory: resume, scenarioFile: scenarioFile,
                overrides: runOptions.scenario.scenarioOverrides)
        } else {
            let scenario = try loadScenario(scenarioFile!, overrides: runOptions.scenario.overrides)
            start = .new(scenario, directory: runOptions.out)
        }
        var fleet = configuredFleet(start: start)
        fleet.limits = try peerLimits.serverLimits()
        let (summary, directory) = try launching { () throws(LaunchError) in try fleet.run() }
        try runOptions.finish(summary: summary, directory: directory, baseline: baseline)
    }
}

extension FleetCommand {
    /// A fleet of this command's options (but for the peer limits, which may throw).
    func configuredFleet(start: RunStart) -> LocalFleet {
        var fleet = LocalFleet(start: start, version: Maestro.configuration.version)
        fleet.bind = bind
        fleet.workers = workers
        fleet.processPerClient = processPerClient
        fleet.options = runOptions.coordinatorOptions
        fleet.output = runOptions.output
        return fleet
    }
}

/// Whether two paths name the same folder (as written, or once resolved).
func samePath(_ a: String, _ b: String) -> Bool {
    URL(fileURLWithPath: a).standardizedFileURL.path
        == URL(fileURLWithPath: b).standardizedFileURL.path
}
