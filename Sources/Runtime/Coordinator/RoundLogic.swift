import Federation
import Fleet
import LowRank
import Tensors

/// The pure decisions of a round, apart from the coordinator's sockets, clock and files:
/// which selected clients are invited, whether an update may be aggregated, and what a round
/// that missed its minimum does next. Unit-tested without a transport.
enum RoundLogic {
    /// Attempts a `retry` round gets beyond the first.
    static let maximumRetries = 2

    /// One invited client: its virtual round time, the per-layer budgets it trains and the
    /// TRAIN task it is sent (built once, for both the time of its download and the send).
    struct Invitation: Equatable {
        let client: UInt32
        let time: ClientRoundTime
        let budgets: [Int]
        let task: TrainingTask
    }

    /// The ID a registering client gets: its own again for a repeated REGISTER from the same
    /// process (same nonce), the one it asks for (a fleet member, or a restarted one, under
    /// its fleet index), or else the lowest free ID below `populationBound` (above the fleet's
    /// indices first: see `ClientTable.lowestFreeID(below:)`).
    ///
    /// A requested ID is returned as asked: the caller refuses one at or above the bound
    /// (`id_out_of_range`). `nil` when every ID below the bound is taken.
    static func clientID(
        for registration: Registration, clients: ClientTable, populationBound: Int
    ) -> UInt32? {
        if let existing = clients.id(ofNonce: registration.instanceNonce) { return existing }
        if let requested = registration.requestedClientID { return requested }
        return clients.lowestFreeID(below: populationBound)
    }

    /// The clients invited to attempt `attempt` of round `round`.
    ///
    /// Each registered client, in ID order, is online with its tier's availability (one
    /// seeded draw per client, so the stream does not depend on who is `excluded`); excluded
    /// clients are then left out, and `⌈clientsPerRound · overSelection⌉` of the rest are
    /// drawn uniformly. Depends only on the seed, the round, the attempt and the fleet.
    ///
    /// - Complexity: one generator step per registered client (its availability draw, in a
    ///   loop with no allocation but the online list), then O(selected): the draw of `target`
    ///   clients is the first `target` steps of a Fisher–Yates shuffle of the online list.
    static func selection(
        clients: ClientTable, excluding excluded: (UInt32) -> Bool,
        scenario: Scenario, round: Int, attempt: Int
    ) -> [UInt32] {
        var generator = SeededGenerator.derived(
            seed: scenario.seed,
            stream: RandomStream.selection &+ UInt64(round) &+ UInt64(attempt) << 32)
        let availability = scenario.tiers.map(\.availability)
        var online: [UInt32] = []
        online.reserveCapacity(clients.count)
        clients.forEach { client in
            if generator.nextUnitInterval() < availability[client.tierIndex], !excluded(client.id) {
                online.append(client.id)
            }
        }
        let target = min(
            online.count,
            Int((Double(scenario.clientsPerRound) * scenario.overSelection).rounded(.up)))
        return online.drawingPrefix(target, using: &generator).sorted()
    }

    /// Server-side progressive shrinking: each LoD layer large enough to matter (as in
    /// central training) keeps the components whose suffix norm passes the scenario's
    /// relative threshold; the cut components are masked and their optimiser state reset.
    /// Returns the layers cut, with their kept ranks before and after.
    static func shrink(
        _ global: inout Network, serverState: inout ServerOptimizerState, scenario: Scenario
    ) -> [(layer: Int, from: Int, to: Int)] {
        var cuts: [(layer: Int, from: Int, to: Int)] = []
        let layout = ParameterLayout(global.architecture)
        for (l, layerIndex) in global.architecture.lowRankLayerIndices.enumerated() {
            guard let (outputs, inputs) = global.architecture.layers[layerIndex].matrixShape,
                outputs * inputs >= TrainingConfiguration().shrinkMinimumEntries
            else { continue }
            let (up, down) = layout.factorIndices[l]
            let kept = global.keptRanks[l]
            let newRank = GroupLasso.keptRank(
                up: global.parameters[up], down: global.parameters[down], kept: kept,
                threshold: scenario.shrinking.threshold, relative: true)
            guard newRank < kept else { continue }
            global.mask(lowRankLayer: l, toRank: newRank)
            serverState.resetRows(ofTensor: up, from: newRank)
            serverState.resetRows(ofTensor: down, from: newRank)
            cuts.append((l, kept, newRank))
        }
        return cuts
    }

