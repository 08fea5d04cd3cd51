import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("A standalone coordinator restarted under its clients", .serialized)
struct RestartTests {
    @Test(
        "SIGKILL the coordinator after round 2, --resume on the same address: the standalone clients rejoin by themselves and the final model is the uninterrupted one"
    )
    func coordinatorRestart() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let reference = try maestro(
            ["fleet", "Scenarios/smoke.yaml", "--out", "\(directory)/reference", "--quiet"])
        #expect(reference.status == 0, "\(reference.error.suffix(800))")

        let run = "\(directory)/cut"
        let port = 20_000 + Int.random(in: 0..<20_000)
        let endpoint = "tcp://127.0.0.1:\(port)"
        let coordinatorArguments = [
            "coordinator", "--scenario", "Scenarios/smoke.yaml", "--bind", endpoint, "--expect",
            "6", "--out", run, "--quiet",
        ]
        let first = try startMaestro(coordinatorArguments)
        let tiers = ["low", "low", "low", "full", "full", "full"]
        let clients = try tiers.enumerated().map { index, tier in
            try startMaestro([
                "client", "--connect", endpoint, "--tier", tier, "--partition-of",
                "Scenarios/smoke.yaml", "--index", "\(index)",
            ])
        }
        defer { for client in clients where client.isRunning { client.terminate() } }
        let deadline = Date().addingTimeInterval(300)
        while metricsLines(run) < 2 && first.isRunning && Date() < deadline { usleep(20_000) }
        #expect(first.isRunning, "the coordinator ended before it could be cut")
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        #expect(!FileManager.default.fileExists(atPath: "\(run)/summary.json"))

        let resumed = try maestro(coordinatorArguments + ["--resume"], timeout: 300)
        #expect(resumed.status == 0, "\(resumed.error.suffix(800))")
        #expect(metricsLines(run) == 12)
        let model = try Data(contentsOf: URL(fileURLWithPath: "\(run)/final.maestro"))
        let expected = try Data(
            contentsOf: URL(fileURLWithPath: "\(directory)/reference/final.maestro"))
        #expect(
            model == expected, "the resumed run's final model differs from the uninterrupted one")
        for client in clients { client.waitUntilExit() }
        #expect(clients.allSatisfy { $0.terminationStatus == 0 }, "a client did not end cleanly")
    }
}
