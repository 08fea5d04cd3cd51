import Datasets
import Dispatch
import Federation
import Fleet
import Foundation
import LowRank
import RunRecords
import Tensors
import TestSupport
import Testing
import Transport

@testable import Runtime

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

struct RunResult: @unchecked Sendable {
    var modelBytes: [UInt8]
    /// The lines of metrics.jsonl, parsed.
    var metrics: [[String: Any]]
    /// The rows of ledger.csv, split into fields.
    var ledgerRows: [[String]]
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
    _ scenario: Scenario, startOrder: [Int], delayMicroseconds: [UInt32],
    directory given: String? = nil,
    stopAfterRound: Int? = nil, resume: Bool = false, roundTimeout: Duration = .seconds(30),
    attacker: (@Sendable (InMemoryClient) -> Void)? = nil
) throws -> RunResult {
    let network = InMemoryNetwork()
    let server = try network.bind("inproc://coordinator")
    let directory =
        given
        ?? FileManager.default.temporaryDirectory.appendingPathComponent(
            "maestro-run-\(UUID().uuidString)"
        ).path
    defer { if given == nil { try? FileManager.default.removeItem(atPath: directory) } }
    let outcome = Box<Result<RunSummary, CoordinatorError>?>(nil)
    let group = DispatchGroup()
    let evaluation = try scenario.evaluationSamples()
    let validation = try scenario.validationSamples()
    let yaml = scenario.yaml()
    group.enter()
    startThread {
        defer { group.leave() }
        do {
            let checkpoint = resume ? try CoordinatorCheckpoint.load(directory: directory) : nil
            let recorder = try RunRecorder(
                directory: directory, scenarioYAML: yaml, resumingAfter: checkpoint?.header.round)
            var options = Coordinator.Options()
            options.roundTimeout = roundTimeout
            options.registrationTimeout = .seconds(30)
            if let stopAfterRound {
                // Stop once that round's metrics (and checkpoint) are written: a crash after it.
                let path = "\(directory)/\(RunRecorder.metricsFile)"
                options.shouldStop = {
                    ((try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n")
                        .count ?? 0)
                        >= stopAfterRound
                }
            }
            let coordinator = try Coordinator(
                scenario: scenario, transport: server, recorder: recorder,
                evaluationSet: evaluation, validationSet: validation,
                options: options, resumingFrom: checkpoint)
            do {
                outcome.value = .success(try coordinator.run())
            } catch {
                coordinator.abandon(reason: "stopped")
                throw error
            }
        } catch let error as CoordinatorError {
            outcome.value = .failure(error)
        } catch {
            outcome.value = .failure(.recording(.cannotWrite(path: directory, reason: "\(error)")))
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
    if let attacker {
        let transport = try network.connect(to: "inproc://coordinator", routingID: "intruder")
        group.enter()
        startThread {
            defer { group.leave() }
            attacker(transport)
        }
    }
    group.wait()
    if stopAfterRound != nil {
        if case .failure(.stopped) = outcome.value { throw CoordinatorError.stopped }
        Issue.record("the run did not stop after round \(stopAfterRound!)")
    }
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
    let metricsText = try String(
        contentsOfFile: "\(directory)/\(RunRecorder.metricsFile)", encoding: .utf8)
    let metrics = metricsText.split(separator: "\n").compactMap {
        try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
    return RunResult(
        modelBytes: model, metrics: metrics,
        ledgerRows: ledger.split(separator: "\n").dropFirst().map {
            $0.split(separator: ",").map(String.init)
        }, summary: summary, ledgerBytes: ledgerBytes,
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

@Suite("Checkpoint and resume", .serialized)
struct ResumeTests {
    /// A new run directory holding `scenario`'s run stopped once round 2 was written (a crash
    /// after it); the caller removes it.
    func stoppedAfterRound2(_ scenario: Scenario) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "maestro-resume-\(UUID().uuidString)"
        ).path
        #expect(throws: CoordinatorError.self) {
            try runInProcess(
                scenario, startOrder: Array(0..<8), delayMicroseconds: [0], directory: directory,
                stopAfterRound: 2)
        }
        return directory
    }

    @Test(
        "Stopped after round 2 and resumed: the same final model bytes and metrics as an uninterrupted run (with and without a deployed moving average)",
        arguments: ["0", "0.5"]
    )
    func resumeIsBitwiseIdentical(averageDecay: String) throws {
        let scenario = try Scenario.parse(yaml: syntheticScenarioYAML).overriding([
            ("evaluation.averageDecay", averageDecay)
        ])
        let reference = try runInProcess(scenario, startOrder: Array(0..<8), delayMicroseconds: [0])
        let directory = try stoppedAfterRound2(scenario)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let checkpoint = try CoordinatorCheckpoint.load(directory: directory)
        #expect(checkpoint.header.round >= 2 && checkpoint.header.round < 4)
        let resumed = try runInProcess(
            scenario, startOrder: Array((0..<8).reversed()), delayMicroseconds: [0, 2000],
            directory: directory, resume: true)
        #expect(resumed.modelBytes == reference.modelBytes)
        let lines = try String(
            contentsOfFile: "\(directory)/\(RunRecorder.metricsFile)", encoding: .utf8
        ).split(separator: "\n")
        #expect(lines.count == 4)
        #expect(resumed.summary.bytesUp + resumed.summary.bytesDown == resumed.ledgerBytes)
    }

    @Test("Resumed without averageDecay, a run that averaged deploys the server's model again")
    func resumeWithoutAverage() throws {
        let plain = try Scenario.parse(yaml: syntheticScenarioYAML)
        let averaging = try plain.overriding([("evaluation.averageDecay", "0.5")])
        let reference = try runInProcess(plain, startOrder: Array(0..<8), delayMicroseconds: [0])
        let directory = try stoppedAfterRound2(averaging)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try CoordinatorCheckpoint.load(directory: directory).averagedParameters != nil)
        let resumed = try runInProcess(
            plain, startOrder: Array(0..<8), delayMicroseconds: [0], directory: directory,
            resume: true)
        #expect(
            try ModelFile.decode(resumed.modelBytes).network
                == ModelFile.decode(reference.modelBytes).network)
    }

    @Test(
        "averageDecay: every evaluation and the model file are the moving average of the server's models after each round"
    )
    func movingAverageDeployment() throws {
        let base = try Scenario.parse(yaml: syntheticScenarioYAML).overriding([
            ("evaluation.period", "1")
        ])
        // The server's model after rounds 1…4: the same seeded rounds, stopped after each.
        let runs = try (1...4).map { rounds in
            try runInProcess(
                base.overriding([("rounds", "\(rounds)")]), startOrder: Array(0..<8),
                delayMicroseconds: [0])
        }
        let models = try runs.map { try ModelFile.decode($0.modelBytes).network }
        let plain = runs[3]
        let averaging = try runInProcess(
            base.overriding([("evaluation.averageDecay", "0.5")]), startOrder: Array(0..<8),
            delayMicroseconds: [0])
        var expected = models[0].parameters.map(\.scalars)
        for model in models.dropFirst() {
            for (index, tensor) in model.parameters.enumerated() {
                expected[index] = zip(expected[index], tensor.scalars).map { 0.5 * ($0 + $1) }
            }
        }
        let deployed = try ModelFile.decode(averaging.modelBytes).network
        #expect(deployed.parameters != models[3].parameters)
        for (index, tensor) in deployed.parameters.enumerated() {
            let error = zip(tensor.scalars, expected[index]).map { abs($0 - $1) }.max() ?? 0
            #expect(error <= 1e-6, "tensor \(index) off by \(error)")
        }
        // Round 1's average is round 1's model; later rounds evaluate the average.
        let accuracy = { (run: RunResult, row: Int) in
            run.metrics[row]["accuracy_by_tier"] as? [String: Double]
        }
        #expect(accuracy(averaging, 0) == accuracy(plain, 0))
        #expect(averaging.metrics.count == 4)
    }

    @Test("A damaged checkpoint is refused with the reason")
    func damagedCheckpoint() throws {
        var generator = SeededGenerator(seed: 1)
        let network = Network(
            architecture: .make(.logistic, lowRank: true, inputShape: [6], classCount: 3),
            using: &generator)
        let totals = RunTotals(
            bytesUp: 1, bytesDown: 2, denseEquivalentBytes: 3, virtualSeconds: 4,
            participations: ["a": 1], clientComputeSeconds: 6, earlierWallSeconds: 5,
            earlierTransportBytesSent: 7, earlierTransportBytesReceived: 8)
        let header = CoordinatorCheckpoint.Header(
            round: 3, architecture: network.architecture, keptRanks: network.keptRanks,
            totals: totals, lastAccuracy: ["a": 0.5])
        let checkpoint = CoordinatorCheckpoint(
            header: header, parameters: network.parameters,
            serverState: ServerOptimizerState(for: network.parameters))
        let bytes = checkpoint.encoded()
        #expect(try CoordinatorCheckpoint(bytes: bytes, path: "c") == checkpoint)
        // With the deployed moving average: a fourth set of tensors, read back bit for bit.
        let averaging = CoordinatorCheckpoint(
            header: header, parameters: network.parameters,
            serverState: ServerOptimizerState(for: network.parameters),
            averagedParameters: network.parameters.map { 0.5 * $0 })
        let averagingBytes = averaging.encoded()
        let floats = network.parameters.map(\.count).reduce(0, +)
        // 4 bytes per float, and `"averaged":true,` in the header.
        #expect(averagingBytes.count - bytes.count == 4 * floats + 16)
        let read = try CoordinatorCheckpoint(bytes: averagingBytes, path: "c")
        #expect(read == averaging && read.header.averaged == true)
        #expect(throws: CoordinatorCheckpoint.Error.self) {
            try CoordinatorCheckpoint(bytes: Array(averagingBytes.dropLast(8)), path: "c")
        }
        var damaged = bytes
        damaged[damaged.count / 2] ^= 1
        #expect(throws: CoordinatorCheckpoint.Error.self) {
            try CoordinatorCheckpoint(bytes: damaged, path: "c")
        }
        #expect(throws: CoordinatorCheckpoint.Error.self) {
            try CoordinatorCheckpoint(bytes: Array(bytes.dropLast(9)), path: "c")
        }
    }
}

