import Foundation
import Testing

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
                "coordinator", "--scenario", "Scenarios/smoke.yaml", "--bind", endpoint, "--out",
                run, "--quiet",
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
        #expect(metricsLines(run) == 12)
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
        let coordinator = try maestro(
            inNamespace: coordinatorNS,
            [
                "coordinator", "--scenario", "Scenarios/smoke.yaml", "--rounds", "4", "--bind",
                "tcp://*:5555", "--workers", "2", "--out", run, "--quiet",
            ])
        // One worker names its share (as Slurm's SLURM_PROCID gives it), one takes any free one.
        let workers = [
            try maestro(
                inNamespace: firstNS,
                ["worker", "--connect", "tcp://10.213.8.1:5555", "--slot", "1", "--slots", "2"]),
            try maestro(inNamespace: secondNS, ["worker", "--connect", "tcp://10.213.9.1:5555"]),
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
