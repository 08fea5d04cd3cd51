import Federation
import Fleet
import LowRank
import Tensors
import TestSupport
import Testing
import Transport
import Vocabulary

@testable import Runtime

@Suite("Round decisions, without a transport")
struct RoundLogicTests {
    /// The synthetic test scenario with `overrides`, its initial model and its 8 clients
    /// (0–3 small tier, 4–7 large), client `i` holding `100 + 10 i` samples.
    func fleet(
        _ overrides: [(keyPath: String, value: String)] = []
    ) throws -> (Scenario, Network, ClientTable) {
        let scenario = try Scenario.parse(yaml: syntheticScenarioYAML).overriding(overrides)
        let clients = ClientTable(
            fleetSize: 8,
            records: (0..<8).map { i in
                ClientRecord(
                    id: UInt32(i), peer: PeerID(bytes: [UInt8(i + 1)]), tierIndex: i < 4 ? 0 : 1,
                    sampleCount: 100 + 10 * i, nonce: UInt64(i))
            })
        return (scenario, scenario.initialNetwork(), clients)
    }

    @Test("Invitations: the first clientsPerRound to finish on the virtual clock, by time then ID")
    func overSelection() throws {
        let (scenario, global, clients) = try fleet([("clientsPerRound", "3")])
        let selected: [UInt32] = [0, 2, 5, 6, 7]
        let (invited, dropped) = RoundLogic(scenario: scenario).invitations(
            selected: selected, clients: clients, global: global, round: 1)
        #expect(invited.count == 3)
        // Every invited client finishes no later than every dropped one.
        let times = Dictionary(
            uniqueKeysWithValues: RoundLogic(
                scenario: try scenario.overriding([("clientsPerRound", "8")])
            ).invitations(selected: selected, clients: clients, global: global, round: 1).invited
                .map { ($0.client, $0.time.totalSeconds) })
        #expect(times.count == 5)
        let slowestInvited = invited.map { times[$0.client]! }.max()!
        #expect(dropped.allSatisfy { times[$0]! >= slowestInvited })
        #expect(Set(invited.map(\.client)).union(dropped) == Set(selected))
        // The large tier (4 GFLOP/s, 8 Mbit/s up) beats the small one (1 GFLOP/s, 1 Mbit/s).
        #expect(Set(invited.map(\.client)) == [5, 6, 7])
        // Budgets are ⌈p·r⌉ of the kept ranks: the logistic layer has rank 10.
        #expect(invited.allSatisfy { $0.budgets == [10] })
    }

