import Foundation
import Testing

/// Held by the board test while its static release build takes the CPU for minutes, and by
/// the partition test, whose clients then missed a round's deadline and sat out their
/// cooldown (seen twice in full `--parallel` runs): the two never overlap.
let staticBuildExclusion = NSLock()

/// Runs a command to completion and returns its exit status.
@discardableResult
func system(_ arguments: [String]) -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    do {
        try process.run()
    } catch {
        return -1
    }
    process.waitUntilExit()
    return process.terminationStatus
}

/// Whether this test run may create network namespaces (root with iproute2).
let canMakeNamespaces: Bool = {
    guard getuid() == 0 else { return false }
    let probe = "mstprobe\(getpid())"
    guard system(["ip", "netns", "add", probe]) == 0 else { return false }
    system(["ip", "netns", "del", probe])
    return true
}()

/// Runs `maestro ARGUMENTS` inside a network namespace, its output discarded (or its
/// standard error appended to `log`).
func maestro(
    inNamespace namespace: String, _ arguments: [String], log: String? = nil
) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["ip", "netns", "exec", namespace, maestroPath] + arguments
    process.currentDirectoryURL = repositoryRoot
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    if let log {
        if !FileManager.default.fileExists(atPath: log) {
            FileManager.default.createFile(atPath: log, contents: nil)
        }
        if let handle = FileHandle(forWritingAtPath: log) {
            handle.seekToEndOfFile()
            process.standardError = handle
        }
    }
    try process.run()
    return process
}

/// Creates `namespace` (loopback up) and, for each link, a veth pair from `namespace` to an
/// existing namespace: `(peer namespace, this side's address, the peer's address)` in a /24.
/// Returns the commands that failed.
func makeNamespace(
    _ namespace: String, links: [(peer: String, local: String, remote: String)], tag: Int
) -> [String] {
    var commands = [
        ["ip", "netns", "add", namespace], ["ip", "-n", namespace, "link", "set", "lo", "up"],
    ]
    for (index, link) in links.enumerated() {
        let (local, remote) = ("mstv\(tag)\(index)a", "mstv\(tag)\(index)b")
        commands += [
            ["ip", "link", "add", local, "type", "veth", "peer", "name", remote],
            ["ip", "link", "set", local, "netns", namespace],
            ["ip", "link", "set", remote, "netns", link.peer],
            ["ip", "-n", namespace, "addr", "add", "\(link.local)/24", "dev", local],
            ["ip", "-n", link.peer, "addr", "add", "\(link.remote)/24", "dev", remote],
            ["ip", "-n", namespace, "link", "set", local, "up"],
            ["ip", "-n", link.peer, "link", "set", remote, "up"],
        ]
    }
    return commands.filter { system($0) != 0 }.map { $0.joined(separator: " ") }
}