    /// Moves the deployed average toward the server's model after a round.
    ///
    /// `ā ← d·ā + (1 − d)·w` (`evaluation.averageDecay`), tensor by tensor, in double
    /// precision per entry; the first round's model starts the average. Components the round
    /// opened or shrinking cut must already be cleared in both (`clear`), so the average
    /// never holds a component the server's model does not.
    static func average(_ averaged: inout Network?, toward global: Network, decay: Double) {
        guard var current = averaged, current.architecture == global.architecture else {
            averaged = global
            return
        }
        let (keep, take) = (decay, 1 - decay)
        for index in current.parameters.indices {
            global.parameters[index].scalars.withUnsafeBufferPointer { model in
                current.parameters[index].scalars.withUnsafeMutableBufferPointer { mean in
                    for j in mean.indices {
                        mean[j] = Float(keep * Double(mean[j]) + take * Double(model[j]))
                    }
                }
            }
        }
        current.keptRanks = global.keptRanks
        averaged = current
    }

    /// Per-layer budgets at rank fraction `fraction` (a tier's, in a round: see
    /// `Scenario.rankFraction(of:round:)`) of the global model's kept ranks: `⌈p · r_l⌉`,
    /// none for the dense baseline.
    static func budgets(fraction: Double, keptRanks: [Int], lowRank: Bool) -> [Int] {
        lowRank ? keptRanks.map { RankBudget.rank(fraction: fraction, of: $0) } : []
    }

    /// For each tier (its per-layer `budgets`), the index of the tier budget it deploys under
    /// `evaluation.deploy: bestValidated`: of the budgets that fit within its own (every
    /// layer's rank at most its own), the one with the highest validation accuracy; a tie
    /// goes to the larger budget (more components in all), then to the tier's own.
    static func bestValidatedBudgets(budgets: [[Int]], validationAccuracy: [Double]) -> [Int] {
        precondition(budgets.count == validationAccuracy.count, "one accuracy per budget")
        return budgets.indices.map { tier in
            var best = tier
            for candidate in budgets.indices where candidate != tier {
                let fits = zip(budgets[candidate], budgets[tier]).allSatisfy { $0 <= $1 }
                guard fits else { continue }
                let (accuracy, bestAccuracy) = (
                    validationAccuracy[candidate], validationAccuracy[best]
                )
                let size = budgets[candidate].reduce(0, +)
                let bestSize = budgets[best].reduce(0, +)
                if accuracy > bestAccuracy
                    || (accuracy == bestAccuracy && size > bestSize)
                {
                    best = candidate
                }
            }
            return best
        }
    }

    /// `bestValidatedBudgets` with evidence (`evaluation.deploySignificance` `z` > 0).
    ///
    /// Each tier starts from the smallest tier budget within its own and moves to each larger one
    /// in turn only if, on the validation images where exactly one of the two is right, the
    /// larger is right `w` times and the current one `l` times with `w > l` and
    /// `w − l ≥ z·√(w + l)`. `validationCorrect[i]` holds budget `i`'s per-image results.
    static func bestValidatedBudgets(
        budgets: [[Int]], validationCorrect: [[Bool]], significance z: Double
    ) -> [Int] {
        precondition(budgets.count == validationCorrect.count, "one result row per budget")
        return budgets.indices.map { tier in
            let fitting = budgets.indices.filter { candidate in
                zip(budgets[candidate], budgets[tier]).allSatisfy { $0 <= $1 }
            }.sorted {
                (budgets[$0].reduce(0, +), $0 == tier ? 1 : 0, $0)
                    < (budgets[$1].reduce(0, +), $1 == tier ? 1 : 0, $1)
            }
            var current = fitting[0]
            for candidate in fitting.dropFirst() {
                guard budgets[candidate] != budgets[current] else {
                    // The same budget (tiers capped alike): the tier's own, as without evidence.
                    if candidate == tier { current = candidate }
                    continue
                }
                var (wins, losses) = (0, 0)
                for (larger, smaller) in zip(
                    validationCorrect[candidate], validationCorrect[current])
                where larger != smaller {
                    if larger { wins += 1 } else { losses += 1 }
                }
                if wins > losses && Double(wins - losses) >= z * Double(wins + losses).squareRoot()
                {
                    current = candidate
                }
            }
            return current
        }
    }

