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
