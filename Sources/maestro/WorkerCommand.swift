import ArgumentParser
import Federation
import Foundation
import Launch
import Runtime
import Transport

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Host a share of a simulated fleet's clients for a coordinator.",
        discussion: """
            The worker connects to a coordinator (`maestro coordinator --bind …`, or `maestro \
            fleet --bind … --workers 0`), which assigns it a share of the scenario's clients and \
            sends it the scenario and the clients' training rows. Each hosted client then \
            registers and trains as a device would, one at a time, over the worker's one \
            connection. The worker needs the scenario's data files (Fashion-MNIST: the \
            dataset-fashion-mnist package, or --data-dir) and nothing else.

            Shares: the fleet is split into N shares (share s holds the clients i with \
            i mod N = s). Name one with --slot I --slots N (under Slurm: $SLURM_PROCID and \
            $SLURM_NTASKS; in a Kubernetes indexed Job: $JOB_COMPLETION_INDEX and the Job's \
            completions), or let the coordinator give a free one of its --workers split.

            Admission: a coordinator admits only workers. In plaintext the worker presents the \
            run's worker secret, from --worker-secret-file or $MAESTRO_WORKER_SECRET (the \
            coordinator prints where it wrote it); under CURVE its --client-key must be \
            enrolled as a worker ('KEY worker' in the coordinator's allow-list).
            """)

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "The share of the fleet to host, 0-based (default: any free one).")
    var slot: Int?

    @Option(help: "How many shares the fleet is split into (with --slot).")
    var slots: Int?

    @Option(
        name: .customLong("worker-secret-file"),
        help: "The run's worker secret (default: $MAESTRO_WORKER_SECRET).")
    var secretFile: String?

    @Option(
        name: .customLong("data-dir"),
        help: "Read the scenario's data files from this folder instead of the one it names.")
    var dataDirectory: String?

    func validate() throws {
        if let slots, slots < 1 { throw ValidationError("--slots must be ≥ 1 (got \(slots))") }
        if let slot {
            guard let slots else { throw ValidationError("--slot needs --slots") }
            guard (0..<slots).contains(slot) else {
                throw ValidationError("--slot must be in 0…\(slots - 1) (got \(slot))")
            }
        }
    }

    func run() throws {
        if connection.exitWithParent { exitWhenParentDies() }
        installStopHandlers()
        let verbose = connection.verbose
        let connect = connection.connect
        var options = Worker.Options(
            coordinator: connect, slot: slot.map(UInt32.init), slots: slots.map(UInt32.init))
        options.dataDirectory = dataDirectory
        if let secretFile {
            options.secret = try launching { () throws(LaunchError) in
                try KeyFiles.readWorkerSecret(secretFile)
            }
        } else {
            options.secret =
                ProcessInfo.processInfo.environment[WorkerSecret.environmentVariable] ?? ""
        }
        if connection.keys.serverKey == nil, options.secret.isEmpty {
            throw CommandError(
                "worker: no worker secret: give --worker-secret-file FILE (the coordinator prints where it wrote it) or set \(WorkerSecret.environmentVariable)"
            )
        }
        options.idleTimeout = connection.idleDuration
        options.shouldStop = { stopRequested.load(ordering: .relaxed) }
        options.log = { message in
            if verbose { FileHandle.standardError.write(Data("worker: \(message)\n".utf8)) }
        }
        let transport = try connection.transport(multiplexed: true)
        defer { transport.close() }
        let worker = Worker(transport: transport, options: options)
        let outcome: ClientOutcome
        do {
            outcome = try worker.run()
        } catch {
            throw CommandError("worker: \(error)")
        }
        switch outcome {
        case .shutdown(let reason): options.log("shutdown: \(PeerText.escaped(reason))")
        case .idle:
            throw CommandError(
                "worker: nothing from \(connect) for \(Int(connection.idleTimeout)) s; giving up")
        }
    }
}