@Suite("Hostile input", .serialized)
struct HostileInputTests {
    @Test(
        "A foreign peer spraying garbage, spoofed and out-of-place messages changes nothing; every one is counted"
    )
    func sprayedRun() throws {
        let scenario = try Scenario.parse(yaml: syntheticScenarioYAML)
        let reference = try runInProcess(scenario, startOrder: Array(0..<8), delayMicroseconds: [0])
        let attacked = try runInProcess(scenario, startOrder: Array(0..<8), delayMicroseconds: [0])
        { transport in
            var generator = SeededGenerator(seed: 99)
            var frames: [[UInt8]] = []
            // Garbage, a wrong version, a message type clients may not send, a spoofed update from
            // client 0's ID with absurd shapes, an update for a far round, an unknown tier.
            frames.append((0..<64).map { _ in UInt8.random(in: 0...255, using: &generator) })
            var wrongVersion = WireCodec.encode(.heartbeat, round: 0, sender: 0)
            wrongVersion[4] = 9
            frames.append(wrongVersion)
            frames.append(WireCodec.encode(.shutdown(Shutdown(reason: "bye")), round: 1, sender: 0))
            let spoof = TrainingUpdate(
                factors: [FactorPair(up: Tensor(zeros: [1, 1]), down: Tensor(zeros: [1, 1]))],
                shared: [],
                sampleCount: 1_000_000, trainingLoss: 0, computeSeconds: 0)
            frames.append(WireCodec.encode(.update(spoof), round: 1, sender: 0))
            frames.append(WireCodec.encode(.update(spoof), round: 77, sender: 3))
            frames.append(
                WireCodec.encode(
                    .register(
                        Registration(
                            tierName: "mainframe", capability: 1, sampleCount: 1, instanceNonce: 5)),
                    round: 0, sender: 0))
            // Wait until the coordinator answers the first frame (its error reply), so the
            // spray lands while the run is going on, then send everything five times.
            try? transport.send(frames[5])
            _ = try? transport.receive(timeout: .seconds(20))
            for _ in 0..<5 {
                for frame in frames { try? transport.send(frame) }
                usleep(20_000)
            }
        }
        #expect(attacked.modelBytes == reference.modelBytes)
        let rejected = attacked.summary.rejectedMessages
        // Every frame that reached the coordinator from the intruder (ledger rows of peer -1)
        // was refused and counted; at least the first answered one and one burst got there.
        let intruderFrames = attacked.ledgerRows.filter { $0[1] == "-1" && $0[3] == "up" }.count
        #expect(
            rejected.values.reduce(0, +) == intruderFrames,
            "\(rejected) vs \(intruderFrames) frames")
        #expect(intruderFrames >= 7)
        for reason in ["malformed", "wrong_type", "unknown_client", "unknown_tier"] {
            #expect((rejected[reason] ?? 0) > 0, "no \(reason) in \(rejected)")
        }
        #expect(attacked.ledgerBytes == attacked.transportBytes)
    }
}

