import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A one-client scenario on generated data: no data files, one round.
let oneClientScenario = """
    name: one
    seed: 1
    clients: 1
    rounds: 1
    clientsPerRound: 1
    dataset: {name: synthetic, synthetic: {alpha: 1, beta: 1}}
    model: {architecture: logistic, strategy: orderedLoD}
    training: {localEpochs: 1, batchSize: 10, learningRate: 0.01}
    tiers:
      - {name: low, count: 1, rankFraction: 0.5, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}

    """

/// A TCP listener on a loopback port that accepts connections and never says a word.
final class SilentPeer {
    let descriptor: Int32
    let port: Int

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        try #require(bound && listen(descriptor, 8) == 0)
    }

    deinit { close(descriptor) }
}

@Suite("What a device's client says without --verbose", .serialized)
struct ClientMessageTests {
    @Test("Nothing listening: the first seconds say 'connection refused' with the endpoint")
    func refused() throws {
        // A port that was just free: bound, then closed.
        let port = try SilentPeer().port
        let endpoint = "tcp://127.0.0.1:\(port)"
        let result = try maestro(
            [
                "client", "--connect", endpoint, "--partition-of", "Scenarios/smoke.yaml",
                "--index", "0", "--idle-timeout", "2",
            ], timeout: 60)
        #expect(result.status != 0)
        let lines = result.error.split(separator: "\n")
        #expect(
            lines.first?.contains("cannot connect to \(endpoint): connection refused") == true,
            "\(result.error)")
        #expect(
            result.error.contains("nothing accepts connections at \(endpoint)"), "\(result.error)")
    }

    @Test("A peer that accepts and never answers is told apart from a refused connection")
    func silentPeer() throws {
        let peer = try SilentPeer()
        let endpoint = "tcp://127.0.0.1:\(peer.port)"
        let result = try maestro(
            [
                "client", "--connect", endpoint, "--partition-of", "Scenarios/smoke.yaml",
                "--index", "0", "--idle-timeout", "2",
            ], timeout: 60)
        #expect(result.status != 0)
        #expect(!result.error.contains("refused"), "\(result.error)")
        #expect(
            result.error.contains("connected to \(endpoint), but no answer to REGISTER"),
            "\(result.error)")
    }

    @Test(
        "Registering says the client ID, tier and what it waits for; --partition-of decides the tier"
    )
    func registers() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let scenario = "\(directory)/one.yaml"
        try oneClientScenario.write(toFile: scenario, atomically: true, encoding: .utf8)
        let port = try SilentPeer().port
        let endpoint = "tcp://127.0.0.1:\(port)"
        let coordinator = try startMaestro([
            "coordinator", "--scenario", scenario, "--bind", endpoint, "--out",
            "\(directory)/run", "--quiet",
        ])
        defer { if coordinator.isRunning { coordinator.terminate() } }
        let result = try maestro(
            [
                "client", "--connect", endpoint, "--partition-of", scenario, "--index", "0",
                "--idle-timeout", "60",
            ], timeout: 120)
        coordinator.waitUntilExit()
        #expect(result.status == 0, "\(result.error)")
        #expect(
            result.error.contains(
                "client 0: registered with \(endpoint) as client 0, tier low (")
                && result.error.contains("waiting for the coordinator's rounds"),
            "\(result.error)")
        // One line, and no protocol log without --verbose.
        #expect(result.error.split(separator: "\n").count == 1, "\(result.error)")
    }

    @Test("--data needs --tier; a --tier that contradicts --partition-of is one line")
    func tierOptional() throws {
        let noTier = try maestro(["client", "--connect", "tcp://127.0.0.1:1", "--data", "/"])
        #expect(noTier.status != 0 && noTier.error.contains("--data needs --tier"))
        let wrong = try maestro([
            "client", "--connect", "tcp://127.0.0.1:1", "--tier", "mid", "--partition-of",
            "Scenarios/default.yaml", "--index", "7",
        ])
        #expect(wrong.status != 0)
        #expect(
            wrong.error.split(separator: "\n").first?.contains(
                "client 7 of that scenario is in tier low") == true, "\(wrong.error)")
    }
}
