import Foundation
import Runtime
import Transport

/// Key pairs of a CURVE-secured simulated fleet, written to RUNDIR/keys (secret files 600):
/// the coordinator's and one per client process or worker. A resumed run keeps its keys.
public struct FleetKeys {
    public let directory: String
    public let serverConfiguration: CurveServerConfiguration
    /// Each client process's key bound to its fleet index and tier (workers' keys, which
    /// host many clients, to none).
    public let enrolment: Enrolment

    /// `bindings[i]` is the client ID and tier of `names[i]`'s key, when given.
    public init(
        runDirectory: String, names: [String], bindings: [(UInt32, String)]? = nil
    ) throws(LaunchError) {
        let folder = URL(fileURLWithPath: runDirectory).appendingPathComponent("keys").path
        do {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw .failed("\(folder): cannot create the key folder")
        }
        func pair(_ name: String) throws(LaunchError) -> CurveKeyPair {
            let secret = "\(folder)/\(name).key"
            if FileManager.default.fileExists(atPath: secret) {
                return try KeyFiles.keyPair(secretKeyFile: secret)
            }
            let pair: CurveKeyPair
            do {
                pair = try CurveKeyPair.generate()
            } catch {
                throw .failed("\(error)")
            }
            try KeyFiles.write(Array((pair.secretKey + "\n").utf8), to: secret, mode: 0o600)
            try KeyFiles.write(Array((pair.publicKey + "\n").utf8), to: "\(folder)/\(name).pub")
            return pair
        }
        directory = folder
        let server = try pair("coordinator")
        var enrolment = Enrolment()
        var lines = [
            "# maestro fleet: each client's key bound to its client ID and tier, or a worker's key"
        ]
        for (index, name) in names.enumerated() {
            let key = try pair(name).publicKey
            // Without bindings the keys are the workers': enrolled as workers, never devices.
            let binding = bindings?[index]
            _ = enrolment.add(
                key: key,
                entry: binding.map { Enrolment.Entry(clientID: $0.0, tier: $0.1) } ?? .worker)
            lines.append(
                [key, binding.map { "\($0.0) \($0.1)" } ?? "worker"].joined(separator: " "))
        }
        try KeyFiles.write(
            Array((lines.joined(separator: "\n") + "\n").utf8), to: "\(folder)/allow-list")
        self.enrolment = enrolment
        serverConfiguration = CurveServerConfiguration(
            keyPair: server, allowedClientKeys: enrolment.keys)
    }

    /// The key options of the process `name`.
    public func arguments(name: String) -> [String] {
        [
            "--server-key", "\(directory)/coordinator.pub", "--client-key",
            "\(directory)/\(name).key",
        ]
    }
}