@Suite("Rounds that miss their minimum", .serialized)
struct RoundFailureTests {
    @Test("retry: a round whose selection includes a silent client is run again without it")
    func retry() throws {
        let scenario = try Scenario.parse(yaml: syntheticScenarioYAML).overriding([
            ("minimumUpdates", "4"), ("roundFailurePolicy", "retry"), ("rounds", "3"),
        ])
        // Client 7 registers and then never answers: every round that selects it gets 3 updates.
        let result = try runInProcess(
            scenario, startOrder: Array(0..<7), delayMicroseconds: [0], roundTimeout: .seconds(2)
        ) {
            transport in
            let registration = Registration(
                tierName: "large", capability: 1, sampleCount: 50, instanceNonce: 7,
                requestedClientID: 7)
            try? transport.send(WireCodec.encode(.register(registration), round: 0, sender: 7))
            while let frame = try? transport.receive(timeout: .seconds(20)) {
                if case .shutdown = (try? WireCodec.decode(frame.bytes, maximumSize: 1 << 26))?
                    .message
                {
                    return
                }
            }
        }
        #expect(result.summary.rounds == 3)
        let metrics = result.metrics
        let retried = metrics.filter { ($0["retries"] as? Int ?? 0) > 0 }
        let selectedSilent = metrics.filter { ($0["selected"] as? [Int] ?? []).contains(7) }
        #expect(!selectedSilent.isEmpty, "client 7 was never selected: the test proves nothing")
        #expect(!retried.isEmpty)
        for line in metrics {
            #expect((line["participants"] as? [Int] ?? []).count >= 4, "\(line)")
        }
    }
}