    @Test("Model-scoped fractions reach each tier as fractions of its budget, f ≤ p only")
    func samplerScope() throws {
        /// All eight clients invited to round 1 under `sampler`.
        func invited(sampler: String) throws -> [RoundLogic.Invitation] {
            let (scenario, global, clients) = try fleet([
                ("clientsPerRound", "8"), ("training.sampler", sampler),
            ])
            return RoundLogic(scenario: scenario).invitations(
                selected: Array(0..<8), clients: clients, global: global, round: 1
            ).invited
        }
        let scoped = try invited(
            sampler: "{kind: sharedFraction, fractions: [0.1, 0.3, 1], scope: model}")
        #expect(scoped.count == 8)
        for invitation in scoped {
            let small = invitation.client < 4
            // The logistic layer has rank 10: budgets 3 (p = 0.3) and 10.
            #expect(invitation.budgets == [small ? 3 : 10])
            #expect(invitation.task.sampler == .sharedFraction)
            #expect(
                invitation.task.samplerFractions
                    == (small ? [Float(0.1 / 0.3), 1] : [0.1, 0.3, 1]))
            // Each fraction of the budget trains the ranks the model fractions name.
            let ranks = invitation.task.samplerFractions.map {
                RankBudget.rank(fraction: Double($0), of: invitation.budgets[0])
            }
            #expect(ranks == (small ? [1, 3] : [1, 3, 10]))
        }
        // Budget-scoped (the default): every tier gets the fractions as written.
        let plain = try invited(sampler: "{kind: sharedFraction, fractions: [0.5, 1]}")
        #expect(plain.allSatisfy { $0.task.samplerFractions == [0.5, 1] })
        // No fraction within a tier's own: it trains its whole budget.
        let lifted = try invited(
            sampler: "{kind: sharedFraction, fractions: [0.5, 1], scope: model}")
        #expect(lifted.filter { $0.client < 4 }.allSatisfy { $0.task.samplerFractions == [1] })
    }

    @Test(
        "bestValidated: a tier deploys the best-validating tier budget within its own; ties keep the larger"
    )
    func bestValidatedBudgets() {
        let budgets = [[1, 2], [2, 4], [4, 8], [8, 16]]
        #expect(
            Deployment.bestValidatedBudgets(
                budgets: budgets, validationAccuracy: [0.5, 0.6, 0.7, 0.8]) == [0, 1, 2, 3])
        #expect(
            Deployment.bestValidatedBudgets(
                budgets: budgets, validationAccuracy: [0.5, 0.9, 0.7, 0.8]) == [0, 1, 1, 1])
        #expect(
            Deployment.bestValidatedBudgets(
                budgets: budgets, validationAccuracy: [0.9, 0.9, 0.7, 0.9]) == [0, 1, 1, 3])
        // A budget larger in any layer does not fit, however well it validates.
        #expect(
            Deployment.bestValidatedBudgets(
                budgets: [[1, 8], [4, 4], [8, 8]], validationAccuracy: [0.9, 0.5, 0.6])
                == [0, 1, 0])
        // Equal budgets (two tiers capped alike): the first one validating best.
        #expect(
            Deployment.bestValidatedBudgets(
                budgets: [[2, 2], [2, 2]], validationAccuracy: [0.7, 0.7]) == [0, 1])
    }

    @Test(
        "deploySignificance: a larger budget replaces a smaller one only on enough paired validation evidence"
    )
    func bestValidatedWithEvidence() {
        let budgets = [[1, 2], [2, 4], [4, 8], [8, 16]]
        // 100 validation images: budget 0 right on the first 80, budget 1 on the first 85,
        // budget 2 on the first 86, budget 3 on the first 84 and on 90..<96.
        let correct = [
            (0..<100).map { $0 < 80 }, (0..<100).map { $0 < 85 }, (0..<100).map { $0 < 86 },
            (0..<100).map { $0 < 84 || (90..<96).contains($0) },
        ]
        // Accuracy alone: 80, 85, 86, 90 %, every tier its own.
        #expect(
            Deployment.bestValidatedBudgets(
                budgets: budgets, validationAccuracy: correct.map { Double($0.count { $0 }) / 100 })
                == [0, 1, 2, 3])
        // z = 2: 1 over 0 is 5 wins to 0 (5 ≥ 2·√5 = 4.5); 2 over 1 is 1 to 0 (< 2); 3 over
        // 1 is 6 to 1 (5 < 2·√7 = 5.3): the larger tiers keep budget 1.
        #expect(
            Deployment.bestValidatedBudgets(
                budgets: budgets, validationCorrect: correct, significance: 2) == [0, 1, 1, 1])
        // z = 1: 2 over 1 (1 ≥ 1) and 3 over 2 (6 to 2: 4 ≥ √8 = 2.8) pass.
        #expect(
            Deployment.bestValidatedBudgets(
                budgets: budgets, validationCorrect: correct, significance: 1) == [0, 1, 2, 3])
        // Never a budget that validates worse than a smaller one, whatever z.
        let worse = [(0..<100).map { $0 < 90 }, (0..<100).map { $0 < 80 }]
        #expect(
            Deployment.bestValidatedBudgets(
                budgets: [[1], [2]], validationCorrect: worse, significance: 0.01) == [0, 0])
        // Equal budgets (two tiers capped alike): each tier its own.
        #expect(
            Deployment.bestValidatedBudgets(
                budgets: [[2, 2], [2, 2]], validationCorrect: [worse[0], worse[0]],
                significance: 2) == [0, 1])
    }

    @Test(
        "Budget growth caps every tier's budget and fractions until its round, then opens at zero")
    func budgetGrowth() throws {
        let (scenario, global, clients) = try fleet([
            ("clientsPerRound", "8"), ("rounds", "10"),
            ("training.sampler", "{kind: sharedFraction, fractions: [0.1, 0.3, 1], scope: model}"),
            ("training.budgetGrowth", "{caps: [0.1, 0.5], until: [2, 4]}"),
        ])
        /// (budget, fractions on the wire) of the small and the large tier in `round`.
        func plan(_ round: Int) -> [[Int]: [Float]] {
            let invited = RoundLogic(scenario: scenario).invitations(
                selected: Array(0..<8), clients: clients, global: global, round: round
            ).invited
            #expect(invited.count == 8)
            return Dictionary(
                invited.map { ($0.budgets, $0.task.samplerFractions) },
                uniquingKeysWith: { a, _ in a })
        }
        // Rank 10: cap 0.1 → both tiers train one component, all of it every step.
        #expect(plan(1) == [[1]: [1]])
        #expect(plan(2) == [[1]: [1]])
        // Cap 0.5: small keeps its 0.3 (3 components), large gets 5 and draws f ≤ 0.5.
        #expect(plan(3) == [[3]: [Float(0.1 / 0.3), 1], [5]: [0.2, 0.6]])
        #expect(plan(4) == plan(3))
        // After the last cap, each tier's own fraction.
        #expect(plan(5) == [[3]: [Float(0.1 / 0.3), 1], [10]: [0.1, 0.3, 1]])

        var grown = global
        var state = ServerOptimizerState(for: grown.parameters)
        state.firstMoment[0].scalars = Array(repeating: 1, count: state.firstMoment[0].count)
        let input = (0..<120).map { Float($0 % 7) / 7 - 0.4 }
        let before = grown.forward(input, batch: 2, ranks: [1]).activations.last!
        #expect(
            RoundLogic(scenario: scenario).openGrownBudgets(&grown, serverState: &state, after: 1)
                .isEmpty)
        let opened = RoundLogic(scenario: scenario).openGrownBudgets(
            &grown, serverState: &state, after: 2)
        #expect(opened.count == 1 && opened[0].layer == 0 && opened[0].components == 1..<5)
        // Output factor rows 1..<5 zeroed, the rest and the input factor untouched.
        let (up, down) = (grown.parameters[0], global.parameters[0])
        let width = up.columns
        #expect(up.scalars[width..<(5 * width)].allSatisfy { $0 == 0 })
        #expect(up.scalars[..<width] == down.scalars[..<width])
        #expect(up.scalars[(5 * width)...] == down.scalars[(5 * width)...])
        #expect(grown.parameters[1] == global.parameters[1])
        #expect(state.firstMoment[0].scalars[..<width].allSatisfy { $0 == 1 })
        #expect(state.firstMoment[0].scalars[width...].allSatisfy { $0 == 0 })
        // The opened model computes what the capped one did: the opened components add exact
        // zeros, but BLAS may sum the rank-1 and rank-5 products in another order (one ulp
        // apart with OpenBLAS's Cooperlake kernels), so equal within float32 rounding.
        func same(_ a: [Float], _ b: [Float]) -> Bool {
            isClose(
                Tensor(shape: [a.count], scalars: a), Tensor(shape: [b.count], scalars: b),
                tolerance: 1e-6)
        }
        #expect(same(grown.forward(input, batch: 2, ranks: [5]).activations.last!, before))
        let last = RoundLogic(scenario: scenario).openGrownBudgets(
            &grown, serverState: &state, after: 4)
        #expect(last.count == 1 && last[0].components == 5..<10)
        #expect(same(grown.forward(input, batch: 2, ranks: [10]).activations.last!, before))
        #expect(
            RoundLogic(scenario: scenario).openGrownBudgets(&grown, serverState: &state, after: 5)
                .isEmpty)
    }

    @Test("A client that would miss the deadline is dropped before anything is sent")
    func deadline() throws {
        let (open, global, clients) = try fleet([("clientsPerRound", "8")])
        let all: [UInt32] = Array(0..<8)
        let times = RoundLogic(scenario: open).invitations(
            selected: all, clients: clients, global: global, round: 1
        ).invited
        let small = times.filter { $0.client < 4 }.map(\.time.totalSeconds)
        let large = times.filter { $0.client >= 4 }.map(\.time.totalSeconds)
        #expect(large.max()! < small.min()!, "small \(small), large \(large)")
        let cut = (large.max()! + small.min()!) / 2
        let (scenario, _, _) = try fleet([("clientsPerRound", "8"), ("deadlineSeconds", "\(cut)")])
        let (invited, dropped) = RoundLogic(scenario: scenario).invitations(
            selected: all, clients: clients, global: global, round: 1)
        #expect(invited.map(\.client).sorted() == [4, 5, 6, 7])
        #expect(dropped == [0, 1, 2, 3])
        #expect(invited.first!.budgets == [10])
        // Unknown IDs are skipped, not planned.
        let ghosts = RoundLogic(scenario: scenario).invitations(
            selected: [42], clients: clients, global: global, round: 1)
        #expect(ghosts.invited.isEmpty && ghosts.dropped.isEmpty)
    }

    @Test("Updates: wrong shapes and non-finite or absurd values are problems; a good one is not")
    func updateProblems() throws {
        let (_, global, _) = try fleet()
        let budgets = [3]
        let slice = global.slice(budgets: budgets)
        let good = TrainingUpdate(
            factors: slice.factors, shared: slice.shared, sampleCount: 10, trainingLoss: 0.5,
            computeSeconds: 0.1)
        #expect(UpdateCheck.problem(with: good, budgets: budgets, global: global) == nil)
        // The same tensors against a larger budget: shapes differ.
        let problem = UpdateCheck.problem(with: good, budgets: [4], global: global)
        guard case .shapeMismatch(let got, let expected) = problem else {
            Issue.record("expected a shape mismatch, got \(String(describing: problem))")
            return
        }
        #expect(got[0] == [3, 10] && expected[0] == [4, 10])
        #expect(problem?.reason == .shapeMismatch)
        for bad: Float in [.nan, .infinity, -.infinity, 1e6, -2e7] {
            var update = good
            update.shared[0].scalars[0] = bad
            #expect(
                UpdateCheck.problem(with: update, budgets: budgets, global: global)
                    == .nonFiniteOrAbsurd, "\(bad)")
        }
        var large = good
        large.factors[0].up.scalars[0] = 999_999
        // Under the value bound; only the norm bound (lifted here) refuses it.
        #expect(
            UpdateCheck.problem(
                with: large, budgets: budgets, global: global, maximumNormRatio: .infinity) == nil)
        #expect(
            UpdateCheck.problem(with: large, budgets: budgets, global: global)?.reason
                == .updateNormTooLarge)
    }

    @Test(
        "A round that misses minimumUpdates: retry twice, then keep the model; skip; abort",
        arguments: [
            (Scenario.RoundFailurePolicy.retry, [RoundLogic.Outcome.retry, .retry, .keepModel]),
            (.skip, [.keepModel, .keepModel, .keepModel]),
            (.abort, [.abort, .abort, .abort]),
        ])
    func outcomes(policy: Scenario.RoundFailurePolicy, expected: [RoundLogic.Outcome]) {
        let short = (0..<3).map { attempt in
            RoundLogic.outcome(updates: 2, attempt: attempt, minimumUpdates: 3, policy: policy)
        }
        #expect(short == expected)
        #expect(
            RoundLogic.outcome(updates: 3, attempt: 0, minimumUpdates: 3, policy: policy)
                == .aggregate)
        // minimumUpdates below 1 still needs one update.
        #expect(
            RoundLogic.outcome(updates: 0, attempt: 2, minimumUpdates: 0, policy: policy)
                != .aggregate)
    }

    @Test("Selection: seeded per round and attempt; excluding a client leaves the others' draws")
    func selection() throws {
        let (scenario, _, clients) = try fleet([
            ("clientsPerRound", "3"), ("tiers[0].availability", "0.5"),
        ])
        func select(round: Int, attempt: Int = 0, excluding: Set<UInt32> = []) -> [UInt32] {
            RoundLogic(scenario: scenario).selection(
                clients: clients, excluding: { excluding.contains($0) }, round: round,
                attempt: attempt)
        }
        #expect(select(round: 5) == select(round: 5))
        #expect(select(round: 5).count == 3 && select(round: 5) == select(round: 5).sorted())
        let rounds = (1...20).map { select(round: $0) }
        #expect(Set(rounds.map { $0 }).count > 5, "selections should vary by round")
        #expect(Set((0..<3).map { select(round: 5, attempt: $0) }).count > 1)
        // Half the small tier is offline in a round, on average; the large tier always online.
        let small = rounds.joined().filter { $0 < 4 }.count
        let large = rounds.joined().filter { $0 >= 4 }.count
        #expect(small < large, "small \(small), large \(large)")
        // Excluded clients are never selected, and the rest of the fleet is drawn from the
        // same availability stream (the online set shrinks by exactly the excluded).
        for round in 1...20 {
            let without = select(round: round, excluding: [4, 5])
            #expect(!without.contains(4) && !without.contains(5))
        }
        let (everyone, _, _) = try fleet([("clientsPerRound", "8")])
        let all = RoundLogic(scenario: everyone).selection(
            clients: clients, excluding: { _ in false }, round: 3, attempt: 0)
        let allButTwo = RoundLogic(scenario: everyone).selection(
            clients: clients, excluding: { $0 == 1 || $0 == 6 }, round: 3, attempt: 0)
        #expect(allButTwo == all.filter { $0 != 1 && $0 != 6 })
    }

    @Test(
        "Selection draws what the standard library's shuffle drew (pinned results stay), in O(selected) after the availability draws"
    )
    func selectionMatchesTheEarlierAlgorithm() throws {
        // The earlier selection: availability draws in ID order, then
        // `online.shuffled(using:).prefix(target)`; every pinned final model depends on it.
        func earlier(
            _ clients: ClientTable, excluded: Set<UInt32>, scenario: Scenario, round: Int,
            attempt: Int
        ) -> [UInt32] {
            var generator = SeededGenerator.derived(
                seed: scenario.seed,
                stream: RandomStream.selection &+ UInt64(round) &+ UInt64(attempt) << 32)
            let online = clients.ids.filter { id in
                generator.nextUnitInterval() < scenario.tiers[clients[id]!.tierIndex].availability
            }.filter { !excluded.contains($0) }
            let target = min(
                online.count,
                Int((Double(scenario.clientsPerRound) * scenario.overSelection).rounded(.up)))
            return Array(online.shuffled(using: &generator).prefix(target)).sorted()
        }
        let base = try Scenario.parse(yaml: syntheticScenarioYAML)
        var generator = SeededGenerator(seed: 11)
        for trial in 0..<200 {
            let population = 1 + generator.nextIndex(below: 300)
            let perRound = 1 + generator.nextIndex(below: population)
            let scenario = try base.overriding([
                ("clients", "\(population)"), ("clientsPerRound", "\(perRound)"),
                ("minimumUpdates", "1"), ("tiers[0].availability", "0.\(3 + trial % 7)"),
                ("tiers[0].count", ""), ("tiers[1].count", ""), ("tiers[0].share", "0.5"),
                ("tiers[1].share", "0.5"),
            ])
            let clients = ClientTable(
                fleetSize: population,
                records: (0..<population).map { i in
                    ClientRecord(
                        id: UInt32(i), peer: PeerID(bytes: [1], channel: Array("\(i)".utf8)),
                        tierIndex: i % 2, sampleCount: 10, nonce: UInt64(i))
                })
            let excluded = Set(
                (0..<population).filter { _ in generator.nextIndex(below: 5) == 0 }
                    .map(UInt32.init))
            let round = 1 + trial
            #expect(
                RoundLogic(scenario: scenario).selection(
                    clients: clients, excluding: { excluded.contains($0) }, round: round,
                    attempt: trial % 3)
                    == earlier(
                        clients, excluded: excluded, scenario: scenario, round: round,
                        attempt: trial % 3), "trial \(trial)")
        }
    }

    @Test("Client table: lookups by peer and nonce follow re-registrations; iteration in ID order")
    func clientTable() {
        var table = ClientTable(fleetSize: 4)
        let worker = PeerID(bytes: [7])
        func record(_ id: UInt32, channel: String, nonce: UInt64) -> ClientRecord {
            ClientRecord(
                id: id, peer: worker.onChannel(Array(channel.utf8)), tierIndex: 0, sampleCount: 1,
                nonce: nonce)
        }
        table.insert(record(9, channel: "9", nonce: 90))
        table.insert(record(2, channel: "2", nonce: 20))
        table.insert(record(0, channel: "0", nonce: 1))
        #expect(table.count == 3 && table.ids == [0, 2, 9] && table.largestID == 9)
        #expect(table.id(of: worker.onChannel(Array("2".utf8))) == 2)
        #expect(table.id(of: worker) == nil && table.id(of: worker.onChannel(nil)) == nil)
        #expect(table.id(ofNonce: 20) == 2 && table[3] == nil && table[100] == nil)
        // Client 2 restarts behind another channel with a new nonce: the old keys are gone.
        table.insert(record(2, channel: "two", nonce: 21))
        #expect(table.count == 3)
        #expect(table.id(of: worker.onChannel(Array("2".utf8))) == nil)
        #expect(table.id(ofNonce: 20) == nil && table.id(ofNonce: 21) == 2)
        #expect(table[2]?.peer == worker.onChannel(Array("two".utf8)))
    }

    @Test(
        "Drawing a prefix equals the prefix of the standard library's shuffle; indices match Int.random"
    )
    func drawingPrefix() {
        var generator = SeededGenerator(seed: 5)
        for trial in 0..<300 {
            let count = generator.nextIndex(below: 40)
            let take = count == 0 ? 0 : generator.nextIndex(below: count + 1)
            var a = SeededGenerator(seed: UInt64(trial))
            var b = a
            let items = Array(0..<count)
            #expect(
                items.drawingPrefix(take, using: &a)
                    == Array(items.shuffled(using: &b).prefix(take)))
        }
        for bound in [1, 2, 3, 7, 1000, 1 << 31, Int.max] {
            var a = SeededGenerator(seed: UInt64(bound))
            var b = a
            for _ in 0..<200 {
                #expect(a.nextIndex(below: bound) == Int.random(in: 0..<bound, using: &b))
            }
        }
    }

    @Test("Shrinking cuts a layer's near-zero tail, masks it and clears its optimiser state")
    func shrinking() throws {
        let (scenario, _, _) = try fleet([("shrinking", "{threshold: 0.02, period: 1}")])
        var generator = SeededGenerator(seed: 4)
        // A layer large enough to be shrunk (≥ 10 000 weights): 60 → 200, rank 60, whose 20
        // leading components have similar norms (the last suffix holds ~1/20 of the layer's
        // importance, above the 2 % threshold) and whose other 40 are 1e-4 as large.
        let architecture = Architecture(
            name: "wide", inputShape: [60], classCount: 200,
            layers: [.lowRankDense(inputs: 60, outputs: 200, maxRank: 60)])
        var up = Tensor.randomNormal(shape: [60, 200], using: &generator)
        var down = Tensor.randomNormal(shape: [60, 60], using: &generator)
        for row in 20..<60 {
            for j in 0..<200 { up[row, j] *= 1e-4 }
            for j in 0..<60 { down[row, j] *= 1e-4 }
        }
        var global = Network(
            architecture: architecture, parameters: [up, down, Tensor(zeros: [200])],
            keptRanks: [60])
        var state = ServerOptimizerState(for: global.parameters)
        state.firstMoment[0].scalars = Array(repeating: 1, count: state.firstMoment[0].count)
        let cuts = RoundLogic(scenario: scenario).shrink(&global, serverState: &state)
        #expect(cuts.count == 1 && cuts[0].layer == 0 && cuts[0].from == 60)
        #expect(cuts[0].to == 20, "kept \(cuts[0].to)")
        #expect(global.keptRanks == [20])
        #expect(state.firstMoment[0].scalars[(20 * 200)...].allSatisfy { $0 == 0 })
        #expect(state.firstMoment[0].scalars[..<(20 * 200)].allSatisfy { $0 == 1 })
        // Nothing left to cut: a second pass changes nothing.
        #expect(RoundLogic(scenario: scenario).shrink(&global, serverState: &state).isEmpty)
    }

    @Test(
        "Moving average: the first model starts it, then ā ← d·ā + (1 − d)·w per entry; kept ranks follow the model"
    )
    func movingAverage() throws {
        let architecture = Architecture(
            name: "tiny", inputShape: [2], classCount: 2,
            layers: [.lowRankDense(inputs: 2, outputs: 2, maxRank: 2)])
        func network(_ values: [Float], kept: Int = 2) -> Network {
            Network(
                architecture: architecture,
                parameters: [
                    Tensor(shape: [2, 2], scalars: Array(values[0..<4])),
                    Tensor(shape: [2, 2], scalars: Array(values[4..<8])),
                    Tensor(shape: [2], scalars: Array(values[8..<10])),
                ], keptRanks: [kept])
        }
        let first = network((0..<10).map(Float.init))
        var averaged: Network?
        Deployment.average(&averaged, toward: first, decay: 0.75)
        #expect(averaged == first)
        let second = network(Array(repeating: 4, count: 10), kept: 1)
        Deployment.average(&averaged, toward: second, decay: 0.75)
        let expected = (0..<10).map { 0.75 * Float($0) + 0.25 * 4 }
        #expect(averaged?.parameters.flatMap(\.scalars) == expected)
        #expect(averaged?.keptRanks == [1])
        // A model of another architecture restarts the average.
        var renamed = architecture
        renamed.name = "tiny-2"
        let other = Network(
            architecture: renamed, parameters: first.parameters, keptRanks: first.keptRanks)
        Deployment.average(&averaged, toward: other, decay: 0.75)
        #expect(averaged == other)
    }

    @Test("Registration IDs: same process again, the requested one, or the lowest free one")
    func registrationIDs() throws {
        let (scenario, _, clients) = try fleet()
        func register(
            nonce: UInt64, requested: UInt32?, in table: ClientTable? = nil, bound: Int = 8
        ) -> UInt32? {
            let desk = RegistrationDesk(scenario: scenario, enrolment: nil, populationBound: bound)
            return desk.clientID(
                for: Registration(
                    tierName: "small", capability: 1, sampleCount: 10, instanceNonce: nonce,
                    requestedClientID: requested), clients: table ?? clients)
        }
        #expect(register(nonce: 3, requested: nil) == 3)  // client 3's process, again
        #expect(register(nonce: 3, requested: 6) == 3)
        #expect(register(nonce: 99, requested: 5) == 5)  // client 5, restarted
        // A requested ID is returned as asked; the machine refuses it outside the bound.
        #expect(register(nonce: 99, requested: 0xFFFF_FFFE) == 0xFFFF_FFFE)
        #expect(register(nonce: 99, requested: nil) == nil)  // the fleet is full
        #expect(register(nonce: 99, requested: nil, bound: 20) == 8)  // a newcomer, open run
        var grown = clients
        for id: UInt32 in [8, 9, 11] {
            grown.insert(
                ClientRecord(
                    id: id, peer: PeerID(bytes: [UInt8(id)]), tierIndex: 0, sampleCount: 1,
                    nonce: UInt64(id)))
        }
        #expect(register(nonce: 100, requested: nil, in: grown, bound: 20) == 10)  // the gap
        #expect(register(nonce: 100, requested: nil, in: grown, bound: 10) == nil)
        // A peer that took 0xFFFFFFFE (an older run's table) does not stop assignment.
        grown.insert(
            ClientRecord(
                id: 0xFFFF_FFFE, peer: PeerID(bytes: [13]), tierIndex: 0, sampleCount: 1,
                nonce: 13))
        #expect(register(nonce: 200, requested: nil, in: grown, bound: 20) == 10)
        // Fleet indices come free last: an empty 8-client table with no room above.
        let empty = ClientTable(fleetSize: 8)
        #expect(register(nonce: 1, requested: nil, in: empty, bound: 8) == 0)
        #expect(register(nonce: 1, requested: nil, in: empty, bound: 9) == 8)
    }
}