    /// Budget growth after round `round`: when the next round's cap is larger, the components
    /// it opens (between the two caps' ranks of each LoD layer) get a zero output factor and
    /// fresh server optimiser state, so the model computes the same function as before and
    /// the new components start learning from there. Returns the layers opened, with the
    /// ranges of components.
    static func openGrownBudgets(
        _ global: inout Network, serverState: inout ServerOptimizerState, scenario: Scenario,
        after round: Int
    ) -> [(layer: Int, components: Range<Int>)] {
        guard scenario.isLowRank, let growth = scenario.training.budgetGrowth else { return [] }
        let (now, next) = (growth.cap(atRound: round), growth.cap(atRound: round + 1))
        guard next > now else { return [] }
        let layout = ParameterLayout(global.architecture)
        var opened: [(layer: Int, components: Range<Int>)] = []
        for l in 0..<global.lowRankLayerCount {
            let kept = global.keptRanks[l]
            let from = RankBudget.rank(fraction: now, of: kept)
            let to = RankBudget.rank(fraction: next, of: kept)
            guard to > from else { continue }
            global.zeroOutputFactor(lowRankLayer: l, rows: from..<to)
            let (up, down) = layout.factorIndices[l]
            serverState.resetRows(ofTensor: up, from: from)
            serverState.resetRows(ofTensor: down, from: from)
            opened.append((l, from..<to))
        }
        return opened
    }

    /// Plans the selected clients' round on the virtual clock.
    ///
    /// Each client's time is the FLOPs of its local training at its budget over its tier's
    /// GFLOP/s plus both transfers of its slice. Clients that would miss the deadline are
    /// dropped before anything is sent (FedAvg semantics); of the rest, the first
    /// `clientsPerRound` to finish are invited (over-selection), ties broken by client ID.
    static func invitations(
        selected: [UInt32], clients: ClientTable, scenario: Scenario,
        global: Network, round: Int
    ) -> (invited: [Invitation], dropped: [UInt32]) {
        var planned: [Invitation] = []
        var dropped: [UInt32] = []
        for id in selected {
            guard let client = clients[id] else { continue }
            let tier = scenario.tiers[client.tierIndex]
            let fraction = scenario.rankFraction(of: tier, round: round)
            let budgets = budgets(
                fraction: fraction, keptRanks: global.keptRanks, lowRank: scenario.isLowRank)
            let slice = global.slice(budgets: budgets)
            let task = CoordinatorMachine.task(
                for: slice, scenario: scenario, round: round, client: id, tierFraction: fraction,
                freezeConvolutions: scenario.isLowRank && tier.freezeConvolutions)
            let frozen = scenario.frozenLayers(of: tier, architecture: global.architecture)
            let returned = frozen > 0 ? global.slice(budgets: budgets, frozenLayers: frozen) : slice
            let uploadBytes = WireCodec.encodedSize(
                of: .update(
                    TrainingUpdate(
                        factors: returned.factors, shared: returned.shared, sampleCount: 0,
                        trainingLoss: 0, computeSeconds: 0)))
            let batchSize = scenario.training.batchSize
            let steps =
                scenario.training.localEpochs * ((client.sampleCount + batchSize - 1) / batchSize)
            let flops =
                Double(steps)
                * global.trainingStepFLOPs(
                    batch: batchSize, ranks: budgets.isEmpty ? nil : budgets,
                    frozenLayers: frozen)
            let time = ClientRoundTime(
                tier: tier, trainingFLOPs: flops,
                downloadBytes: WireCodec.encodedSize(of: .train(task)), uploadBytes: uploadBytes,
                gflops: client.capability(tier: tier))
            if scenario.meetsDeadline(time) {
                planned.append(Invitation(client: id, time: time, budgets: budgets, task: task))
            } else {
                dropped.append(id)
            }
        }
        planned.sort { ($0.time.totalSeconds, $0.client) < ($1.time.totalSeconds, $1.client) }
        let keep = min(planned.count, scenario.clientsPerRound)
        return (Array(planned.prefix(keep)), dropped + planned.dropFirst(keep).map(\.client))
    }

