import Federation
import Fleet
import Foundation
import LowRank
import Tensors
import Testing
import Transport
import Vocabulary

@testable import Device
@testable import Runtime

/// The width strategies end to end without sockets: what the coordinator sends each tier,
/// what a client trains, what the server checks and combines.
@Suite("Width strategies: slices sent, trained, checked and combined")
struct WidthStrategyTests {
    /// `Scenarios/smoke-heteroFL.yaml` (the MLP, tiers low 0.25 × 3 and full 1 × 3) under
    /// `strategy`, its initial model and its 6 clients (0–2 low, 3–5 full).
    func fleet(_ strategy: String) throws -> (Scenario, Network, ClientTable) {
        let path = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Scenarios/smoke-heteroFL.yaml").path
        let scenario = try Scenario.load(path: path).overriding([
            ("model.strategy", strategy), ("clientsPerRound", "6"),
        ])
        let clients = ClientTable(
            fleetSize: 6,
            records: (0..<6).map { i in
                ClientRecord(
                    id: UInt32(i), peer: PeerID(bytes: [UInt8(i + 1)]), tierIndex: i < 3 ? 0 : 1,
                    sampleCount: 40 + i, nonce: UInt64(i))
            })
        return (scenario, scenario.initialNetwork(), clients)
    }

    let lowShapes = [[75, 784], [75], [25, 75], [25], [10, 25], [10]]
    let fullShapes = [[300, 784], [300], [100, 300], [100], [10, 100], [10]]

    func invited(
        _ scenario: Scenario, _ global: Network, _ clients: ClientTable, round: Int = 1
    ) -> [UInt32: RoundLogic.Invitation] {
        let invitations = RoundLogic(scenario: scenario).invitations(
            selected: Array(0..<6), clients: clients, global: global, round: round
        ).invited
        return Dictionary(uniqueKeysWithValues: invitations.map { ($0.client, $0) })
    }

    @Test("heteroFL sends each tier its prefix; smallModel sends every tier the smallest's")
    func slicesPerTier() throws {
        let (hetero, global, clients) = try fleet("heteroFL")
        let nested = invited(hetero, global, clients)
        #expect(nested[0]!.task.shared.map(\.shape) == lowShapes)
        #expect(nested[0]!.task.factors.isEmpty && nested[0]!.task.budgets.isEmpty)
        #expect(nested[5]!.task.shared.map(\.shape) == fullShapes)
        // The low tier's fc1 is the first 75 rows of the global one.
        #expect(nested[0]!.task.shared[0].scalars == Array(global.parameters[0].scalars[..<58_800]))
        let (small, _, _) = try fleet("smallModel")
        let floor = invited(small, global, clients)
        #expect(floor.values.allSatisfy { $0.task.shared.map(\.shape) == lowShapes })
        let lowBytes = WireCodec.encodedSize(of: .train(nested[0]!.task))
        for (id, invitation) in floor {
            // Never more than the low tier's bytes; the full tier's clients download the same
            // slice as fast as their link allows.
            #expect(WireCodec.encodedSize(of: .train(invitation.task)) <= lowBytes)
            let tier = small.tiers[clients[id]!.tierIndex]
            let seconds = Double(lowBytes) * 8 / (tier.downlinkMbps * 1e6) + tier.latencyMs / 1000
            #expect(abs(invitation.time.downloadSeconds - seconds) < 1e-9)
        }
    }

    @Test("fedRolex moves its window one unit a round and wraps")
    func rollingWindow() throws {
        let (scenario, global, clients) = try fleet("fedRolex")
        let second = invited(scenario, global, clients, round: 2)
        // Round 2: fc1 units 1…75 (bias entries), fc2 units 1…25.
        #expect(second[1]!.task.shared[1].scalars == Array(global.parameters[1].scalars[1...75]))
        #expect(second[1]!.task.shared[3].scalars == Array(global.parameters[3].scalars[1...25]))
        // The full tier's window is the whole layer in every round.
        #expect(second[4]!.task.shared.map(\.shape) == fullShapes)
        let spaces = try #require(scenario.channelSpaces(of: global.architecture))
        let wrapped = scenario.widthPlan(spaces, tier: scenario.tiers[0], round: 300)
        #expect(wrapped.kept[1] == Array(0..<74) + [299])
        // fc2's 100 units: the window starts at 299 mod 100 = 99.
        #expect(wrapped.kept[2] == Array(0..<24) + [99])
    }