@Suite("Frozen convolutions on the client and at the coordinator")
struct FrozenConvolutionTests {
    @Test(
        "A client told to freeze the convolutions keeps them, trains the rest and returns them with no rows; only that shape passes"
    )
    func localTrainingAndShapeCheck() throws {
        let architecture = Architecture.make(.lenet, lowRank: true, factoredMinimumWeights: 10_000)
        var generator = SeededGenerator(seed: 3)
        let global = Network(architecture: architecture, using: &generator)
        let budgets = global.keptRanks.map { RankBudget.rank(fraction: 0.125, of: $0) }
        let slice = global.slice(budgets: budgets)
        let features = Tensor.randomNormal(shape: [8 * 784], using: &generator).scalars
        let samples = TrainingSamples(
            features: features, labels: (0..<8).map { Int32($0 % 10) }, featureCount: 784)
        func task(freezing: Bool) -> TrainingTask {
            TrainingTask(
                budgets: budgets.map(UInt32.init), factors: slice.factors, shared: slice.shared,
                localEpochs: 1, batchSize: 4, learningRate: 0.1, sampler: .unsampled, groupLasso: 0,
                seed: 1, freezeConvolutions: freezing)
        }
        let frozen = LocalTraining.run(
            task(freezing: true), architecture: architecture, samples: samples)
        let trained = LocalTraining.run(
            task(freezing: false), architecture: architecture, samples: samples)
        // conv1 and conv2 (weights and biases) come back empty; fc1, fc2 factors and the
        // shared tensors after the convolutions are the same shapes as sent, and trained.
        #expect(frozen.slice.shared.prefix(4).map(\.shape) == [[0, 25], [0], [0, 150], [0]])
        #expect(
            frozen.slice.shared.dropFirst(4).map(\.shape) == slice.shared.dropFirst(4).map(\.shape))
        #expect(frozen.slice.factors.map(\.up.shape) == slice.factors.map(\.up.shape))
        #expect(frozen.slice.factors != slice.factors)
        #expect(trained.slice.shared[0] != slice.shared[0])
        let update = TrainingUpdate(
            factors: frozen.slice.factors, shared: frozen.slice.shared, sampleCount: 8,
            trainingLoss: Float(frozen.loss), computeSeconds: 0)
        #expect(
            UpdateCheck.problem(with: update, budgets: budgets, global: global, frozenLayers: 4)
                == nil)
        #expect(
            UpdateCheck.problem(with: update, budgets: budgets, global: global)?.reason
                == .shapeMismatch)
        let full = TrainingUpdate(
            factors: trained.slice.factors, shared: trained.slice.shared, sampleCount: 8,
            trainingLoss: 0, computeSeconds: 0)
        #expect(
            UpdateCheck.problem(with: full, budgets: budgets, global: global, frozenLayers: 4)?
                .reason
                == .shapeMismatch)
        // The cost model: the frozen client trains a third of the full tier's FLOPs or less.
        let low = global.trainingStepFLOPs(batch: 1, ranks: budgets, frozenLayers: 4)
        let top = global.trainingStepFLOPs(batch: 1)
        #expect(low < top / 3)
        #expect(global.trainingStepFLOPs(batch: 1, ranks: budgets) > 0.8 * top)
    }
}
