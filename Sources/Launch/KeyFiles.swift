import Foundation
import RunRecords
import Runtime
import Transport

/// The key and secret files of a federation: CURVE keys, allow-lists and worker secrets.
public enum KeyFiles {
    /// Writes a file atomically (temporary file, fsync, rename) or fails naming it.
    public static func write(
        _ bytes: [UInt8], to path: String, mode: mode_t = 0o644
    ) throws(LaunchError) {
        do {
            try RunRecorder.writeAtomically(bytes, to: path, mode: mode)
        } catch {
            throw .failed("\(error)")
        }
    }

    /// Makes a CURVE key pair and writes `NAME.key` (secret, mode 600) and `NAME.pub` into
    /// `folder` (created if missing); never writes over a secret key.
    public static func generate(
        in folder: String, name: String
    ) throws(LaunchError) -> (secretFile: String, publicFile: String, publicKey: String) {
        guard CurveKeyPair.isAvailable else { throw .failed("this libzmq was built without CURVE") }
        let secret = URL(fileURLWithPath: folder).appendingPathComponent("\(name).key").path
        let publicFile = URL(fileURLWithPath: folder).appendingPathComponent("\(name).pub").path
        guard !FileManager.default.fileExists(atPath: secret) else {
            throw .failed("\(secret): exists; not overwriting a secret key")
        }
        let pair: CurveKeyPair
        do {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true)
            pair = try CurveKeyPair.generate()
        } catch {
            throw .failed("\(folder): \(error)")
        }
        try write(Array((pair.secretKey + "\n").utf8), to: secret, mode: 0o600)
        try write(Array((pair.publicKey + "\n").utf8), to: publicFile)
        return (secret, publicFile, pair.publicKey)
    }

    /// A key pair from a secret key file.
    public static func keyPair(secretKeyFile path: String) throws(LaunchError) -> CurveKeyPair {
        do {
            return try CurveKeyFile.keyPair(secretKeyFile: path)
        } catch {
            throw .failed("\(error)")
        }
    }

    /// The allow-list: a folder of `*.pub` files (keys bound to no ID), or a file of
    /// `KEY [ID [TIER]]` lines (see `Enrolment`).
    public static func allowList(_ path: String) throws(LaunchError) -> Enrolment {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .failed("\(path): no such allow-list file or folder")
        }
        guard isDirectory.boolValue else {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw .failed("\(path): cannot read the allow-list")
            }
            do {
                return try Enrolment.parse(text, path: path)
            } catch {
                throw .failed("\(error)")
            }
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw .failed("\(path): cannot list the allow-list folder")
        }
        var enrolment = Enrolment()
        for name in names.filter({ $0.hasSuffix(".pub") }).sorted() {
            let full = URL(fileURLWithPath: path).appendingPathComponent(name).path
            let key: String
            do {
                key = try CurveKeyFile.read(full, what: "public key")
            } catch {
                throw .failed("\(error)")
            }
            if let problem = enrolment.add(key: key, entry: .init()) {
                throw .failed("\(full): \(problem)")
            }
        }
        return enrolment
    }

    /// The worker secret in `path`: read if the file exists, else made and written there
    /// (mode 600) for the workers that will join.
    public static func workerSecret(
        at path: String
    ) throws(LaunchError) -> (secret: String, created: Bool) {
        if FileManager.default.fileExists(atPath: path) {
            return (try readWorkerSecret(path), false)
        }
        let secret = WorkerSecret.generate()
        try write(Array((secret + "\n").utf8), to: path, mode: 0o600)
        return (secret, true)
    }

    /// The worker secret in the file at `path`, which no other user may read (as ssh insists
    /// for its keys).
    public static func readWorkerSecret(_ path: String) throws(LaunchError) -> String {
        var status = stat()
        if stat(path, &status) == 0, status.st_mode & 0o077 != 0 {
            throw .failed(
                "\(path): the worker secret is readable by other users (mode \(String(status.st_mode & 0o777, radix: 8))); chmod 600 it"
            )
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw .failed("\(path): cannot read the worker secret")
        }
        let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if let problem = WorkerSecret.problem(with: secret) {
            throw .failed("\(path): \(problem)")
        }
        return secret
    }
}
