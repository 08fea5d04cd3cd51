import ArgumentParser
import CPlatform
import Datasets
import Federation
import Fleet
import Foundation
import LowRank
import Runtime
import Transport

struct ClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Run one federated client against a coordinator.",
        discussion: """
            The client needs only the coordinator's address, its tier and its data: either \
            MNIST-format files of its own (--data, with --tier), or its partition of a \
            scenario's data set (--partition-of with --index, which also decide the tier), \
            derived locally. No training data crosses the wire. Without --verbose it says one \
            line when it registers (its client ID and tier) and what it waits for, and tells a \
            refused connection (nothing at that address) from a coordinator that does not answer.
            """)

    @OptionGroup var connection: ConnectionOptions

    @Option(
        help:
            "This device's tier (a tier name of the coordinator's scenario); with --partition-of, the tier of --index unless given."
    )
    var tier: String?

    @Option(
        help:
            "Folder with train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] of this device."
    )
    var data: String?

    @Option(
        name: .customLong("partition-of"),
        help: "A scenario file whose data partition this client takes (with --index).")
    var partitionOf: String?

    @Option(help: "This client's index in the scenario's fleet (also its requested client ID).")
    var index: Int?

    @Option(
        name: .customLong("data-dir"),
        help: "With --partition-of: read the scenario's data files from this folder instead.")
    var dataDirectory: String?

    @Option(
        help:
            "This device's compute speed in GFLOP/s, reported at registration (`maestro bench --profile` measures it); the coordinator's virtual clock uses it instead of the tier's figure. Default: none reported."
    )
    var gflops: Float?

    func validate() throws {
        if let gflops, !(gflops.isFinite && gflops > 0) {
            throw ValidationError("--gflops must be a positive number (got \(gflops))")
        }
        guard (data == nil) != (partitionOf == nil) else {
            throw ValidationError(
                "give exactly one of --data DIR or --partition-of SCENARIO --index I")
        }
        if partitionOf != nil && index == nil {
            throw ValidationError("--partition-of needs --index")
        }
        if data != nil && tier == nil {
            throw ValidationError("--data needs --tier (the tier of this device)")
        }
        if let index, index < 0 { throw ValidationError("--index must be ≥ 0 (got \(index))") }
    }

    func run() throws {
        if connection.exitWithParent { exitWhenParentDies() }
        let samples: TrainingSamples
        var tier = self.tier ?? ""
        do {
            if let partitionOf, let index {
                var overrides: [(keyPath: String, value: String)] = []
                if let dataDirectory { overrides.append(("dataset.directory", dataDirectory)) }
                let scenario = try loadScenario(partitionOf, overrides: overrides)
                guard index < scenario.clients else {
                    throw CommandError(
                        "--index \(index): the scenario \(partitionOf) has \(scenario.clients) clients"
                    )
                }
                let assigned = scenario.fleet()[index].tier.name
                if self.tier == nil { tier = assigned }
                guard assigned == tier else {
                    throw CommandError(
                        "--tier \(tier) contradicts --partition-of \(partitionOf) --index \(index): client \(index) of that scenario is in tier \(assigned)"
                    )
                }
                samples = try scenario.clientSamples(index: index)
            } else {
                samples = try FashionMNIST.load(split: .train, directory: data!).samples
            }
        } catch let error as DatasetError {
            throw CommandError("\(error)")
        }
        let verbose = connection.verbose
        let connect = connection.connect
        let label = index.map { "client \($0)" } ?? "client"
        var options = FederatedClient.Options(
            coordinator: connect, tierName: tier, gflops: gflops ?? 0,
            requestedClientID: index.map(UInt32.init))
        options.idleTimeout = connection.idleDuration
        options.notice = { message in
            FileHandle.standardError.write(Data("\(label): \(message)\n".utf8))
        }
        options.log = { message in
            if verbose { FileHandle.standardError.write(Data("\(label): \(message)\n".utf8)) }
        }
        // A client `maestro fleet` started (it dies with its parent) leaves registrations
        // to the fleet's own progress line.
        if verbose || !connection.exitWithParent { options.announce = options.notice }
        let transport = try connection.transport()
        defer { transport.close() }
        let client = FederatedClient(transport: transport, samples: samples, options: options)
        switch try client.run() {
        case .shutdown(let reason): options.log("shutdown: \(PeerText.escaped(reason))")
        case .idle:
            throw CommandError(
                "\(label): "
                    + ConnectionText.gaveUp(
                        connect, seconds: Int(connection.idleTimeout),
                        connected: client.connected, failedConnects: client.failedConnects,
                        registered: client.registered))
        }
    }
}

/// Asks Linux to send SIGTERM when the parent exits, so fleet clients never outlive it.
func exitWhenParentDies() {
    _ = maestro_set_parent_death_signal(SIGTERM)
    // The parent may have died before the call: then init (1) or a subreaper adopted us.
    if getppid() == 1 { exit(1) }
}