    @Test("fjord: a client draws only among the tiers' widths up to its own")
    func orderedDropoutFractions() throws {
        let (scenario, global, clients) = try fleet("fjord")
        let tasks = invited(scenario, global, clients)
        // Width dropout has its own sampler byte; no rank sampler runs beside it.
        #expect(tasks[0]!.task.widthDropout)
        #expect(tasks[0]!.task.sampler == .unsampled)
        #expect(tasks[0]!.task.samplerFractions == [0.25])
        let frame = WireCodec.encode(.train(tasks[0]!.task), round: 1, sender: 0)
        // The sampler byte follows localEpochs, batchSize, learningRate, groupLasso and seed.
        #expect(frame[WireLimits.headerSize + 20] == TrainingTask.widthDropoutCode)
        #expect(TrainingTask.widthDropoutCode == 5)
        let decoded = try WireCodec.decode(frame, maximumSize: frame.count)
        guard case .train(let received) = decoded.message else {
            Issue.record("not a TRAIN: \(decoded.message)")
            return
        }
        #expect(received == tasks[0]!.task)
        #expect(tasks[4]!.task.samplerFractions == [0.25, 1])
        for (id, invitation) in tasks {
            let own = Float(scenario.tiers[clients[id]!.tierIndex].rankFraction)
            #expect(invitation.task.samplerFractions.allSatisfy { $0 <= own })
        }
        let (hetero, _, _) = try fleet("heteroFL")
        #expect(invited(hetero, global, clients)[4]!.task.sampler == .unsampled)
        #expect(!invited(hetero, global, clients)[4]!.task.widthDropout)
    }

    @Test("orderedLoD with every layer dense and a sharedFraction sampler trains the whole model")
    func denseLoDIsNotWidthDropout() throws {
        // factoredMinimumWeights above every layer's size: the model has no LoD layer, as
        // under a width strategy, but the scenario is orderedLoD with a rank sampler.
        let (base, _, clients) = try fleet("heteroFL")
        let scenario = try base.overriding([
            ("model.strategy", "orderedLoD"), ("model.factoredMinimumWeights", "1000000"),
            ("training.sampler", "{kind: sharedFraction, fractions: [0.25, 1], scope: model}"),
        ])
        let global = scenario.initialNetwork()
        #expect(global.architecture.lowRankLayerIndices.isEmpty)
        let task = invited(scenario, global, clients)[4]!.task
        #expect(task.sampler == .sharedFraction)
        #expect(!task.widthDropout)
        #expect(task.shared.map(\.shape) == fullShapes)
        // Rank sampling on a model without LoD layers trains every weight: unit 299 of fc1
        // moves, which width dropout at 1/4 would leave alone.
        var narrow = task
        narrow.samplerFractions = [0.25]
        let ranked = LocalTraining.run(narrow, architecture: global.architecture, samples: samples)
        #expect(ranked.slice.shared[1].scalars[299] != global.parameters[1].scalars[299])
        narrow.widthDropout = true
        narrow.sampler = .unsampled
        let dropped = LocalTraining.run(narrow, architecture: global.architecture, samples: samples)
        #expect(dropped.slice.shared[1].scalars[299] == global.parameters[1].scalars[299])
        #expect(dropped.slice.shared[1].scalars[0] != global.parameters[1].scalars[0])
    }

    /// 40 random Fashion-MNIST-shaped samples.
    let samples: TrainingSamples = {
        var generator = SeededGenerator(seed: 3)
        return TrainingSamples(
            features: (0..<(40 * 784)).map { _ in Float(generator.uniformDouble()) },
            labels: (0..<40).map { Int32($0 % 10) }, featureCount: 784)
    }()