@Suite("Server shrinking", .serialized)
struct ServerShrinkingTests {
    @Test(
        "bestValidated: each tier reports the test accuracy of the budget that validates best within its own; no client holds a validation image"
    )
    func bestValidatedDeployment() throws {
        let scenario = try Scenario.parse(
            yaml: """
                name: deploy
                seed: 5
                clients: 6
                rounds: 3
                clientsPerRound: 3
                dataset: {name: fashion-mnist, partition: {scheme: iid}, samplesPerClient: 64}
                model: {architecture: mlp, strategy: orderedLoD}
                training: {localEpochs: 1, batchSize: 32, learningRate: 0.05}
                evaluation: {period: 1, validationSamples: 2000, deploy: bestValidated}
                tiers:
                  - {name: low, count: 2, rankFraction: 0.1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
                  - {name: mid, count: 2, rankFraction: 0.4, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
                  - {name: full, count: 2, rankFraction: 1.0, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
                """)
        let held = validationSplit(sampleCount: 60_000, held: 2000, seed: 5).validation
        let rows = try #require(try scenario.partitionRows())
        #expect(Set(rows.joined()).isDisjoint(with: held))
        #expect(try scenario.validationSamples()?.labels.count == 2000)
        #expect(try scenario.clientSamples(index: 3).labels.count == 64)

        let result = try runInProcess(scenario, startOrder: Array(0..<6), delayMicroseconds: [0])
        let order = ["low", "mid", "full"]
        var lastDeployed: [String: String] = [:]
        for row in result.metrics {
            let deployed = try #require(row["deployed_budget_by_tier"] as? [String: String])
            let atBudget = try #require(row["accuracy_at_budget_by_tier"] as? [String: Double])
            let validation = try #require(row["validation_accuracy_by_tier"] as? [String: Double])
            let accuracy = try #require(row["accuracy_by_tier"] as? [String: Double])
            for (position, tier) in order.enumerated() {
                let choice = try #require(deployed[tier])
                let fitting = order.prefix(position + 1)
                #expect(fitting.contains(choice), "\(tier) deploys \(choice)")
                #expect(validation[choice] == fitting.compactMap { validation[$0] }.max())
                #expect(accuracy[tier] == atBudget[choice])
            }
            lastDeployed = deployed
        }
        #expect(result.metrics.count == 3)
        for tier in result.summary.tiers {
            let choice = try #require(tier.deployedBudget)
            #expect(choice == lastDeployed[tier.tier])
            let budget = try #require(result.summary.tiers.first { $0.tier == choice })
            #expect(tier.deployedRanks == budget.ranks)
        }
    }

    @Test(
        "Shrinks every period until shrinking.until, then never again; budgets follow the kept ranks"
    )
    func shrinkingStops() throws {
        let scenario = try Scenario.parse(
            yaml: """
                name: shrink
                seed: 2
                clients: 4
                rounds: 5
                clientsPerRound: 2
                dataset: {name: fashion-mnist, partition: {scheme: iid}, samplesPerClient: 64}
                model: {architecture: mlp, strategy: orderedLoD}
                training: {localEpochs: 1, batchSize: 32, learningRate: 0.02, groupLasso: 1.0e-3}
                shrinking: {threshold: 0.3, period: 1, until: 2}
                evaluation: {period: 5}
                tiers:
                  - {name: half, count: 2, rankFraction: 0.5, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
                  - {name: full, count: 2, rankFraction: 1.0, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
                """)
        let result = try runInProcess(scenario, startOrder: Array(0..<4), delayMicroseconds: [0])
        // `ranks` in metrics are the kept ranks a round starts from.
        let ranks = result.metrics.map { $0["ranks"] as? [Int] ?? [] }
        #expect(ranks.count == 5)
        #expect(ranks[1][0] < ranks[0][0] && ranks[2][0] < ranks[1][0], "\(ranks)")
        #expect(ranks[2] == ranks[3] && ranks[3] == ranks[4], "shrank after round 2: \(ranks)")
        #expect(result.summary.finalRanks == ranks[4])
        // The small layer (100 × 10 weights) is never shrunk.
        #expect(ranks.allSatisfy { $0[2] == 10 })
    }
}
