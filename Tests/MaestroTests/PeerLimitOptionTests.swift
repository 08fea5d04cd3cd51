import ArgumentParser
import Testing
import Transport

@testable import maestro

@Suite("Per-peer limit options")
struct PeerLimitOptionTests {
    @Test("Defaults, given values, and out-of-range values named by their option")
    func limits() throws {
        let defaults = try PeerLimitOptions.parse([]).serverLimits()
        #expect(defaults == ServerLimits())
        #expect(defaults.queuedBytesPerConnection == 4 << 20)
        #expect(defaults.maximumConnectionsPerAddress == defaults.maximumConnections / 2)
        let given = try PeerLimitOptions.parse([
            "--max-connections", "100", "--max-connections-per-address", "10",
            "--peer-queue-mib", "2", "--handshake-timeout", "1.5",
        ]).serverLimits()
        #expect(given.maximumConnections == 100 && given.maximumConnectionsPerAddress == 10)
        #expect(given.queuedBytesPerConnection == 2 << 20)
        #expect(given.handshakeInterval == .milliseconds(1500))
        #expect(
            try PeerLimitOptions.parse(["--max-connections", "9"]).serverLimits()
                .maximumConnectionsPerAddress == 4)
        for (arguments, option) in [
            (["--max-connections", "0"], "--max-connections"),
            (
                ["--max-connections", "8", "--max-connections-per-address", "9"],
                "--max-connections-per-address"
            ),
            (["--peer-queue-mib", "0"], "--peer-queue-mib"),
            (["--handshake-timeout", "0"], "--handshake-timeout"),
        ] {
            do {
                _ = try PeerLimitOptions.parse(arguments).serverLimits()
                Issue.record("\(arguments) was accepted")
            } catch let error as ValidationError {
                #expect(error.message.hasPrefix(option), "\(error.message)")
            }
        }
    }
}
