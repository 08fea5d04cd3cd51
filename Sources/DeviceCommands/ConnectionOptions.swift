import ArgumentParser
import Transport

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A fatal error of a command, already phrased for the user (names the file or flag).
public struct CommandError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }
}

/// What `client` and `worker` share: how they reach the coordinator and how long they wait.
public struct ConnectionOptions: ParsableArguments {
    @Option(help: "Coordinator address, e.g. tcp://192.0.2.10:5555.")
    public var connect: String

    @Option(
        name: .customLong("idle-timeout"),
        help: "Exit after this many seconds without a message from the coordinator.")
    public var idleTimeout: Double = 600

    @Flag(
        name: .customLong("exit-with-parent"),
        help: "Exit when the launching process dies (used by `maestro fleet`).")
    public var exitWithParent = false

    @Flag(help: "Log registration and errors to standard error.")
    public var verbose = false

    @OptionGroup public var keys: CurveClientKeyOptions

    public init() {}

    public func validate() throws {
        try validateEndpoint(connect, flag: "--connect")
        guard idleTimeout > 0 else { throw ValidationError("--idle-timeout must be > 0") }
    }

    public var idleDuration: Duration { .milliseconds(Int64(idleTimeout * 1000)) }

    /// The DEALER connection to the coordinator, with CURVE when the keys are given.
    public func transport(multiplexed: Bool = false) throws -> ZeroMQClient {
        let curve = try keys.configuration()
        do {
            return try ZeroMQClient(connectingTo: connect, curve: curve, multiplexed: multiplexed)
        } catch {
            throw CommandError("\(connect): \(error)")
        }
    }
}

/// A client's CURVE keys (`client`, `worker`, `bench profile`): the coordinator's public key
/// and this process's secret key.
public struct CurveClientKeyOptions: ParsableArguments {
    @Option(
        name: .customLong("server-key"),
        help: "The coordinator's CURVE public key file (turns CURVE on).")
    public var serverKey: String?

    @Option(
        name: .customLong("client-key"),
        help: "This process's CURVE secret key file (with --server-key; an enrolled key).")
    public var clientKey: String?

    public init() {}

    public func validate() throws {
        if (serverKey == nil) != (clientKey == nil) {
            throw ValidationError("--server-key and --client-key go together")
        }
    }

    /// The CURVE settings, or `nil` (plaintext) when the keys are not given.
    public func configuration() throws -> CurveClientConfiguration? {
        try curveClient(serverKey: serverKey, clientKey: clientKey)
    }
}

/// A client's CURVE settings from a coordinator's public key file and the client's secret
/// key file, or `nil` (plaintext) when they are not given.
public func curveClient(
    serverKey: String?, clientKey: String?
) throws -> CurveClientConfiguration? {
    guard let serverKey, let clientKey else { return nil }
    do {
        let pair = try CurveKeyFile.keyPair(secretKeyFile: clientKey)
        return CurveClientConfiguration(
            serverPublicKey: try CurveKeyFile.read(serverKey, what: "server public key"),
            keyPair: pair)
    } catch {
        throw CommandError("\(error)")
    }
}

/// Refuses an address without a ZeroMQ transport (`127.0.0.1:5555`), suggesting the one meant.
public func validateEndpoint(_ endpoint: String, flag: String) throws {
    // The standard library's search: Foundation's `contains` would link all of Foundation.
    guard endpoint.firstRange(of: "://") == nil else { return }
    throw ValidationError(
        "\(flag) \(endpoint) names no transport: did you mean tcp://\(endpoint)?")
}
