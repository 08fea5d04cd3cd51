import ArgumentParser
import Foundation
import Launch
import Runtime
import Transport

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "CURVE key pairs for authenticated, encrypted federations.",
        subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write NAME.key (secret, mode 600) and NAME.pub (public) into a folder.",
            discussion: """
                Give the coordinator its .key and a folder of the clients' .pub files, or an \
                allow-list file of 'KEY ID [TIER]' lines that binds each key to its client \
                (--allow-keys); give each client its own .key and the coordinator's .pub.
                """)

        @Option(help: "Folder to write the keys into (created if missing).")
        var out: String

        @Option(help: "Base name of the files.")
        var name = "maestro"

        func run() throws {
            let written = try launching { () throws(LaunchError) in
                try KeyFiles.generate(in: out, name: name)
            }
            print(
                "wrote \(written.secretFile) (secret) and \(written.publicFile) (public key \(written.publicKey))"
            )
        }
    }
}

/// Coordinator-side security options.
struct ServerSecurityOptions: ParsableArguments {
    @Option(
        name: .customLong("curve-secret-key"),
        help: "The coordinator's CURVE secret key file (turns CURVE on).")
    var secretKey: String?

    @Option(
        name: .customLong("allow-keys"),
        help: ArgumentHelp(
            "Folder of clients' .pub files, or an allow-list file of 'KEY [ID [TIER]]' lines binding each key to a client ID (and tier).",
            valueName: "folder-or-file"))
    var allowKeys: String?

    func validate() throws {
        if allowKeys != nil && secretKey == nil {
            throw ValidationError("--allow-keys needs --curve-secret-key")
        }
        if secretKey != nil && allowKeys == nil {
            throw ValidationError(
                "--curve-secret-key needs --allow-keys (the clients' public keys)")
        }
    }
}

/// A client's CURVE keys (`client`, `worker`, `bench profile`): the coordinator's public key
/// and this process's secret key.
struct CurveClientKeyOptions: ParsableArguments {
    @Option(
        name: .customLong("server-key"),
        help: "The coordinator's CURVE public key file (turns CURVE on).")
    var serverKey: String?

    @Option(
        name: .customLong("client-key"),
        help: "This process's CURVE secret key file (with --server-key; an enrolled key).")
    var clientKey: String?

    func validate() throws {
        if (serverKey == nil) != (clientKey == nil) {
            throw ValidationError("--server-key and --client-key go together")
        }
    }

    /// The CURVE settings, or `nil` (plaintext) when the keys are not given.
    func configuration() throws -> CurveClientConfiguration? {
        try launching { () throws(LaunchError) in
            try KeyFiles.curveClient(serverKey: serverKey, clientKey: clientKey)
        }
    }
}

/// What `client` and `worker` share: how they reach the coordinator and how long they wait.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "Coordinator address, e.g. tcp://192.0.2.10:5555.")
    var connect: String

    @Option(
        name: .customLong("idle-timeout"),
        help: "Exit after this many seconds without a message from the coordinator.")
    var idleTimeout: Double = 600

    @Flag(
        name: .customLong("exit-with-parent"),
        help: "Exit when the launching process dies (used by `maestro fleet`).")
    var exitWithParent = false

    @Flag(help: "Log registration and errors to standard error.")
    var verbose = false

    @OptionGroup var keys: CurveClientKeyOptions

    func validate() throws {
        try validateEndpoint(connect, flag: "--connect")
        guard idleTimeout > 0 else { throw ValidationError("--idle-timeout must be > 0") }
    }

    var idleDuration: Duration { .milliseconds(Int64(idleTimeout * 1000)) }

    /// The DEALER connection to the coordinator, with CURVE when the keys are given.
    func transport(multiplexed: Bool = false) throws -> ZeroMQClient {
        let curve = try keys.configuration()
        do {
            return try ZeroMQClient(connectingTo: connect, curve: curve, multiplexed: multiplexed)
        } catch {
            throw CommandError("\(connect): \(error)")
        }
    }
}

/// Refuses an address without a ZeroMQ transport (`127.0.0.1:5555`), suggesting the one meant.
func validateEndpoint(_ endpoint: String, flag: String) throws {
    guard !endpoint.contains("://") else { return }
    throw ValidationError(
        "\(flag) \(endpoint) names no transport: did you mean tcp://\(endpoint)?")
}
