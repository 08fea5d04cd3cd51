import Federation
import Fleet
import Foundation
import Testing

@testable import Runtime

/// The repository's `Scenarios/` folder, found from this file's location.
private let scenarioFolder = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Scenarios")

@Suite("Inbound frames are bounded by what the scenario's peers send")
struct InboundFrameLimitTests {
    static let shipped = [
        "default", "dense-fedavg", "fjord-uniform5", "synthetic", "smoke", "smoke-dense",
        "deadline", "deadline-dense", "cnn", "cnn-dense",
    ]

    @Test(
        "Every legitimate frame a shipped scenario's peers send fits its limit", arguments: shipped)
    func shippedScenarioFits(name: String) throws {
        let scenario = try Scenario.load(
            path: scenarioFolder.appendingPathComponent("\(name).yaml").path)
        let limit = InboundFrameLimit.bytes(for: scenario)
        // The largest UPDATE, encoded for real: the whole model at full rank, the largest
        // scalars, as a device sends it (a worker forwards the same bytes on a channel).
        let slice = InboundFrameLimit.largestSlice(of: scenario)
        let update = WireCodec.encode(
            .update(
                TrainingUpdate(
                    factors: slice.factors, shared: slice.shared, sampleCount: .max,
                    trainingLoss: 1e6, computeSeconds: 1e6)),
            round: .max, sender: .max)
        #expect(update.count == InboundFrameLimit.largestUpdateBytes(of: scenario))
        #expect(update.count <= limit, "\(name): UPDATE of \(update.count) > \(limit)")
        // The small frames at their largest, and the largest probe the bench sends.
        let small: [Message] = [
            .register(
                Registration(
                    tierName: String(repeating: "t", count: WireLimits.tierNameBytes),
                    capability: 1, sampleCount: .max, instanceNonce: .max,
                    requestedClientID: .max)),
            .error(
                ErrorReport(
                    code: .unexpected,
                    message: String(repeating: "e", count: WireLimits.textBytes))),
            .workerHello(
                WorkerHello(
                    slot: 1, slots: 2, instanceNonce: .max,
                    host: String(repeating: "h", count: WireLimits.textBytes),
                    credential: String(repeating: "c", count: WireLimits.textBytes))),
            .linkProbe(
                LinkProbe(
                    replyFrameBytes: UInt32(InboundFrameLimit.largestProbeFrame),
                    paddingBytes: UInt32(
                        InboundFrameLimit.largestProbeFrame - WireLimits.headerSize - 8))),
        ]
        for message in small {
            let bytes = WireCodec.encode(message, round: .max, sender: .max).count
            #expect(bytes <= limit, "\(name): \(message.type) of \(bytes) > \(limit)")
        }
        // The bound is the model's, not libzmq's 64 MiB.
        #expect(limit < 64 << 20)
        #expect(limit == max(InboundFrameLimit.floor, update.count + update.count / 8 + 65536))
    }

    @Test("The limit follows the model: smoke.yaml gets the floor, cnn.yaml its UPDATE's size")
    func limitFollowsModel() throws {
        let smoke = try Scenario.load(
            path: scenarioFolder.appendingPathComponent("smoke.yaml").path)
        let cnn = try Scenario.load(path: scenarioFolder.appendingPathComponent("cnn.yaml").path)
        #expect(InboundFrameLimit.bytes(for: smoke) == InboundFrameLimit.floor)
        let cnnUpdate = InboundFrameLimit.largestUpdateBytes(of: cnn)
        // 1.66 M parameters as 32-bit floats, and more with the factors at full rank.
        #expect(cnnUpdate > 1_660_000 * 4)
        #expect(InboundFrameLimit.bytes(for: cnn) > cnnUpdate)
    }
}

@Suite("A connection's queue budget holds what the coordinator legitimately queues for it")
struct DispatchBudgetTests {
    /// The full tier's TRAIN at round 1, encoded for real: the largest the coordinator sends.
    static func largestTrain(of scenario: Scenario) -> Int {
        let slice = InboundFrameLimit.largestSlice(of: scenario)
        let task = CoordinatorMachine.task(
            for: slice, scenario: scenario, round: 1, client: .max)
        return WireCodec.encode(.train(task), round: .max, sender: .max).count
    }

    @Test(
        "The largest TRAIN beside the small frames fits one connection's budget",
        arguments: InboundFrameLimitTests.shipped)
    func trainFits(name: String) throws {
        let scenario = try Scenario.load(
            path: scenarioFolder.appendingPathComponent("\(name).yaml").path)
        let train = Self.largestTrain(of: scenario)
        let budget = InboundFrameLimit.dispatchBytes(for: scenario)
        #expect(train + InboundFrameLimit.floor <= budget, "\(name): TRAIN of \(train) B")
    }

    @Test("Small models keep the 4 MiB default; cnn.yaml's budget holds a TRAIN after rows")
    func budgetFollowsModel() throws {
        func load(_ name: String) throws -> Scenario {
            try Scenario.load(path: scenarioFolder.appendingPathComponent("\(name).yaml").path)
        }
        let defaultBudget = 4 << 20
        for name in ["smoke", "default", "dense-fedavg"] {
            #expect(InboundFrameLimit.dispatchBytes(for: try load(name)) <= defaultBudget)
        }
        // A full-tier TRAIN of cnn.yaml queued after a guest's rows passes 4 MiB: with that
        // budget the transport dropped the honest worker that had not yet taken the rows.
        let cnn = try load("cnn")
        let train = Self.largestTrain(of: cnn)
        #expect(train > defaultBudget)
        #expect(InboundFrameLimit.dispatchBytes(for: cnn) >= train + InboundFrameLimit.floor)
    }
}
