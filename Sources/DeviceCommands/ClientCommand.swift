import ArgumentParser
import CPlatform
import Datasets
import Device
import Federation
import LowRank
import Transport

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Where `client --partition-of SCENARIO --index I` finds the client's tier and samples. The
/// full `maestro` reads scenarios; the board's build links no scenario reader (YAML needs all
/// of Foundation) and hides the option.
public protocol ScenarioPartitions {
    /// Whether `--partition-of` is offered at all.
    static var available: Bool { get }

    /// The tier of client `index` of the scenario at `path` and that client's training
    /// samples, read from `dataDirectory` instead of the scenario's folder when given.
    static func partition(
        of path: String, index: Int, dataDirectory: String?
    ) throws -> (tier: String, samples: TrainingSamples)
}

/// The board's build: no scenario reader, so a client takes only its own files (`--data`).
public enum NoScenarioPartitions: ScenarioPartitions {
    public static var available: Bool { false }

    public static func partition(
        of path: String, index: Int, dataDirectory: String?
    ) throws -> (tier: String, samples: TrainingSamples) {
        throw CommandError(
            "--partition-of \(path): this build of maestro (the board client) reads no scenarios; give the device's own files with --data"
        )
    }
}

public struct ClientCommand<Scenarios: ScenarioPartitions>: ParsableCommand {
    public static var configuration: CommandConfiguration {
        let data =
            Scenarios.available
            ? """
            either MNIST-format files of its own (--data), or its partition of a scenario's \
            data set (--partition-of with --index), derived locally
            """ : "MNIST-format files of its own (--data)"
        return CommandConfiguration(
            commandName: "client",
            abstract: "Run one federated client against a coordinator.",
            discussion: """
                The client needs only the coordinator's address, its tier and its data: \
                \(data). No training data crosses the wire.
                """)
    }

    public init() {}

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "This device's tier (a tier name of the coordinator's scenario).")
    var tier: String

    @Option(
        help:
            "Folder with train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] of this device."
    )
    var data: String?

    @Option(
        name: .customLong("partition-of"),
        help: ArgumentHelp(
            "A scenario file whose data partition this client takes (with --index).",
            visibility: Scenarios.available ? .default : .private))
    var partitionOf: String?

    @Option(help: "This client's index in the scenario's fleet (also its requested client ID).")
    var index: Int?

    @Option(
        name: .customLong("data-dir"),
        help: ArgumentHelp(
            "With --partition-of: read the scenario's data files from this folder instead.",
            visibility: Scenarios.available ? .default : .private))
    var dataDirectory: String?

    @Option(
        help:
            "This device's compute speed in GFLOP/s, reported at registration (`maestro bench --profile` measures it); the coordinator's virtual clock uses it instead of the tier's figure. Default: none reported."
    )
    var gflops: Float?

    public func validate() throws {
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
        if let index, index < 0 { throw ValidationError("--index must be ≥ 0 (got \(index))") }
    }

    public func run() throws {
        if connection.exitWithParent { exitWhenParentDies() }
        let samples: TrainingSamples
        do {
            if let partitionOf, let index {
                let (assigned, partition) = try Scenarios.partition(
                    of: partitionOf, index: index, dataDirectory: dataDirectory)
                guard assigned == tier else {
                    throw CommandError(
                        "--tier \(tier) contradicts --partition-of \(partitionOf) --index \(index): client \(index) of that scenario is in tier \(assigned)"
                    )
                }
                samples = partition
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
        options.notice = { message in writeToStandardError("\(label): \(message)") }
        options.log = { message in
            if verbose { writeToStandardError("\(label): \(message)") }
        }
        let transport = try connection.transport()
        defer { transport.close() }
        let client = FederatedClient(transport: transport, samples: samples, options: options)
        switch try client.run() {
        case .shutdown(let reason): options.log("shutdown: \(PeerText.escaped(reason))")
        case .idle:
            throw CommandError(
                "\(label): nothing from \(connect) for \(Int(connection.idleTimeout)) s; giving up")
        }
    }
}

/// Asks Linux to send SIGTERM when the parent exits, so fleet clients never outlive it.
public func exitWhenParentDies() {
    _ = maestro_set_parent_death_signal(SIGTERM)
    // The parent may have died before the call: then init (1) or a subreaper adopted us.
    if getppid() == 1 { exit(1) }
}
