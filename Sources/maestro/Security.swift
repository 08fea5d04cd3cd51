import ArgumentParser
import Foundation
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
            guard CurveKeyPair.isAvailable else {
                throw CommandError("this libzmq was built without CURVE")
            }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let pair: CurveKeyPair
            do {
                pair = try CurveKeyPair.generate()
            } catch {
                throw CommandError("\(error)")
            }
            let secret = URL(fileURLWithPath: out).appendingPathComponent("\(name).key").path
            let publicFile = URL(fileURLWithPath: out).appendingPathComponent("\(name).pub").path
            guard !FileManager.default.fileExists(atPath: secret) else {
                throw CommandError("\(secret): exists; not overwriting a secret key")
            }
            try writeAtomically(Array((pair.secretKey + "\n").utf8), to: secret, mode: 0o600)
            try writeAtomically(Array((pair.publicKey + "\n").utf8), to: publicFile)
            print("wrote \(secret) (secret) and \(publicFile) (public key \(pair.publicKey))")
        }
    }
}

/// The allow-list: a folder of `*.pub` files (keys bound to no ID), or a file of
/// `KEY [ID [TIER]]` lines (see `Enrolment`).
func readAllowList(_ path: String) throws -> Enrolment {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw CommandError("\(path): no such allow-list file or folder")
    }
    guard isDirectory.boolValue else {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CommandError("\(path): cannot read the allow-list")
        }
        do {
            return try Enrolment.parse(text, path: path)
        } catch {
            throw CommandError("\(error)")
        }
    }
    var enrolment = Enrolment()
    let files = try FileManager.default.contentsOfDirectory(atPath: path).filter {
        $0.hasSuffix(".pub")
    }.sorted()
    for file in files {
        let full = URL(fileURLWithPath: path).appendingPathComponent(file).path
        if let problem = enrolment.add(key: try readKey(full, what: "public key"), entry: .init()) {
            throw CommandError("\(full): \(problem)")
        }
    }
    return enrolment
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

    /// Who may register as whom (nil in plaintext).
    func enrolment() throws -> Enrolment? {
        guard secretKey != nil, let allowKeys else { return nil }
        return try readAllowList(allowKeys)
    }

    /// The CURVE configuration, or nil for plaintext; `required` (scenario security) refuses plaintext.
    func configuration(required: Bool) throws -> CurveServerConfiguration? {
        guard let secretKey else {
            if required {
                throw CommandError(
                    "the scenario requires CURVE (security.requireCurve): give --curve-secret-key and --allow-keys"
                )
            }
            if allowKeys != nil { throw ValidationError("--allow-keys needs --curve-secret-key") }
            return nil
        }
        guard let allowKeys else {
            throw ValidationError(
                "--curve-secret-key needs --allow-keys (the clients' public keys)")
        }
        let pair: CurveKeyPair
        do {
            pair = try CurveKeyPair(secretKey: try readKey(secretKey, what: "secret key"))
        } catch let error as TransportError {
            throw CommandError("\(secretKey): \(error)")
        }
        return CurveServerConfiguration(
            keyPair: pair, allowedClientKeys: try readAllowList(allowKeys).keys)
    }
}

/// The worker secret in `path`: read if the file exists, else made and written there
/// (mode 600) for the workers that will join.
func workerSecret(at path: String) throws -> (secret: String, created: Bool) {
    if FileManager.default.fileExists(atPath: path) { return (try readWorkerSecret(path), false) }
    let secret = WorkerSecret.generate()
    try writeAtomically(Array((secret + "\n").utf8), to: path, mode: 0o600)
    return (secret, true)
}

/// The worker secret in the file at `path`, which no other user may read (as ssh insists for
/// its keys).
func readWorkerSecret(_ path: String) throws -> String {
    var status = stat()
    if stat(path, &status) == 0, status.st_mode & 0o077 != 0 {
        throw CommandError(
            "\(path): the worker secret is readable by other users (mode \(String(status.st_mode & 0o777, radix: 8))); chmod 600 it"
        )
    }
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw CommandError("\(path): cannot read the worker secret")
    }
    let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
    if let problem = WorkerSecret.problem(with: secret) {
        throw CommandError("\(path): \(problem)")
    }
    return secret
}
