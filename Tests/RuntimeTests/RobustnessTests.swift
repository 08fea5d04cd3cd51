import Federation
import Fleet
import Foundation
import LowRank
import RunRecords
import Tensors
import Testing
import Transport

@testable import Runtime

/// Updates that cannot end or poison a run: bad scalars, oversized updates, non-finite
/// aggregates and non-finite numbers in the run files.
@Suite("Updates that cannot end or poison a run")
struct RobustnessTests {
    /// Client `client` answers its last TRAIN with `change` applied to the update it would
    /// send (the factors it was sent, loss 1, 0.01 s).
    static func answer(
        _ run: inout MachineHarness, _ client: UInt32, at time: Duration,
        _ change: (inout TrainingUpdate) -> Void
    ) {
        let train = run.trains.last { $0.client == client }!
        var update = TrainingUpdate(
            factors: train.task.factors, shared: train.task.shared, sampleCount: 50,
            trainingLoss: 1, computeSeconds: 0.01)
        change(&update)
        let frame = WireCodec.encode(.update(update), round: train.round, sender: client)
        run.perform(
            run.machine.received(
                ReceivedFrame(peer: MachineHarness.peer(Int(client)), bytes: frame), at: time))
    }

    static func isFinite(_ network: Network) -> Bool {
        network.parameters.allSatisfy { $0.scalars.allSatisfy(\.isFinite) }
    }

    @Test("Bad scalars are problems of their own: NaN, ±Inf, negative or huge loss and seconds")
    func scalars() throws {
        let scenario = try Scenario.parse(yaml: syntheticScenarioYAML)
        let global = scenario.initialNetwork()
        let slice = global.slice(budgets: [3])
        let good = TrainingUpdate(
            factors: slice.factors, shared: slice.shared, sampleCount: 10, trainingLoss: 0.5,
            computeSeconds: 0.1)
        #expect(UpdateCheck.problem(with: good, budgets: [3], global: global) == nil)
        for bad: Float in [.nan, .infinity, -.infinity, -0.5, 1e6, 3e30] {
            var update = good
            update.trainingLoss = bad
            let problem = UpdateCheck.problem(with: update, budgets: [3], global: global)
            #expect(problem?.reason == .badTrainingLoss, "\(bad)")
            update = good
            update.computeSeconds = bad
            let seconds = UpdateCheck.problem(with: update, budgets: [3], global: global)
            #expect(seconds?.reason == .badComputeSeconds, "\(bad)")
        }
        var zero = good
        (zero.trainingLoss, zero.computeSeconds) = (0, 0)
        #expect(UpdateCheck.problem(with: zero, budgets: [3], global: global) == nil)
    }

