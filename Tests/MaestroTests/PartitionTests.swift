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

@Suite("Real network partitions", .serialized)
struct PartitionTests {
    /// Coordinator and clients in two network namespaces joined by a veth pair; the link is
    /// cut mid-run and restored. Only addresses inside these namespaces are used.
    @Test(
        "Cutting the link mid-round and restoring it: clients reconnect and the run completes",
        .enabled(if: canMakeNamespaces, "needs root and `ip netns` (iproute2); skipped otherwise"))
    func partition() throws {
        let tag = getpid() % 100_000
        let (coordinatorNS, clientNS) = ("mstc\(tag)", "msts\(tag)")
        let (coordinatorLink, clientLink) = ("mstva\(tag)", "mstvb\(tag)")
        let (coordinatorAddress, clientAddress) = ("10.213.7.1", "10.213.7.2")
        defer {
            system(["ip", "netns", "del", coordinatorNS])
            system(["ip", "netns", "del", clientNS])
        }
        for command in [
            ["ip", "netns", "add", coordinatorNS], ["ip", "netns", "add", clientNS],
            ["ip", "link", "add", coordinatorLink, "type", "veth", "peer", "name", clientLink],
            ["ip", "link", "set", coordinatorLink, "netns", coordinatorNS],
            ["ip", "link", "set", clientLink, "netns", clientNS],
            [
                "ip", "-n", coordinatorNS, "addr", "add", "\(coordinatorAddress)/24", "dev",
                coordinatorLink,
            ],
            ["ip", "-n", clientNS, "addr", "add", "\(clientAddress)/24", "dev", clientLink],
            ["ip", "-n", coordinatorNS, "link", "set", coordinatorLink, "up"],
            ["ip", "-n", clientNS, "link", "set", clientLink, "up"],
            ["ip", "-n", coordinatorNS, "link", "set", "lo", "up"],
            ["ip", "-n", clientNS, "link", "set", "lo", "up"],
        ] {
            #expect(system(command) == 0, "\(command.joined(separator: " ")) failed")
        }
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = "\(directory)/run"
        let endpoint = "tcp://\(coordinatorAddress):5555"
        func inNamespace(_ namespace: String, _ arguments: [String]) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["ip", "netns", "exec", namespace, maestroPath] + arguments
            process.currentDirectoryURL = repositoryRoot
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            return process
        }
        let coordinator = try inNamespace(
            coordinatorNS,
            [
                "coordinator", "--scenario", "Scenarios/smoke.yaml", "--bind", endpoint, "--out",
                run, "--quiet",
                "--round-timeout", "15",
            ])
        var clients: [Process] = []
        defer {
            for client in clients where client.isRunning { client.terminate() }
            if coordinator.isRunning { coordinator.terminate() }
        }
        for index in 0..<6 {
            clients.append(
                try inNamespace(
                    clientNS,
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
    }
}
