import Fleet
import Foundation
import RunRecords
import Runtime
import Transport

/// A coordinator that waits for devices and workers on other machines (or this one) and
/// runs a scenario with them.
///
/// Stopped (Ctrl-C), it does not release its devices: they wait and rejoin the resumed run.
public struct StandaloneCoordinator {
    public var start: RunStart
    public var bind: String
    /// Clients to wait for before round 1 (default: the scenario's fleet).
    public var expectedClients: Int?
    /// The worker split (default: the one the first worker declares).
    public var workers: Int?
    /// The population bound for open deployments (default and minimum: the fleet).
    public var maximumClients: Int?
    /// CURVE: the coordinator's secret key file and the allow-list (a file or a folder).
    public var curveSecretKeyFile: String?
    public var allowList: String?
    /// Where the plaintext workers' secret is read or written (default: RUNDIR/worker.secret).
    public var workerSecretFile: String?
    public var limits = ServerLimits()
    public var options = Coordinator.Options()
    public var output = RunOutput()
    public var version: String
    /// The command line as typed (without the program name): what the resume hint repeats.
    public var arguments: [String]

    public init(start: RunStart, bind: String, version: String, arguments: [String]) {
        self.start = start
        self.bind = bind
        self.version = version
        self.arguments = arguments
    }

    /// This command line again with `--resume` (and the run folder it wrote to, when it was
    /// not given): the command that continues the run, with its devices, where it stopped.
    public func resumeCommand(_ directory: String) -> String {
        var arguments = self.arguments.filter { $0 != "--resume" }
        if !arguments.contains("--out") && !arguments.contains(where: { $0.hasPrefix("--out=") }) {
            arguments += ["--out", directory]
        }
        return (["maestro"] + arguments + ["--resume"]).map(shellQuoted).joined(separator: " ")
    }

    /// Runs the scenario with the clients that join, to its end.
    public func run() throws(LaunchError) -> (summary: RunSummary, directory: String) {
        let run = try PreparedRun(
            start, version: version, commandLine: ["maestro"] + arguments,
            resumeCommand: resumeCommand)
        let scenario = run.scenario
        let directory = run.folder.path
        if let maximumClients,
            maximumClients < scenario.clients || maximumClients >= Int(UInt32.max)
        {
            throw .failed(
                "--max-clients must be at least the scenario's \(scenario.clients) clients (got \(maximumClients))"
            )
        }
        let population = maximumClients ?? scenario.clients
        if let expectedClients, expectedClients < 1 || expectedClients > population {
            throw .failed("--expect must be in 1…\(population) (got \(expectedClients))")
        }
        if let workers, workers < 1 || workers > scenario.clients {
            throw .failed("--workers must be in 1…\(scenario.clients) (got \(workers))")
        }
        let curve = try serverCurve(required: scenario.security.requireCurve)
        let server = try RunHost.bind(
            bind, limits: limits.bounding(scenario), curve: curve?.configuration)
        defer { server.close() }
        output.note(
            "coordinator \(scenario.name) listening on \(server.endpoint); run directory \(directory)"
        )
        var options = self.options
        options.expectedClients = expectedClients ?? scenario.clients
        options.workerSlots = workers
        options.enrolment = curve?.enrolment
        options.maximumClients = maximumClients
        if options.enrolment == nil {
            let path = workerSecretFile ?? run.folder.file("worker.secret")
            try run.folder.create()
            let (secret, created) = try KeyFiles.workerSecret(at: path)
            options.workerSecret = secret
            output.note(
                "workers join with --worker-secret-file \(path)\(created ? " (written now, mode 600)" : "")"
            )
        }
        let summary = try RunHost.run(
            run, server: server, options: options, output: output,
            resumeCommand: resumeCommand(directory), releasesClients: false)
        return (summary, directory)
    }

    /// The CURVE configuration and enrolment, or `nil` for plaintext; `required` (the
    /// scenario's security) refuses plaintext.
    func serverCurve(
        required: Bool
    ) throws(LaunchError) -> (configuration: CurveServerConfiguration, enrolment: Enrolment)? {
        guard let curveSecretKeyFile else {
            if required {
                throw .failed(
                    "the scenario requires CURVE (security.requireCurve): give --curve-secret-key and --allow-keys"
                )
            }
            return nil
        }
        guard let allowList else {
            throw .failed("--curve-secret-key needs --allow-keys (the clients' public keys)")
        }
        let pair = try KeyFiles.keyPair(secretKeyFile: curveSecretKeyFile)
        let enrolment = try KeyFiles.allowList(allowList)
        return (
            CurveServerConfiguration(keyPair: pair, allowedClientKeys: enrolment.keys), enrolment
        )
    }
}