    @Test("The norm bound: each tensor's change relative to the global slice, floored near zero")
    func normRatio() throws {
        let scenario = try Scenario.parse(yaml: syntheticScenarioYAML)
        let global = scenario.initialNetwork()
        let slice = global.slice(budgets: [3])
        var update = TrainingUpdate(
            factors: slice.factors, shared: slice.shared, sampleCount: 10, trainingLoss: 0.5,
            computeSeconds: 0.1)
        // Unchanged: ratio 0.
        #expect(
            UpdateCheck.updateNormRatio(of: update, budgets: [3], global: global)?.ratio == 0)
        // `up` moved by 3 times itself: ‖x − g‖ = 3‖g‖.
        update.factors[0].up.scalars = slice.factors[0].up.scalars.map { 4 * $0 }
        let up = try #require(UpdateCheck.updateNormRatio(of: update, budgets: [3], global: global))
        #expect(up.tensor == 0 && abs(up.ratio - 3) < 1e-5)
        #expect(UpdateCheck.problem(with: update, budgets: [3], global: global) == nil)
        #expect(
            UpdateCheck.problem(with: update, budgets: [3], global: global, maximumNormRatio: 2.5)?
                .reason == .updateNormTooLarge)
        // The bias starts at 0: its floor is 0.01 per entry, so +0.05 everywhere is ratio 5.
        update = TrainingUpdate(
            factors: slice.factors, shared: slice.shared, sampleCount: 10, trainingLoss: 0.5,
            computeSeconds: 0.1)
        #expect(slice.shared[0].scalars.allSatisfy { $0 == 0 })
        update.shared[0].scalars = update.shared[0].scalars.map { $0 + 0.05 }
        let bias = try #require(
            UpdateCheck.updateNormRatio(of: update, budgets: [3], global: global))
        #expect(bias.tensor == 2 && abs(bias.ratio - 5) < 1e-4)
        // Every value 9e5 (under the 1e6 value bound): far beyond the default ratio.
        update.factors[0].up.scalars = update.factors[0].up.scalars.map { _ in 9e5 }
        guard
            case .normTooLarge(let tensor, let ratio, let bound) = UpdateCheck.problem(
                with: update, budgets: [3], global: global)
        else {
            Issue.record("a 9e5 update passed")
            return
        }
        #expect(tensor == 0 && ratio > 1e5 && bound == 100)
    }

    @Test("An update of 9e5 everywhere is rejected; the run completes with a finite model")
    func hugeUpdate() throws {
        var run = try MachineHarness([("rounds", "2")])
        run.perform(run.machine.start(at: .zero))
        for client in 0..<8 { run.register(client, at: .zero) }
        for round in 1...2 {
            let invited = run.trains.filter { $0.round == round }.map(\.client)
            Self.answer(&run, invited[0], at: .seconds(round)) { update in
                for l in update.factors.indices {
                    update.factors[l].up.scalars = update.factors[l].up.scalars.map { _ in 9e5 }
                    update.factors[l].down.scalars = update.factors[l].down.scalars.map { _ in
                        9e5
                    }
                }
                for i in update.shared.indices {
                    update.shared[i].scalars = update.shared[i].scalars.map { _ in 9e5 }
                }
            }
            for client in invited.dropFirst() { run.answer(client, at: .seconds(round)) }
            run.perform(run.machine.committed(at: .seconds(round)))
        }
        #expect(run.finished && run.failures.isEmpty)
        #expect(run.commits.count == 2)
        #expect(run.commits.allSatisfy { $0.rejected["update_norm_too_large"] == 1 })
        #expect(run.commits.allSatisfy { $0.droppedInvalid.count == 1 })
        #expect(run.commits.allSatisfy { $0.participants.count == 3 && $0.rolledBack == nil })
        #expect(Self.isFinite(run.machine.global))
        let losses = run.commits.compactMap(\.lossByTier).flatMap(\.values)
        #expect(!losses.isEmpty && losses.allSatisfy(\.isFinite))
    }

    @Test("NaN trainingLoss or +Inf computeSeconds: rejected, the client leaves, the run goes on")
    func badScalarsInARun() throws {
        var run = try MachineHarness([("rounds", "2")])
        run.perform(run.machine.start(at: .zero))
        for client in 0..<8 { run.register(client, at: .zero) }
        for round in 1...2 {
            let invited = run.trains.filter { $0.round == round }.map(\.client)
            Self.answer(&run, invited[0], at: .seconds(round)) { $0.trainingLoss = .nan }
            Self.answer(&run, invited[1], at: .seconds(round)) { $0.computeSeconds = .infinity }
            for client in invited.dropFirst(2) { run.answer(client, at: .seconds(round)) }
            run.perform(run.machine.committed(at: .seconds(round)))
        }
        #expect(run.finished && run.failures.isEmpty)
        for metrics in run.commits {
            #expect(metrics.rejected == ["bad_training_loss": 1, "bad_compute_seconds": 1])
            #expect(metrics.participants.count == 2 && metrics.droppedInvalid.count == 2)
            #expect(metrics.trainingLoss == 1 && metrics.clientComputeSeconds.isFinite)
        }
        // Every round's metrics and the summary encode.
        let encoder = JSONEncoder()
        for metrics in run.commits { _ = try encoder.encode(metrics) }
        _ = try encoder.encode(
            run.machine.summary(statistics: TransportStatistics(), wallSeconds: 1))
    }

    @Test("An aggregate that is not finite is rolled back: the model and server state stand")
    func rollBack() throws {
        // A server step of 1e38 overflows a pseudo-gradient of 10 to ±Inf (the norm bound is
        // lifted, so the updates reach the aggregation).
        var run = try MachineHarness([
            ("rounds", "3"), ("training.server", "{optimizer: fedAvgM, learningRate: 1e38}"),
            ("robustness", "{maximumUpdateNormRatio: 1e30}"),
        ])
        let initial = run.machine.global
        let initialState = run.machine.serverState
        run.perform(run.machine.start(at: .zero))
        for client in 0..<8 { run.register(client, at: .zero) }
        for round in 1...3 {
            let invited = run.trains.filter { $0.round == round }.map(\.client)
            for client in invited {
                Self.answer(&run, client, at: .seconds(round)) { update in
                    update.shared[0].scalars = update.shared[0].scalars.map { $0 + 10 }
                }
            }
            run.perform(run.machine.committed(at: .seconds(round)))
        }
        #expect(run.finished && run.failures.isEmpty && run.commits.count == 3)
        #expect(run.commits.allSatisfy { $0.rolledBack == "non_finite_model" })
        #expect(run.machine.global == initial)
        #expect(run.machine.serverState == initialState)
        let losses = run.commits.compactMap(\.lossByTier).flatMap(\.values)
        #expect(!losses.isEmpty && losses.allSatisfy(\.isFinite))
        // Nobody's data reached the model.
        let summary = run.machine.summary(statistics: TransportStatistics(), wallSeconds: 1)
        #expect(summary.tiers.allSatisfy { $0.contributingClients == 0 && $0.participations == 0 })
    }

    @Test("Evaluations with NaN or ±Inf are not finite; finite ones are")
    func evaluationCheck() {
        #expect(Deployment.nonFiniteEvaluation(accuracy: nil, loss: nil) == nil)
        #expect(Deployment.nonFiniteEvaluation(accuracy: ["a": 0.5], loss: ["a": 2]) == nil)
        #expect(
            Deployment.nonFiniteEvaluation(accuracy: ["a": 0.5], loss: ["a": .nan])
                == "non_finite_evaluation")
        #expect(
            Deployment.nonFiniteEvaluation(accuracy: ["a": .infinity], loss: nil)
                == "non_finite_evaluation")
    }

    @Test("metrics.jsonl, summary.json and checkpoints encode NaN and ±Inf, and read back")
    func nonFiniteRunFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "maestro-robust-\(UUID().uuidString)"
        ).path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var run = try MachineHarness([("rounds", "1")])
        run.perform(run.machine.start(at: .zero))
        for client in 0..<8 { run.register(client, at: .zero) }
        for client in run.trains.map(\.client) { run.answer(client, at: .seconds(1)) }
        var metrics = try #require(run.commits.first)
        metrics.trainingLoss = .nan
        metrics.lossByTier = ["small": .infinity, "large": -.infinity]
        let recorder = try RunRecorder(directory: directory, scenarioYAML: "")
        try recorder.finishRound(metrics)
        var summary = run.machine.summary(statistics: TransportStatistics(), wallSeconds: 1)
        summary.finalAccuracyByTier = ["small": .nan]
        try recorder.writeSummary(summary)
        let decoder = RunJSON.decoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let line = try String(contentsOfFile: "\(directory)/metrics.jsonl", encoding: .utf8)
        #expect(line.contains("\"training_loss\":\"NaN\""))
        let back = try decoder.decode(RoundMetrics.self, from: Data(line.utf8))
        #expect(back.trainingLoss?.isNaN == true)
        #expect(back.lossByTier == ["small": .infinity, "large": -.infinity])
        let summaryBack = try decoder.decode(
            RunSummary.self,
            from: Data(contentsOf: URL(fileURLWithPath: "\(directory)/summary.json")))
        #expect(summaryBack.finalAccuracyByTier["small"]?.isNaN == true)
        // A checkpoint whose last accuracy is NaN is still written whole (it used to be written
        // empty); read back, it is refused naming the field (an accuracy is in [0, 1]).
        var checkpoint = run.machine.checkpoint(statistics: TransportStatistics(), wallSeconds: 1)
        let honest = try CoordinatorCheckpoint(bytes: checkpoint.encoded(), path: "checkpoint")
        #expect(honest.header.round == 1)
        checkpoint.header.lastAccuracy = ["small": .nan]
        let bytes = checkpoint.encoded()
        #expect(bytes.count > checkpoint.parameters.count * 4)
        do {
            _ = try CoordinatorCheckpoint(bytes: bytes, path: "checkpoint")
            Issue.record("a checkpoint with a NaN accuracy was accepted")
        } catch {
            #expect("\(error)".contains("lastAccuracy.small is nan"), "\(error)")
        }
    }

    @Test("Simulated attackers: ⌈fraction·clients⌉ drawn by seed; scale and signFlip by hand")
    func adversaries() throws {
        let scale = Scenario.Adversaries(fraction: 0.1, attack: .scale, factor: 10)
        let attackers = scale.attackers(clients: 100, seed: 1)
        #expect(attackers.count == 10 && attackers == scale.attackers(clients: 100, seed: 1))
        #expect(attackers != scale.attackers(clients: 100, seed: 2))
        #expect(
            Scenario.Adversaries(fraction: 0.25, attack: .scale, factor: 1)
                .attackers(clients: 6, seed: 1).count == 2)
        let sent = TrainingTask(
            budgets: [1],
            factors: [
                FactorPair(
                    up: Tensor(shape: [1, 2], scalars: [1, 2]),
                    down: Tensor(shape: [1, 1], scalars: [0]))
            ],
            shared: [Tensor(shape: [2], scalars: [0, 0]), Tensor(shape: [1], scalars: [5])],
            localEpochs: 1, batchSize: 1, learningRate: 0.1, sampler: .perLayer, groupLasso: 0,
            seed: 0)
        // Trained: up moved by (+1, −1), down by +0.5, the first shared tensor came back with
        // no rows (a frozen layer), the second moved by −1.
        let trained = ModelSlice(
            budgets: [1],
            factors: [
                FactorPair(
                    up: Tensor(shape: [1, 2], scalars: [2, 1]),
                    down: Tensor(shape: [1, 1], scalars: [0.5]))
            ],
            shared: [Tensor(shape: [0], scalars: []), Tensor(shape: [1], scalars: [4])])
        let scaled = scale.tampered(trained, sent: sent)
        #expect(scaled.factors[0].up.scalars == [11, -8] && scaled.factors[0].down.scalars == [5])
        #expect(scaled.shared[0].shape == [0] && scaled.shared[1].scalars == [-5])
        let flipped = Scenario.Adversaries(fraction: 0.1, attack: .signFlip, factor: 2)
            .tampered(trained, sent: sent)
        #expect(flipped.factors[0].up.scalars == [-1, 4] && flipped.shared[1].scalars == [7])
    }
}