@Suite("Real network partitions", .serialized)
struct PartitionTests {
    /// Coordinator and clients in two network namespaces joined by a veth pair; the link is
    /// cut mid-run and restored. Only addresses inside these namespaces are used.
    @Test(
        "Cutting the link mid-round and restoring it: clients reconnect and the run completes",
        .enabled(if: canMakeNamespaces, "needs root and `ip netns` (iproute2); skipped otherwise"))
    func partition() throws {
        staticBuildExclusion.lock()
        defer { staticBuildExclusion.unlock() }
        let tag = Int(getpid() % 100_000)
        let (coordinatorNS, clientNS) = ("mstc\(tag)", "msts\(tag)")
        let (coordinatorAddress, clientAddress) = ("10.213.7.1", "10.213.7.2")
        defer {
            system(["ip", "netns", "del", coordinatorNS])
            system(["ip", "netns", "del", clientNS])
        }
        #expect(makeNamespace(coordinatorNS, links: [], tag: tag).isEmpty)
        let failed = makeNamespace(
            clientNS, links: [(coordinatorNS, clientAddress, coordinatorAddress)], tag: tag)
        #expect(failed.isEmpty, "\(failed)")
        let coordinatorLink = "mstv\(tag)0b"
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = "\(directory)/run"
        let endpoint = "tcp://\(coordinatorAddress):5555"
        let coordinator = try maestro(
            inNamespace: coordinatorNS,
            [
                // 40 rounds, not smoke's 12: the clients reconnect one by one after the
                // heal, and the first one back would otherwise finish the run alone.
                "coordinator", "--scenario", "Scenarios/smoke.yaml", "--rounds", "40", "--bind",
                endpoint, "--out", run, "--quiet",
                "--round-timeout", "60",  // the cut is seen by the socket monitor; this only absorbs a loaded CI machine
            ])
        var clients: [Process] = []
        defer {
            for client in clients where client.isRunning { client.terminate() }
            if coordinator.isRunning { coordinator.terminate() }
        }
        for index in 0..<6 {
            clients.append(
                try maestro(
                    inNamespace: clientNS,
                    [
                        "client", "--connect", endpoint, "--tier", index < 3 ? "low" : "full",
                        "--partition-of",
                        "Scenarios/smoke.yaml", "--index", "\(index)", "--idle-timeout", "120",
                    ]))
        }
        let deadline = Date().addingTimeInterval(400)
        while metricsLines(run) < 2 && coordinator.isRunning && Date() < deadline { usleep(20_000) }
        #expect(coordinator.isRunning, "the run ended before the link could be cut")
        // Cut the link for longer than the heartbeat timeout, then restore it.
        #expect(system(["ip", "-n", coordinatorNS, "link", "set", coordinatorLink, "down"]) == 0)
        sleep(4)
        #expect(system(["ip", "-n", coordinatorNS, "link", "set", coordinatorLink, "up"]) == 0)
        while coordinator.isRunning && Date() < deadline { usleep(50_000) }
        #expect(!coordinator.isRunning, "the coordinator did not finish within 400 s")
        #expect(coordinator.terminationStatus == 0)
        #expect(metricsLines(run) == 40)
        #expect(FileManager.default.fileExists(atPath: "\(run)/summary.json"))
        // The clients came back: the last rounds, long after the link healed, have the
        // round's full selection of participants (a run with no client back would end with
        // rounds of none).
        let lines = try String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8)
            .split(separator: "\n").suffix(2)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            #expect((object["participants"] as? [Int] ?? []).count == 3, "\(line)")
        }
    }
}

@Suite("Workers on other hosts", .serialized)
struct RemoteWorkerTests {
    /// A coordinator and two workers in three network namespaces, each worker joined to the
    /// coordinator's namespace by a veth pair of its own: the run is the one a local fleet
    /// computes, bit for bit.
    @Test(
        "A coordinator and two workers in three namespaces run the fleet a local run computes",
        .enabled(if: canMakeNamespaces, "needs root and `ip netns` (iproute2); skipped otherwise"))
    func threeHosts() throws {
        let tag = Int(getpid() % 10_000)
        let (coordinatorNS, firstNS, secondNS) = ("mstw\(tag)c", "mstw\(tag)a", "mstw\(tag)b")
        defer {
            for namespace in [coordinatorNS, firstNS, secondNS] {
                system(["ip", "netns", "del", namespace])
            }
        }
        #expect(makeNamespace(coordinatorNS, links: [], tag: tag * 10).isEmpty)
        var failed = makeNamespace(
            firstNS, links: [(coordinatorNS, "10.213.8.2", "10.213.8.1")], tag: tag * 10 + 1)
        failed += makeNamespace(
            secondNS, links: [(coordinatorNS, "10.213.9.2", "10.213.9.1")], tag: tag * 10 + 2)
        #expect(failed.isEmpty, "\(failed)")

        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let reference = try maestro(
            [
                "fleet", "Scenarios/smoke.yaml", "--rounds", "4", "--process-per-client", "--quiet",
                "--out", "\(directory)/reference",
            ], timeout: 600)
        #expect(reference.status == 0, "\(reference.error.suffix(1000))")

        let run = "\(directory)/run"
        // The worker secret the coordinator admits workers by, shared as a file (mode 600).
        let secret = "\(directory)/worker.secret"
        FileManager.default.createFile(
            atPath: secret, contents: Data("0123456789abcdef0123456789abcdef\n".utf8),
            attributes: [.posixPermissions: 0o600])
        let coordinator = try maestro(
            inNamespace: coordinatorNS,
            [
                "coordinator", "--scenario", "Scenarios/smoke.yaml", "--rounds", "4", "--bind",
                "tcp://*:5555", "--workers", "2", "--out", run, "--quiet", "--worker-secret-file",
                secret,
            ])
        // One worker names its share (as Slurm's SLURM_PROCID gives it), one takes any free one.
        let workers = [
            try maestro(
                inNamespace: firstNS,
                [
                    "worker", "--connect", "tcp://10.213.8.1:5555", "--slot", "1", "--slots", "2",
                    "--worker-secret-file", secret,
                ]),
            try maestro(
                inNamespace: secondNS,
                ["worker", "--connect", "tcp://10.213.9.1:5555", "--worker-secret-file", secret]),
        ]
        defer {
            for process in workers + [coordinator] where process.isRunning { process.terminate() }
        }
        let deadline = Date().addingTimeInterval(300)
        while (coordinator.isRunning || workers.contains(where: \.isRunning)) && Date() < deadline {
            usleep(50_000)
        }
        #expect(!coordinator.isRunning && coordinator.terminationStatus == 0)
        #expect(workers.allSatisfy { !$0.isRunning && $0.terminationStatus == 0 })
        let expected = try RunRecord("\(directory)/reference")
        let record = try RunRecord(run)
        #expect(record.model == expected.model)
        #expect(record.ledger == expected.ledger)
        #expect(record.metrics == expected.metrics)
    }
}