    /// Why an update of the expected round from an invited client is not aggregated.
    enum UpdateProblem: Equatable {
        /// Its tensor shapes are not those of the budget the client was given.
        case shapeMismatch(got: [[Int]], expected: [[Int]])
        /// It holds NaN, ±Inf or a value of magnitude 1e6 or more.
        case nonFiniteOrAbsurd
        /// Its `trainingLoss` is NaN, ±Inf, negative or at least 1e6.
        case badTrainingLoss(Float)
        /// Its `computeSeconds` is NaN, ±Inf, negative or at least 1e6 (11 days).
        case badComputeSeconds(Float)
        /// Tensor `tensor` (factors' up, down, then shared, in slice order) moved from the
        /// global slice by `ratio` times the slice's (floored) norm, beyond `bound`.
        case normTooLarge(tensor: Int, ratio: Double, bound: Double)

        /// The reason counted in `rejected` (metrics and summary).
        var reason: RejectionReason {
            switch self {
            case .shapeMismatch: .shapeMismatch
            case .nonFiniteOrAbsurd: .nonFiniteOrAbsurd
            case .badTrainingLoss: .badTrainingLoss
            case .badComputeSeconds: .badComputeSeconds
            case .normTooLarge: .updateNormTooLarge
            }
        }

        /// What the error reply tells the client.
        var message: String {
            switch self {
            case .shapeMismatch(let got, let expected):
                "update shapes \(got) differ from the budget's \(expected)"
            case .nonFiniteOrAbsurd: "update holds NaN, Inf or values beyond 1e6"
            case .badTrainingLoss(let loss):
                "trainingLoss \(loss) is not a finite number in [0, 1e6)"
            case .badComputeSeconds(let seconds):
                "computeSeconds \(seconds) is not a finite number in [0, 1e6)"
            case .normTooLarge(let tensor, let ratio, let bound):
                "tensor \(tensor) of the update moved \(ratio) times its global norm, above robustness.maximumUpdateNormRatio \(bound)"
            }
        }
    }

    /// Bound on the update's scalars `trainingLoss` and `computeSeconds` (exclusive).
    static let scalarBound: Float = 1e6

    /// Checks an update's shapes against `budgets` (the layers before `frozenLayers` with
    /// no rows), its values and scalars for sanity, and the size of its change from the
    /// global model against `maximumNormRatio` (see ``updateNormRatio(of:budgets:global:frozenLayers:)``).
    ///
    /// `sampleCount` is an unsigned integer the coordinator does not read (an update weighs
    /// the count fixed at registration), so no value of it can do harm.
    static func problem(
        with update: TrainingUpdate, budgets: [Int], global: Network, frozenLayers: Int = 0,
        maximumNormRatio: Double = Scenario.Robustness.defaultMaximumUpdateNormRatio
    ) -> UpdateProblem? {
        let expected = global.sliceShapes(budgets: budgets, frozenLayers: frozenLayers)
        let got =
            update.factors.flatMap { [$0.up.shape, $0.down.shape] } + update.shared.map(\.shape)
        guard got == expected else { return .shapeMismatch(got: got, expected: expected) }
        let tensors = update.factors.flatMap { [$0.up, $0.down] } + update.shared
        guard tensors.allSatisfy({ $0.scalars.allSatisfy { $0.isFinite && abs($0) < 1e6 } })
        else { return .nonFiniteOrAbsurd }
        let loss = update.trainingLoss
        guard loss.isFinite, loss >= 0, loss < scalarBound else { return .badTrainingLoss(loss) }
        let seconds = update.computeSeconds
        guard seconds.isFinite, seconds >= 0, seconds < scalarBound else {
            return .badComputeSeconds(seconds)
        }
        let largest = updateNormRatio(
            of: update, budgets: budgets, global: global, frozenLayers: frozenLayers)
        if let largest, largest.ratio > maximumNormRatio {
            return .normTooLarge(
                tensor: largest.tensor, ratio: largest.ratio, bound: maximumNormRatio)
        }
        return nil
    }

