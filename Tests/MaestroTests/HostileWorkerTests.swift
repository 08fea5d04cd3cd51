import Federation
import Foundation
import Testing
import Transport

/// A peer on the worker protocol that is no worker: it speaks on a multiplexed connection as a
/// worker would, with whatever it claims.
struct HostilePeer {
    let transport: ZeroMQClient

    init(_ endpoint: String) throws {
        transport = try ZeroMQClient(connectingTo: endpoint, multiplexed: true)
    }

    func send(_ message: Message, channel: [UInt8], sender: UInt32 = 0) throws {
        try transport.send(
            WireCodec.encode(message, round: 0, sender: sender), to: .coordinator(channel: channel))
    }

    /// Every frame that arrives within `seconds`.

    /// Every frame until `quiet` seconds pass without one, waiting up to `first` seconds for
    /// the first: a count that does not depend on how fast a loaded machine answers.
    func frames(first: Double, quiet: Double) throws -> [ReceivedFrame] {
        var frames: [ReceivedFrame] = []
        var deadline = Date().addingTimeInterval(first)
        while Date() < deadline {
            if let frame = try transport.receive(timeout: .milliseconds(100)) {
                frames.append(frame)
                deadline = Date().addingTimeInterval(quiet)
            }
        }
        return frames
    }

    static func hello(slot: UInt32?, slots: UInt32?, credential: String) -> Message {
        .workerHello(
            WorkerHello(
                slot: slot, slots: slots, instanceNonce: 7, host: "intruder", credential: credential
            ))
    }
}

@Suite("Hostile peers on the worker protocol, against a real coordinator", .serialized)
struct HostileWorkerTests {
    @Test(
        "A HELLO without the secret gets a short refusal and fixes no split; a channel REGISTER is refused; a live share is not taken; the real workers' run is the fleet's"
    )
    func forgedWorkers() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let reference = try maestro(
            [
                "fleet", "Scenarios/smoke.yaml", "--rounds", "3", "--workers", "2", "--quiet",
                "--out", "\(directory)/reference",
            ], timeout: 600)
        #expect(reference.status == 0, "\(reference.error.suffix(800))")

        let run = "\(directory)/run"
        let endpoint = "tcp://127.0.0.1:\(20_000 + Int.random(in: 0..<20_000))"
        // No --workers: the split is whatever the first admitted worker declares.
        let coordinator = try startMaestro([
            "coordinator", "--scenario", "Scenarios/smoke.yaml", "--bind", endpoint, "--out", run,
            "--rounds", "3", "--quiet",
        ])
        defer { if coordinator.isRunning { coordinator.terminate() } }
        let secretFile = "\(run)/worker.secret"
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: secretFile) && Date() < deadline {
            usleep(20_000)
        }
        let secret = try String(contentsOfFile: secretFile, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let attributes = try FileManager.default.attributesOfItem(atPath: secretFile)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)

        let intruder = try HostilePeer(endpoint)
        for credential in ["", "guess", String(secret.dropLast()) + "x"] {
            let hello = HostilePeer.hello(slot: 0, slots: 5, credential: credential)
            try intruder.send(hello, channel: [])
            let replies = try intruder.frames(first: 60, quiet: 1.5)
            #expect(replies.count == 1, "\(replies.count) replies to a forged HELLO")
            for reply in replies {
                #expect(
                    reply.bytes.count <= WireCodec.encode(hello, round: 0, sender: 0).count,
                    "a forged HELLO was answered with \(reply.bytes.count) bytes")
                guard
                    case .error(let report) = try WireCodec.decode(
                        reply.bytes, maximumSize: 1 << 20
                    ).message
                else {
                    Issue.record("a forged HELLO was answered with something other than an error")
                    continue
                }
                #expect(report.message == "not a worker")
            }
        }
        // A REGISTER on a client's channel, as a worker's client would send it.
        try intruder.send(
            .register(
                Registration(
                    tierName: "low", capability: 1, sampleCount: 10, instanceNonce: 3,
                    requestedClientID: 0)), channel: Array("0".utf8))
        let answers = try intruder.frames(first: 60, quiet: 1.0).compactMap {
            try? WireCodec.decode($0.bytes, maximumSize: 1 << 20).message
        }
        #expect(answers.count == 1)
        #expect(answers.allSatisfy { if case .error = $0 { true } else { false } })

        // The real workers declare a split into 2 (the intruder's 5 was never taken).
        let workers = try (0..<2).map { slot in
            try startMaestro([
                "worker", "--connect", endpoint, "--slot", "\(slot)", "--slots", "2",
                "--worker-secret-file", secretFile,
            ])
        }
        defer { for worker in workers where worker.isRunning { worker.terminate() } }
        while metricsLines(run) < 1 && coordinator.isRunning && Date() < deadline + 240 {
            usleep(20_000)
        }
        // With the secret, a second connection asking for a live worker's share is refused.
        let thief = try HostilePeer(endpoint)
        try thief.send(HostilePeer.hello(slot: 0, slots: 2, credential: secret), channel: [])
        let stolen = try thief.frames(first: 30, quiet: 1.5).compactMap {
            try? WireCodec.decode($0.bytes, maximumSize: 1 << 20).message
        }
        #expect(stolen.count == 1)
        if case .error(let report)? = stolen.first {
            #expect(report.message.contains("held by a live worker"), "\(report.message)")
        } else {
            Issue.record("a live share was handed to another connection: \(stolen)")
        }

        coordinator.waitUntilExit()
        #expect(coordinator.terminationStatus == 0)
        for worker in workers { worker.waitUntilExit() }
        #expect(workers.allSatisfy { $0.terminationStatus == 0 }, "a worker did not end cleanly")
        let model = try Data(contentsOf: URL(fileURLWithPath: "\(run)/final.maestro"))
        let expected = try Data(
            contentsOf: URL(fileURLWithPath: "\(directory)/reference/final.maestro"))
        #expect(model == expected, "the intruders changed the run")
    }

    @Test(
        "A worker without the secret, or with a secret file other users can read, stops with a message naming the file"
    )
    func workerWithoutSecret() throws {
        let result = try maestro(
            ["worker", "--connect", "tcp://127.0.0.1:9", "--slot", "0", "--slots", "1"],
            timeout: 60)
        #expect(result.status != 0)
        #expect(result.error.contains("--worker-secret-file"))
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = "\(directory)/worker.secret"
        try Data("0123456789abcdef0123456789abcdef\n".utf8).write(to: URL(fileURLWithPath: file))
        chmod(file, 0o644)
        for command in [
            ["worker", "--connect", "tcp://127.0.0.1:9", "--worker-secret-file", file],
            [
                "coordinator", "--scenario", "Scenarios/smoke.yaml", "--bind", "tcp://127.0.0.1:*",
                "--out", "\(directory)/run", "--worker-secret-file", file,
            ],
        ] {
            let open = try maestro(command, timeout: 60)
            #expect(open.status != 0)
            #expect(
                open.error.contains("\(file): the worker secret is readable by other users"),
                "\(open.error)")
        }
    }
}
