import Federation
import Fleet
import Foundation
import LowRank
import RunRecords
import Testing
import Transport

@testable import Runtime

/// The checkpoint's header encodes the run's totals (`RunTotals`) and the clients' standing
/// (`ClientStanding`) whole, into one flat JSON object with the keys checkpoints have always had.
@Suite("Checkpoint header: run totals and standing encoded whole, in the old layout")
struct CheckpointHeaderTests {
    /// A checkpoint written by the coordinator before the header encoded its totals whole:
    /// `maestro fleet Scenarios/synthetic.yaml --rounds 3 --set evaluation.period=1
    /// --set training.localEpochs=1` (the logistic model, 30 clients, 3 rounds).
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(
            "Fixtures/checkpoint-synthetic-round3.bin")

    @Test("An older checkpoint reads back as its totals and re-encodes to its own bytes")
    func olderCheckpoint() throws {
        let bytes = try #require(FileManager.default.contents(atPath: Self.fixture.path))
        let checkpoint = try CoordinatorCheckpoint(bytes: Array(bytes), path: "checkpoint.bin")
        let header = checkpoint.header
        // The values in the file's JSON header.
        let expected = RunTotals(
            bytesUp: 37366, bytesDown: 42130, denseEquivalentBytes: 158_436,
            virtualSeconds: 0.4845258,
            tierBytes: [
                "full": RoundMetrics.TierBytes(down: 6990, up: 6178, denseEquivalent: 11524),
                "low": RoundMetrics.TierBytes(down: 12819, up: 10809, denseEquivalent: 78498),
                "mid": RoundMetrics.TierBytes(down: 22321, up: 20379, denseEquivalent: 68414),
            ],
            participations: ["full": 2, "low": 15, "mid": 13], rejected: [:], lateUpdates: 0,
            clientComputeSeconds: 0.0058209340131725185,
            earlierWallSeconds: 0.43599068700000004, earlierTransportBytesSent: 42130,
            earlierTransportBytesReceived: 37366)
        #expect(header.totals == expected)
        #expect(header.round == 3 && header.keptRanks == [10])
        #expect(
            header.standing
                == ClientStanding(
                    contributors: [
                        0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 16, 19, 20, 21, 22,
                        23, 24, 29,
                    ]))
        #expect(header.lastAccuracy["low"] == 0.21721854304635763)
        #expect(header.deployedBudgets == nil && header.averaged == nil)
        #expect(checkpoint.encoded() == Array(bytes))
    }

    @Test("A header keeps every total and the standing under the flat keys, and reads back equal")
    func everyField() throws {
        let scenario = try Scenario.parse(yaml: syntheticScenarioYAML)
        let model = scenario.initialNetwork()
        let totals = RunTotals(
            bytesUp: 11, bytesDown: 12, denseEquivalentBytes: 13, virtualSeconds: 1.5,
            tierBytes: ["small": RoundMetrics.TierBytes(down: 1, up: 2, denseEquivalent: 3)],
            participations: ["small": 4], rejected: ["late": 2], lateUpdates: 2,
            clientComputeSeconds: 3.5, earlierWallSeconds: 2, earlierTransportBytesSent: 10,
            earlierTransportBytesReceived: 20)
        let standing = ClientStanding(
            unresponsive: [5, 2], cooldownUntil: [1: 7], timeoutStreaks: [1: 2],
            contributors: [1, 0])
        // This process ran 0.5 s and moved 4 bytes out and 5 in: added to the earlier ones.
        let header = CoordinatorCheckpoint.Header(
            round: 3, model: model, totals: totals, standing: standing,
            lastAccuracy: ["small": 0.5], lastDeployed: ["small": "small"],
            statistics: TransportStatistics(
                framesSent: 1, bytesSent: 4, framesReceived: 1, bytesReceived: 5),
            wallSeconds: 0.5)
        #expect(header.totals.earlierWallSeconds == 2.5)
        #expect(header.totals.earlierTransportBytesSent == 14)
        #expect(header.totals.earlierTransportBytesReceived == 25)
        #expect(header.standing == standing && header.deployedBudgets == ["small": "small"])

        let json = try RunJSON.encoder().encode(header)
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(
            Set(object.keys) == [
                "round", "architecture", "keptRanks", "bytesUp", "bytesDown",
                "denseEquivalentBytes", "virtualSeconds", "wallSeconds", "clientComputeSeconds",
                "transportBytesSent", "transportBytesReceived", "tierBytes", "participations",
                "rejected", "lateUpdates", "lastAccuracy", "cooldownUntil", "unresponsive",
                "contributors", "deployedBudgets", "timeoutStreaks",
            ])
        #expect(object["wallSeconds"] as? Double == 2.5)
        #expect(object["unresponsive"] as? [Int] == [2, 5])
        let decoded = try RunJSON.decoder().decode(CoordinatorCheckpoint.Header.self, from: json)
        #expect(decoded == header)
    }

    @Test("Standing keys absent from an older header read as none; no streaks write no key")
    func absentStanding() throws {
        let bytes = try #require(FileManager.default.contents(atPath: Self.fixture.path))
        let checkpoint = try CoordinatorCheckpoint(bytes: Array(bytes), path: "checkpoint.bin")
        let json = try RunJSON.encoder().encode(checkpoint.header)
        var object = try #require(
            try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(object["timeoutStreaks"] == nil)
        for key in ["cooldownUntil", "unresponsive", "contributors"] {
            object[key] = nil
        }
        let older = try JSONSerialization.data(withJSONObject: object)
        let decoded = try RunJSON.decoder().decode(CoordinatorCheckpoint.Header.self, from: older)
        #expect(decoded.standing == ClientStanding())
        #expect(decoded.totals == checkpoint.header.totals)
        // A total is not optional: a header without one is refused.
        object["bytesUp"] = nil
        let missing = try JSONSerialization.data(withJSONObject: object)
        #expect(throws: DecodingError.self) {
            try RunJSON.decoder().decode(CoordinatorCheckpoint.Header.self, from: missing)
        }
    }
}