    /// The smallest norm per entry (RMS) a global tensor counts with in
    /// ``updateNormRatio(of:budgets:global:frozenLayers:)``: a tensor near zero (a bias at
    /// its initial 0, a factor's newly opened rows) may still move by this much per entry.
    static let normFloorPerEntry = 0.01

    /// The largest, over the update's tensors, of `‖x − g‖ / max(‖g‖, 0.01·√n)`: how far the
    /// tensor `x` moved from the global model's same slice `g` (the slice the client was
    /// sent, `n` entries), relative to that slice's size; with the tensor's index in slice
    /// order (factors' up and down, then shared). `nil` when every tensor is empty. The
    /// update's shapes must be those of `budgets`.
    static func updateNormRatio(
        of update: TrainingUpdate, budgets: [Int], global: Network, frozenLayers: Int = 0
    ) -> (tensor: Int, ratio: Double)? {
        let sent = global.slice(budgets: budgets, frozenLayers: frozenLayers)
        let globals = sent.factors.flatMap { [$0.up, $0.down] } + sent.shared
        let updates = update.factors.flatMap { [$0.up, $0.down] } + update.shared
        var largest: (tensor: Int, ratio: Double)?
        for (index, (x, g)) in zip(updates, globals).enumerated() where x.count > 0 {
            var (change, size) = (0.0, 0.0)
            x.scalars.withUnsafeBufferPointer { x in
                g.scalars.withUnsafeBufferPointer { g in
                    for j in 0..<x.count {
                        let (a, b) = (Double(x[j]), Double(g[j]))
                        change += (a - b) * (a - b)
                        size += b * b
                    }
                }
            }
            let floor = normFloorPerEntry * Double(x.count).squareRoot()
            let ratio = change.squareRoot() / max(size.squareRoot(), floor)
            if ratio > largest?.ratio ?? -1 { largest = (index, ratio) }
        }
        return largest
    }

    /// Why a model may not stand: `non_finite_model` when a parameter is NaN or ±∞.
    static func nonFiniteModel(_ network: Network) -> String? {
        network.parameters.allSatisfy { $0.scalars.allSatisfy(\.isFinite) }
            ? nil : "non_finite_model"
    }

    /// Why an evaluation may not stand: `non_finite_evaluation` when a tier's accuracy or
    /// loss is NaN or ±∞.
    static func nonFiniteEvaluation(
        accuracy: [String: Double]?, loss: [String: Double]?
    ) -> String? {
        let values = Array((accuracy ?? [:]).values) + Array((loss ?? [:]).values)
        return values.allSatisfy(\.isFinite) ? nil : "non_finite_evaluation"
    }

    /// What a round does after an attempt that collected `updates` updates.
    enum Outcome: Equatable {
        /// Enough updates: aggregate them.
        case aggregate
        /// Too few, policy `retry` with attempts left: select again.
        case retry
        /// Too few: the global model stays as it is (policy `skip`, or `retry` exhausted).
        case keepModel
        /// Too few, policy `abort`: the run stops with an error.
        case abort
    }

    /// The outcome of attempt `attempt` (0-based) of a round.
    static func outcome(
        updates: Int, attempt: Int, minimumUpdates: Int, policy: Scenario.RoundFailurePolicy
    ) -> Outcome {
        if updates >= max(minimumUpdates, 1) { return .aggregate }
        switch policy {
        case .retry: return attempt < maximumRetries ? .retry : .keepModel
        case .skip: return .keepModel
        case .abort: return .abort
        }
    }
}
