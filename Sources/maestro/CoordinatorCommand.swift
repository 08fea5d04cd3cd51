import ArgumentParser
import Foundation
import Launch

struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract:
            "Run a coordinator that waits for clients (on this or other machines) and runs a scenario.",
        discussion: """
            --resume continues the run in --out from its last completed round, with the scenario \
            as the folder holds it: --scenario is optional then, and if given (with any \
            overrides) must be the run's; a finished run is refused. The command a stopped \
            coordinator prints (its own command line with --resume) does exactly this.
            """)

    @Option(help: "Scenario file (YAML); with --resume optional, and must be the run's.")
    var scenario: String?

    @Option(help: "Address to listen on, e.g. tcp://*:5555.")
    var bind: String

    @Option(help: "Clients to wait for before round 1 (default: the scenario's fleet size).")
    var expect: Int?

    @Flag(help: "Continue the run in --out from its last completed round.")
    var resume = false

    @Option(
        help:
            "Split the fleet into this many shares for `maestro worker` processes (default: the split the first worker declares with --slots)."
    )
    var workers: Int?

    @Option(
        name: .customLong("max-clients"),
        help:
            "Let up to this many clients register, for open deployments (default and minimum: the scenario's clients)."
    )
    var maxClients: Int?

    @OptionGroup var security: ServerSecurityOptions

    @Option(
        name: .customLong("worker-secret-file"),
        help:
            "The worker secret plaintext workers must present: read from this file, or made and written there (default: RUNDIR/worker.secret). Under CURVE with an allow-list, worker keys admit workers instead."
    )
    var workerSecretFile: String?

    @OptionGroup var runOptions: RunOptions

    @OptionGroup var peerLimits: PeerLimitOptions

    func validate() throws {
        try validateEndpoint(bind, flag: "--bind")
        if resume && runOptions.out == nil { throw ValidationError("--resume needs --out RUNDIR") }
        if !resume && scenario == nil {
            throw ValidationError("give --scenario FILE (or --resume with --out RUNDIR)")
        }
    }

    func run() throws {
        installStopHandlers()
        returnLargeBuffersToTheSystem()
        let baseline = try runOptions.loadBaseline()
        let overrides = runOptions.scenario
        let start: RunStart
        if resume, let out = runOptions.out {
            start = .resume(
                directory: out, scenarioFile: scenario, overrides: overrides.scenarioOverrides)
        } else {
            start = .new(
                try loadScenario(scenario!, overrides: overrides.overrides),
                directory: runOptions.out)
        }
        var coordinator = StandaloneCoordinator(
            start: start, bind: bind, version: Maestro.configuration.version,
            arguments: Array(CommandLine.arguments.dropFirst()))
        coordinator.expectedClients = expect
        coordinator.workers = workers
        coordinator.maximumClients = maxClients
        coordinator.curveSecretKeyFile = security.secretKey
        coordinator.allowList = security.allowKeys
        coordinator.workerSecretFile = workerSecretFile
        coordinator.limits = try peerLimits.serverLimits()
        coordinator.options = runOptions.coordinatorOptions
        coordinator.output = runOptions.output
        let (summary, directory) = try launching { () throws(LaunchError) in
            try coordinator.run()
        }
        try runOptions.finish(summary: summary, directory: directory, baseline: baseline)
    }
}