    @Test("fjord's steps never train beyond the widths drawn; heteroFL trains its whole slice")
    func orderedDropoutTraining() throws {
        let (scenario, global, clients) = try fleet("fjord")
        var task = invited(scenario, global, clients)[4]!.task
        task.samplerFractions = [0.25]
        let narrow = LocalTraining.run(task, architecture: global.architecture, samples: samples)
        #expect(narrow.slice.shared.map(\.shape) == fullShapes)
        #expect(narrow.steps == 2)
        let spaces = try ChannelSpaces(global.architecture)
        let quarter = WidthPlan.prefix(spaces, fraction: 0.25)
        for (t, indices) in quarter.parameterIndices.enumerated() {
            let held = Set(indices)
            let (before, after) = (global.parameters[t].scalars, narrow.slice.shared[t].scalars)
            let outside = before.indices.filter { !held.contains($0) }
            #expect(outside.allSatisfy { before[$0] == after[$0] }, "tensor \(t)")
            #expect(indices.contains { before[$0] != after[$0] }, "tensor \(t)")
        }
        task.samplerFractions = [0.25, 1]
        task.localEpochs = 4  // 8 steps: this seed's first two both draw 0.25
        let wide = LocalTraining.run(task, architecture: global.architecture, samples: samples)
        // With the full width among the draws, the rest of the model trains too.
        #expect(wide.slice.shared[2].scalars[299] != global.parameters[2].scalars[299])
        // A heteroFL client of the low tier trains and returns its slice's shapes.
        let (hetero, _, _) = try fleet("heteroFL")
        let low = invited(hetero, global, clients)[0]!.task
        let trained = LocalTraining.run(low, architecture: global.architecture, samples: samples)
        #expect(trained.slice.shared.map(\.shape) == lowShapes)
        #expect(trained.slice.shared != low.shared)
    }

    @Test("A client accepts a width slice of its model and refuses narrower tensors that are not")
    func clientChecksShapes() throws {
        let (scenario, global, clients) = try fleet("heteroFL")
        let task = invited(scenario, global, clients)[0]!.task
        #expect(
            ClientSession.sliceFits(
                [], factors: [], shared: task.shared, architecture: global.architecture))
        var forged = task.shared
        forged[2] = Tensor(zeros: [25, 70])
        #expect(
            !ClientSession.sliceFits(
                [], factors: [], shared: forged, architecture: global.architecture))
    }

    @Test("The server checks an update against the tier's slice and averages over holders")
    func checkAndCombine() throws {
        let (scenario, global, clients) = try fleet("heteroFL")
        let logic = RoundLogic(scenario: scenario)
        let plan = try #require(
            logic.widthPlan(tierIndex: 0, round: 1, architecture: global.architecture))
        let sent = plan.gather(global.parameters)
        let update = TrainingUpdate(
            factors: [], shared: sent.map { Tensor(repeating: 0.01, shape: $0.shape) },
            sampleCount: 40, trainingLoss: 1, computeSeconds: 1)
        #expect(
            UpdateCheck.problem(
                with: update, budgets: [], global: global, widthPlan: plan,
                maximumNormRatio: 1e9) == nil)
        var wrong = update
        wrong.shared = global.parameters
        guard
            case .shapeMismatch = UpdateCheck.problem(
                with: wrong, budgets: [], global: global, widthPlan: plan)
        else {
            Issue.record("a full-width update from a low-tier client was accepted")
            return
        }
        // Client 0 (low, 40 samples) sends 0.01 everywhere, client 3 (full, 43) 0.02.
        let full = try #require(
            logic.widthPlan(tierIndex: 1, round: 1, architecture: global.architecture))
        let contributions = [
            ClientContribution(
                clientID: 3, sampleCount: 43,
                slice: ModelSlice(
                    budgets: [], factors: [],
                    shared: full.gather(global.parameters).map {
                        Tensor(repeating: 0.02, shape: $0.shape)
                    })),
            ClientContribution(
                clientID: 0, sampleCount: 40,
                slice: ModelSlice(
                    budgets: [], factors: [], shared: update.shared)),
        ]
        let delta = logic.widthPseudoGradient(
            global: global, contributions: contributions, round: 1,
            tierIndex: { clients[UInt32($0)]?.tierIndex })
        let fc1 = global.parameters[0].scalars
        let held = (0.01 * 40 + 0.02 * 43) / 83.0
        #expect(abs(Double(fc1[5] - delta[0].scalars[5]) - held) < 1e-6)
        #expect(abs(Double(fc1[80_000] - delta[0].scalars[80_000]) - 0.02) < 1e-6)
    }
}
