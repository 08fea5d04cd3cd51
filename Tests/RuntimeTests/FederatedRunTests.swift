import Dispatch
import Federation
import Fleet
import Foundation
import LowRank
import Runtime
import Tensors
import TestSupport
import Testing
import Transport

/// A small federated scenario on generated data: 8 FedProx devices, logistic LoD model.
let syntheticScenarioYAML = """
    name: tiny-synthetic
    seed: 3
    clients: 8
    rounds: 4
    clientsPerRound: 4
    dataset: {name: synthetic, synthetic: {alpha: 1, beta: 1}}
    model: {architecture: logistic, strategy: orderedLoD}
    training: {localEpochs: 1, batchSize: 16, learningRate: 0.05, sampler: perLayer, server: {optimizer: fedAvgM, learningRate: 1, momentum: 0.9}}
    evaluation: {period: 2}
    tiers:
      - {name: small, count: 4, rankFraction: 0.3, gflops: 1, uplinkMbps: 1, downlinkMbps: 4, latencyMs: 30}
      - {name: large, count: 4, rankFraction: 1.0, gflops: 4, uplinkMbps: 8, downlinkMbps: 16, latencyMs: 10}
    """

/// Thread-safe box for values produced on other threads.
final class Box<Value: Sendable>: @unchecked Sendable {
    // Every access holds `lock`: safe to share across threads.
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) { stored = value }

    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

struct RunResult: Sendable {
    var modelBytes: [UInt8]
    var summary: RunSummary
    var ledgerBytes: Int
    var transportBytes: Int
}

/// Runs `body` on a new thread (each participant blocks in `receive`; a thread each keeps
/// them from waiting on a bounded pool).
func startThread(_ body: @escaping @Sendable () -> Void) {
    let thread = Thread(block: body)
    thread.start()
}

/// Runs the coordinator and every client in this process over the in-memory transport.
/// `startOrder` decides in which order clients start (and so the order updates arrive).
func runInProcess(
    _ scenario: Scenario, startOrder: [Int], delayMicroseconds: [UInt32]
) throws -> RunResult {
    let network = InMemoryNetwork()
    let server = try network.bind("inproc://coordinator")
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
        "maestro-run-\(UUID().uuidString)"
    ).path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let outcome = Box<Result<RunSummary, CoordinatorError>?>(nil)
    let group = DispatchGroup()
    let evaluation = try scenario.evaluationSamples()
    let yaml = scenario.yaml()
    group.enter()
    startThread {
        defer { group.leave() }
        do {
            let recorder = try RunRecorder(directory: directory, scenarioYAML: yaml)
            var options = Coordinator.Options()
            options.roundTimeout = .seconds(30)
            options.registrationTimeout = .seconds(30)
            let coordinator = Coordinator(
                scenario: scenario, transport: server, recorder: recorder,
                evaluationSet: evaluation, options: options)
            outcome.value = .success(try coordinator.run())
        } catch let error as CoordinatorError {
            outcome.value = .failure(error)
        } catch {
            outcome.value = .failure(.stopped)
        }
    }
    let fleet = scenario.fleet()
    for (position, index) in startOrder.enumerated() {
        let spec = fleet[index]
        let samples = try scenario.clientSamples(index: index)
        let transport = try network.connect(to: "inproc://coordinator")
        let delay = delayMicroseconds[position % delayMicroseconds.count]
        group.enter()
        startThread {
            defer { group.leave() }
            usleep(delay)
            let client = FederatedClient(
                transport: transport, samples: samples,
                options: .init(
                    coordinator: "inproc", tierName: spec.tier.name, gflops: 1,
                    requestedClientID: UInt32(index)))
            _ = try? client.run()
        }
    }
    group.wait()
    let summary = try outcome.value!.get()
    let model = try Array(
        Data(
            contentsOf: URL(fileURLWithPath: directory).appendingPathComponent(
                RunRecorder.finalModelFile)))
    let ledger = try String(
        contentsOfFile: "\(directory)/\(RunRecorder.ledgerFile)", encoding: .utf8)
    let ledgerBytes = ledger.split(separator: "\n").dropFirst().reduce(0) {
        $0 + Int($1.split(separator: ",").last!)!
    }
    let statistics = server.statistics
    return RunResult(
        modelBytes: model, summary: summary, ledgerBytes: ledgerBytes,
        transportBytes: Int(statistics.bytesSent + statistics.bytesReceived))
}

@Suite("A federated run over the in-memory transport", .serialized)
struct FederatedRunTests {
    @Test("Same scenario and seed, different arrival order: identical final model bytes")
    func determinism() throws {
        let scenario = try Scenario.parse(yaml: syntheticScenarioYAML)
        let first = try runInProcess(scenario, startOrder: Array(0..<8), delayMicroseconds: [0])
        let second = try runInProcess(
            scenario, startOrder: [7, 3, 5, 0, 6, 2, 1, 4],
            delayMicroseconds: [3000, 0, 7000, 1000])
        #expect(first.modelBytes == second.modelBytes)
        #expect(first.summary.finalAccuracyByTier == second.summary.finalAccuracyByTier)
        #expect(first.summary.rounds == 4)
        // The model learned something: far above chance (10 classes).
        #expect((first.summary.finalAccuracyByTier["large"] ?? 0) > 0.3)
    }

    @Test("The ledger adds up to the bytes the transport moved, and to the summary")
    func ledgerExactness() throws {
        let scenario = try Scenario.parse(yaml: syntheticScenarioYAML)
        let result = try runInProcess(scenario, startOrder: Array(0..<8), delayMicroseconds: [0])
        #expect(result.ledgerBytes == result.transportBytes)
        #expect(result.ledgerBytes == result.summary.bytesUp + result.summary.bytesDown)
        // The small tier moves fewer bytes per participation than the large one.
        let small = result.summary.tiers.first { $0.tier == "small" }!
        let large = result.summary.tiers.first { $0.tier == "large" }!
        #expect(
            Double(small.bytes) / Double(max(small.participations, 1)) < Double(large.bytes)
                / Double(max(large.participations, 1)))
    }
}
