import ArgumentParser
import Foundation
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
            """)

    @Option(help: "Coordinator address, e.g. tcp://192.0.2.10:5555.")
    var connect: String

    @Option(help: "The share of the fleet to host, 0-based (default: any free one).")
    var slot: Int?

    @Option(help: "How many shares the fleet is split into (with --slot).")
    var slots: Int?

    @Option(
        name: .customLong("data-dir"),
        help: "Read the scenario's data files from this folder instead of the one it names.")
    var dataDirectory: String?

    @Option(
        name: .customLong("idle-timeout"),
        help: "Exit after this many seconds without a message from the coordinator.")
    var idleTimeout: Double = 600

    @Flag(
        name: .customLong("exit-with-parent"),
        help: "Exit when the launching process dies (used by `maestro fleet`).")
    var exitWithParent = false

    @Flag(help: "Log the assignment and the clients' errors to standard error.")
    var verbose = false

    @Option(
        name: .customLong("server-key"),
        help: "The coordinator's CURVE public key file (turns CURVE on).")
    var serverKey: String?

    @Option(
        name: .customLong("client-key"),
        help: "This worker's CURVE secret key file (with --server-key).")
    var clientKey: String?

    func validate() throws {
        if let slots, slots < 1 { throw ValidationError("--slots must be ≥ 1 (got \(slots))") }
        if let slot {
            guard let slots else { throw ValidationError("--slot needs --slots") }
            guard (0..<slots).contains(slot) else {
                throw ValidationError("--slot must be in 0…\(slots - 1) (got \(slot))")
            }
        }
        guard idleTimeout > 0 else { throw ValidationError("--idle-timeout must be > 0") }
        if (serverKey == nil) != (clientKey == nil) {
            throw ValidationError("--server-key and --client-key go together")
        }
    }

    func run() throws {
        if exitWithParent { exitWhenParentDies() }
        installStopHandlers()
        let verbose = self.verbose
        var options = Worker.Options(
            coordinator: connect, slot: slot.map(UInt32.init), slots: slots.map(UInt32.init))
        options.dataDirectory = dataDirectory
        options.idleTimeout = .milliseconds(Int64(idleTimeout * 1000))
        options.shouldStop = { stopRequested.load(ordering: .relaxed) }
        options.log = { message in
            if verbose { FileHandle.standardError.write(Data("worker: \(message)\n".utf8)) }
        }
        var curve: CurveClientConfiguration?
        if let serverKey, let clientKey {
            do {
                let pair = try CurveKeyPair(secretKey: try readKey(clientKey, what: "secret key"))
                curve = CurveClientConfiguration(
                    serverPublicKey: try readKey(serverKey, what: "server public key"),
                    keyPair: pair)
            } catch let error as TransportError {
                throw CommandError("\(clientKey): \(error)")
            }
        }
        let transport: ZeroMQClient
        do {
            transport = try ZeroMQClient(connectingTo: connect, curve: curve, multiplexed: true)
        } catch {
            throw CommandError("\(connect): \(error)")
        }
        defer { transport.close() }
        let worker = Worker(transport: transport, options: options)
        let outcome: ClientOutcome
        do {
            outcome = try worker.run()
        } catch {
            throw CommandError("worker: \(error)")
        }
        switch outcome {
        case .shutdown(let reason): options.log("shutdown: \(reason)")
        case .idle:
            throw CommandError(
                "worker: nothing from \(connect) for \(Int(idleTimeout)) s; giving up")
        }
    }
}