@Suite("A device measures its link to a real coordinator", .serialized)
struct LinkProfileTests {
    static let canShape = canMakeNamespaces && system(["tc", "-V"]) == 0

    /// The tier line's figure for `key`, if it is there.
    func figure(_ key: String, in output: String) -> Double? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("- {") }),
            let field = line.split(separator: ",").first(where: { $0.contains("\(key):") })
        else { return nil }
        return Double(
            field.split(separator: ":")[1].trimmingCharacters(in: CharacterSet(charactersIn: " }")))
    }

    @Test(
        "bench --profile --coordinator over a link shaped to 40 Mbit/s up and 10 Mbit/s down reports both within 20 %",
        .enabled(
            if: LinkProfileTests.canShape, "needs root, `ip netns` and `tc`; skipped otherwise"))
    func shapedLink() throws {
        let tag = 200_000 + Int(getpid() % 100_000)
        let (coordinatorNS, deviceNS) = ("mstlc\(tag)", "mstld\(tag)")
        defer {
            system(["ip", "netns", "del", coordinatorNS])
            system(["ip", "netns", "del", deviceNS])
        }
        #expect(makeNamespace(coordinatorNS, links: [], tag: tag).isEmpty)
        let failed = makeNamespace(
            deviceNS, links: [(coordinatorNS, "10.213.9.2", "10.213.9.1")], tag: tag)
        try #require(failed.isEmpty, "\(failed)")
        // Token buckets on each side's egress: the device's is its uplink.
        for (namespace, device, rate) in [
            (deviceNS, "mstv\(tag)0a", "40mbit"), (coordinatorNS, "mstv\(tag)0b", "10mbit"),
        ] {
            let status = system([
                "ip", "netns", "exec", namespace, "tc", "qdisc", "add", "dev", device, "root",
                "tbf", "rate", rate, "burst", "32kb", "latency", "400ms",
            ])
            try #require(status == 0, "tc could not shape \(device) in \(namespace)")
        }
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A coordinator waiting for its clients answers probes meanwhile.
        let coordinator = try maestro(
            inNamespace: coordinatorNS,
            [
                "coordinator", "--scenario", "Scenarios/smoke.yaml", "--bind",
                "tcp://10.213.9.1:5555", "--expect", "6", "--out", "\(directory)/run", "--quiet",
            ])
        defer {
            coordinator.terminate()
            coordinator.waitUntilExit()
        }
        let profiled = try maestro(
            [
                "bench", "--profile", "--model", "mlp", "--seconds", "0.1", "--name", "board",
                "--coordinator", "tcp://10.213.9.1:5555",
            ], timeout: 120, namespace: deviceNS)
        try #require(profiled.status == 0, "\(profiled.error)")
        let uplink = try #require(figure("uplinkMbps", in: profiled.output), "\(profiled.output)")
        let downlink = try #require(
            figure("downlinkMbps", in: profiled.output), "\(profiled.output)")
        let latency = try #require(figure("latencyMs", in: profiled.output), "\(profiled.output)")
        #expect(abs(uplink - 40) <= 8, "uplink \(uplink) Mbit/s, shaped to 40")
        #expect(abs(downlink - 10) <= 2, "downlink \(downlink) Mbit/s, shaped to 10")
        #expect(latency > 0 && latency < 50)
        #expect(profiled.output.contains("KiB transfers up and echoed back"))

        // Nothing listens on another port: a clear error within the wait, not a hang.
        let nobody = try maestro(
            [
                "bench", "--profile", "--model", "mlp", "--seconds", "0.1", "--coordinator",
                "tcp://10.213.9.1:5556", "--coordinator-wait", "2",
            ], timeout: 120, namespace: deviceNS)
        #expect(nobody.status != 0)
        #expect(
            nobody.error.contains("no answer from the coordinator at tcp://10.213.9.1:5556"),
            "\(nobody.error)")
    }
}
