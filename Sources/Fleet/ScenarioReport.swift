import Foundation

/// The shape of one model layer as the wire sees it; supplied by the model code.
///
/// A conv layer is its `outputs × (inputs · k · k)` matrix: pass `inputs = c_in · k · k`.
public struct LayerShape: Sendable, Equatable, Hashable {
    /// Layer name for tables: `conv1`, `fc2`.
    public var name: String
    /// m: rows of the weight matrix (output features or channels).
    public var outputs: Int
    /// n: columns of the weight matrix (input features, or c_in · k · k).
    public var inputs: Int
    /// Whether the layer is factored as U Vᵀ (sent as column prefixes) or dense.
    public var isLowRank: Bool
    /// Current global rank r_l (after shrinking); ignored for dense layers.
    public var rank: Int
    /// Parameters sent whole to every client (bias, normalisation), as one tensor if > 0.
    public var sharedParameterCount: Int
    /// Whether the layer is a convolution (or comes before the last one): a tier with
    /// `freezeConvolutions` receives it but sends it back with no rows.
    public var isConvolution = false

    public init(
        name: String, outputs: Int, inputs: Int, isLowRank: Bool, rank: Int,
        sharedParameterCount: Int
    ) {
        self.name = name
        self.outputs = outputs
        self.inputs = inputs
        self.isLowRank = isLowRank
        self.rank = rank
        self.sharedParameterCount = sharedParameterCount
    }

    /// Parameters of the dense layer: `outputs · inputs + sharedParameterCount`.
    public var denseParameterCount: Int { outputs * inputs + sharedParameterCount }
}

/// Bytes a message costs beyond its float32 payload: framing, header, tensor descriptors.
///
/// The wire codec defines the real values; a message carrying `t` tensors costs
/// `perMessage + perTensor · t` bytes on top of `4 ·` its parameters.
public struct MessageOverhead: Sendable, Equatable, Hashable {
    public var perMessage: Int
    public var perTensor: Int

    public init(perMessage: Int, perTensor: Int) {
        self.perMessage = perMessage
        self.perTensor = perTensor
    }

    /// Payload only.
    public static let none = MessageOverhead(perMessage: 0, perTensor: 0)

    /// Overhead of one message with `tensorCount` tensors.
    public func bytes(tensorCount: Int) -> Int { perMessage + perTensor * tensorCount }
}

/// What one client moves in one round: the model down, the same shapes up (frozen
/// convolutions up with no rows).
public struct Traffic: Sendable, Equatable, Hashable {
    /// Float32 values downloaded.
    public let parameters: Int
    /// Tensors in each message (U and V slices, shared tensors, dense matrices).
    public let tensors: Int
    /// Bytes of the download message: `4 · parameters` plus overhead.
    public let downloadBytes: Int
    /// Bytes of the upload message: the download's, less the frozen layers' values.
    public let uploadBytes: Int

    /// Download plus upload.
    public var bytesPerRound: Int { downloadBytes + uploadBytes }

    init(parameters: Int, tensors: Int, frozenParameters: Int = 0, overhead: MessageOverhead) {
        self.parameters = parameters
        self.tensors = tensors
        let message = 4 * parameters + overhead.bytes(tensorCount: tensors)
        self.downloadBytes = message
        self.uploadBytes = message - 4 * frozenParameters
    }
}

/// One tier's compute: what a client trains and what the tier deploys; supplied by the model
/// code (the model at the tier's budget, or its width slice).
public struct TierCompute: Sendable, Equatable, Hashable {
    /// FLOPs of one training step per sample (forward and backward) at the tier's budget.
    public var trainingFLOPsPerSample: Double
    /// Multiply-adds of one inference of the model the tier deploys.
    public var deployedMACs: Int

    public init(trainingFLOPsPerSample: Double, deployedMACs: Int) {
        self.trainingFLOPsPerSample = trainingFLOPsPerSample
        self.deployedMACs = deployedMACs
    }
}

/// One tier's budgets and traffic.
public struct TierTraffic: Sendable, Equatable, Hashable {
    /// The tier as in the scenario.
    public let tier: Scenario.Tier
    /// Clients the fleet gives the tier.
    public let clients: Int
    /// Per layer, in layer order: k_l = ceil(p · r_l) for a low-rank layer, `nil` for a layer
    /// sent dense (a dense layer, or every layer under `denseFedAvg`).
    public let budgets: [Int?]
    /// Under a width strategy, the weight layers of the tier's slice (all sent dense).
    public let widthLayers: [LayerShape]?
    /// Bytes per round of one client of this tier.
    public let traffic: Traffic
    /// `traffic.bytesPerRound` over dense FedAvg's.
    public let ratioToDense: Double
    /// Seconds to download at the downlink, upload at the uplink, plus one latency each way.
    public let transferSeconds: Double
}

/// Per-tier budgets and bytes per round for a scenario and a model's layer shapes: what
/// `maestro scenario show` prints.
///
/// Pure arithmetic on value inputs. Per tier with rank fraction p, a low-rank layer sends
/// k_l = ``Scenario/Tier/keptRank(outOf:)`` columns of U and V, `k_l · (m + n)` values,
/// plus its shared parameters; a dense layer sends `m · n` plus shared. Dense FedAvg sends
/// every layer dense. Downloads and uploads have the same shapes (docs/spec.md#federation),
/// except that a tier with `freezeConvolutions` sends its convolutions back with no rows.
public struct ScenarioReport: Sendable, Equatable {
    public let scenario: Scenario
    public let layers: [LayerShape]
    public let overhead: MessageOverhead
    /// One entry per tier, in scenario order.
    public let tiers: [TierTraffic]
    /// Dense FedAvg on the same model, per client.
    public let dense: Traffic
    /// Expected bytes of one round: `clientsPerRound · Σ_t (n_t / N) · bytes_t`.
    ///
    /// Clients are drawn by fleet share; over-selection, availability and deadline drops are
    /// not modelled.
    public let expectedBytesPerRound: Double
    /// Dense FedAvg with the same clients per round: `clientsPerRound · dense.bytesPerRound`.
    public let expectedDenseBytesPerRound: Double

    /// `expectedBytesPerRound / expectedDenseBytesPerRound`.
    public var ratioToDense: Double { expectedBytesPerRound / expectedDenseBytesPerRound }
    /// The early rounds of `training.budgetGrowth`, each with the expected bytes of one of
    /// its rounds (every tier at most the phase's cap); empty without budget growth.
    public let cappedPhases: [CappedPhase]

    /// Rounds `rounds` train every tier at most `cap` of the ranks.
    public struct CappedPhase: Sendable, Equatable {
        public let rounds: ClosedRange<Int>
        public let cap: Double
        public let expectedBytesPerRound: Double

        public init(rounds: ClosedRange<Int>, cap: Double, expectedBytesPerRound: Double) {
            self.rounds = rounds
            self.cap = cap
            self.expectedBytesPerRound = expectedBytesPerRound
        }
    }

    /// Per tier, in scenario order, its compute (empty: not printed).
    public let compute: [TierCompute]

    /// The report of `scenario` on a model of weight layers `layers`.
    ///
    /// Under a width strategy, `widthLayers` holds per tier (in scenario order) the weight
    /// layers of the slice its clients are sent: each tier's traffic is that slice's, sent
    /// dense. `compute` holds per tier the training FLOPs and deployed MACs to print (none:
    /// not printed).
    public init(
        scenario: Scenario, layers: [LayerShape], overhead: MessageOverhead = .none,
        widthLayers: [[LayerShape]]? = nil, compute: [TierCompute] = []
    ) {
        self.scenario = scenario
        self.layers = layers
        self.overhead = overhead
        self.compute = compute
        let dense = Self.traffic(
            layers: layers, budgets: layers.map { _ in nil }, overhead: overhead)
        self.dense = dense
        let sizes = scenario.clientsPerTier
        /// A tier's traffic with its fraction capped at `cap`.
        func traffic(_ tier: Scenario.Tier, cap: Double) -> (budgets: [Int?], traffic: Traffic) {
            if let widthLayers, let index = scenario.tiers.firstIndex(of: tier) {
                let sliced = widthLayers[index]
                return (
                    layers.map { _ in nil },
                    Self.traffic(
                        layers: sliced, budgets: sliced.map { _ in nil }, overhead: overhead)
                )
            }
            let budgets: [Int?] = layers.map { layer in
                guard layer.isLowRank, scenario.model.strategy.usesLoDFactors else { return nil }
                return tier.keptRank(outOf: layer.rank, cap: cap)
            }
            let freezes = tier.freezeConvolutions && scenario.model.strategy.usesLoDFactors
            return (
                budgets,
                Self.traffic(
                    layers: layers, budgets: budgets, freezesConvolutions: freezes,
                    overhead: overhead)
            )
        }
        /// Expected bytes of a round whose tiers are capped at `cap`.
        func expected(cap: Double) -> Double {
            let fleetBytes = zip(scenario.tiers, sizes).reduce(0) {
                $0 + $1.1 * traffic($1.0, cap: cap).traffic.bytesPerRound
            }
            return Double(scenario.clientsPerRound) * Double(fleetBytes) / Double(scenario.clients)
        }
        self.tiers = zip(scenario.tiers, sizes).enumerated().map { index, pair in
            let (tier, clients) = pair
            let (budgets, traffic) = traffic(tier, cap: 1)
            let transfer =
                Double(traffic.downloadBytes) * 8 / (tier.downlinkMbps * 1e6)
                + Double(traffic.uploadBytes) * 8 / (tier.uplinkMbps * 1e6) + 2 * tier.latencyMs
                / 1000
            return TierTraffic(
                tier: tier, clients: clients, budgets: budgets,
                widthLayers: widthLayers?[index], traffic: traffic,
                ratioToDense: Double(traffic.bytesPerRound) / Double(max(1, dense.bytesPerRound)),
                transferSeconds: transfer)
        }
        self.expectedBytesPerRound = expected(cap: 1)
        let growth = scenario.training.budgetGrowth
        self.cappedPhases =
            scenario.model.strategy.usesLoDFactors
            ? (growth.map { growth in
                zip(growth.caps, growth.until).enumerated().map { index, phase in
                    CappedPhase(
                        rounds: (index == 0 ? 1 : growth.until[index - 1] + 1)...phase.1,
                        cap: phase.0, expectedBytesPerRound: expected(cap: phase.0))
                }
            } ?? []) : []
        self.expectedDenseBytesPerRound = Double(scenario.clientsPerRound * dense.bytesPerRound)
    }

    static func traffic(
        layers: [LayerShape], budgets: [Int?], freezesConvolutions: Bool = false,
        overhead: MessageOverhead
    ) -> Traffic {
        var parameters = 0
        var tensors = 0
        var frozen = 0
        for (layer, budget) in zip(layers, budgets) {
            let before = parameters
            if let budget {
                parameters += budget * (layer.outputs + layer.inputs)
                tensors += 2
            } else {
                parameters += layer.outputs * layer.inputs
                tensors += 1
            }
            parameters += layer.sharedParameterCount
            tensors += layer.sharedParameterCount > 0 ? 1 : 0
            if freezesConvolutions && layer.isConvolution { frozen += parameters - before }
        }
        return Traffic(
            parameters: parameters, tensors: tensors, frozenParameters: frozen, overhead: overhead)
    }

    // MARK: Rendering

    /// Text tables: the fleet, each tier's budget (or width slice) per layer, bytes per round
    /// per tier against dense FedAvg, each tier's compute when given; then the expected
    /// traffic of a round.
    public func render() -> String {
        var out: [String] = []
        out.append(
            "Scenario \(scenario.name): \(datasetSummary), \(scenario.model.architecture.summary), "
                + "\(scenario.model.strategy.rawValue)")
        var line =
            "\(scenario.clients) clients, \(scenario.clientsPerRound) per round, "
            + "\(scenario.rounds) rounds"
        if let deadline = scenario.deadlineSeconds { line += ", deadline \(format(deadline)) s" }
        out.append(line)
        if let distillation = scenario.training.widthDistillation {
            out.append("Self-distillation over widths: \(distillation.summary)")
        }

        out.append("")
        out.append("Fleet")
        var fleet = TextTable(
            header: [
                "tier", "clients", "indices", "p", "GFLOP/s", "up Mbit/s", "down Mbit/s",
                "latency ms", "availability",
            ],
            rightAligned: [false, true, false, true, true, true, true, true, true])
        for (tier, range) in zip(tiers, scenario.tierRanges) {
            fleet.append([
                tier.tier.name, "\(tier.clients)",
                range.isEmpty ? "-" : "\(range.lowerBound)-\(range.upperBound - 1)",
                format(tier.tier.rankFraction), format(tier.tier.gflops),
                format(tier.tier.uplinkMbps),
                format(tier.tier.downlinkMbps), format(tier.tier.latencyMs),
                String(format: "%.2f", tier.tier.availability),
            ])
        }
        out += fleet.lines()

        out.append("")
        if tiers.contains(where: { $0.widthLayers != nil }) {
            out += widthTable()
        } else {
            out += budgetTable()
        }

        out.append("")
        out.append(
            "Bytes per round per client (float32 down + up; overhead \(overhead.perMessage) B/message "
                + "+ \(overhead.perTensor) B/tensor)")
        var bytes = TextTable(
            header: [
                "tier", "parameters", "download B", "upload B", "total B", "vs dense", "transfer s",
            ],
            rightAligned: [false, true, true, true, true, true, true])
        for tier in tiers {
            bytes.append([
                tier.tier.name, grouped(tier.traffic.parameters),
                grouped(tier.traffic.downloadBytes),
                grouped(tier.traffic.uploadBytes), grouped(tier.traffic.bytesPerRound),
                String(format: "%.3f", tier.ratioToDense),
                String(format: "%.2f", tier.transferSeconds),
            ])
        }
        bytes.append([
            "dense FedAvg", grouped(dense.parameters), grouped(dense.downloadBytes),
            grouped(dense.uploadBytes), grouped(dense.bytesPerRound), "1.000", "",
        ])
        out += bytes.lines()
        let frozen = tiers.filter(\.tier.freezeConvolutions).map(\.tier.name)
        if !frozen.isEmpty, scenario.model.strategy.usesLoDFactors {
            out.append(
                "Convolutions frozen on \(frozen.joined(separator: ", ")): run forward only, "
                    + "sent back with no rows")
        }

        if !compute.isEmpty {
            out.append("")
            out += computeTable()
        }

        out.append("")
        out.append(
            "Expected per round (\(scenario.clientsPerRound) clients by fleet share): "
                + "\(grouped(Int(expectedBytesPerRound.rounded()))) B vs dense FedAvg "
                + "\(grouped(Int(expectedDenseBytesPerRound.rounded()))) B "
                + "(\(String(format: "%.3f", ratioToDense)))")
        for phase in cappedPhases {
            out.append(
                "  budget growth, rounds \(phase.rounds.lowerBound)-\(phase.rounds.upperBound): "
                    + "every tier at most p = \(format(phase.cap)), "
                    + "\(grouped(Int(phase.expectedBytesPerRound.rounded()))) B "
                    + "(\(String(format: "%.3f", phase.expectedBytesPerRound / expectedDenseBytesPerRound)))"
            )
        }
        if let deadline = scenario.deadlineSeconds {
            for tier in tiers where tier.transferSeconds > deadline {
                out.append(
                    "Warning: tier \(tier.tier.name) needs \(String(format: "%.1f", tier.transferSeconds)) s "
                        + "to transfer alone, over the \(format(deadline)) s deadline")
            }
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// Each tier's budget per layer (LoD and dense FedAvg).
    private func budgetTable() -> [String] {
        var budgets = TextTable(
            header: ["layer", "shape", "r_l"] + tiers.map(\.tier.name),
            rightAligned: [false, false, true] + tiers.map { _ in true })
        for (index, layer) in layers.enumerated() {
            budgets.append(
                [
                    layer.name, "\(layer.outputs)×\(layer.inputs)",
                    layer.isLowRank ? "\(layer.rank)" : "-",
                ]
                    + tiers.map { $0.budgets[index].map(String.init) ?? "dense" })
        }
        return ["Budget per layer (k_l kept of the current rank r_l; dense = sent whole)"]
            + budgets.lines()
    }

    /// Each tier's width slice per layer: the shape of the weight matrix it trains and sends.
    private func widthTable() -> [String] {
        var out = [
            "Width slice per layer (outputs×inputs of the weight matrix each tier trains and "
                + "sends)"
        ]
        var table = TextTable(
            header: ["layer", "shape"] + tiers.map(\.tier.name),
            rightAligned: [false, false] + tiers.map { _ in true })
        for (index, layer) in layers.enumerated() {
            table.append(
                [layer.name, "\(layer.outputs)×\(layer.inputs)"]
                    + tiers.map { tier in
                        tier.widthLayers.map { "\($0[index].outputs)×\($0[index].inputs)" } ?? "-"
                    })
        }
        out += table.lines()
        return out
    }

    /// Each tier's training FLOPs per sample and deployed MACs, against the dense model's.
    private func computeTable() -> [String] {
        var table = TextTable(
            header: ["tier", "training MFLOP/sample", "deployed MMAC"],
            rightAligned: [false, true, true])
        for (tier, cost) in zip(tiers, compute) {
            table.append([
                tier.tier.name, String(format: "%.3f", cost.trainingFLOPsPerSample / 1e6),
                String(format: "%.3f", Double(cost.deployedMACs) / 1e6),
            ])
        }
        return ["Compute per client (one training step per sample; one inference deployed)"]
            + table.lines()
    }

    private var datasetSummary: String {
        let name: String
        switch scenario.dataset {
        case .synthetic(let alpha, let beta): return "synthetic(\(format(alpha)), \(format(beta)))"
        case .syntheticIID: return "synthetic IID"
        case .cifar100(_, .coarse, _): name = "cifar100, coarse labels"
        case .fashionMNIST, .cifar10, .cifar100, .leaf: name = scenario.dataset.name
        }
        switch scenario.dataset.partition {
        case .iid: return "\(name) (IID)"
        case .dirichlet(let alpha): return "\(name) (Dirichlet α = \(format(alpha)))"
        case .tiered(let alpha, let tierAlpha):
            return "\(name) (Dirichlet α = \(format(alpha)) within tiers, tier label mixes α = "
                + "\(format(tierAlpha)))"
        case .shards(let perClient): return "\(name) (\(perClient) shards per client)"
        case .natural: return "\(name) (natural: writers dealt round-robin)"
        case nil: return name
        }
    }
}

/// `1234567` → `1,234,567`.
func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (offset, digit) in digits.enumerated() {
        if offset > 0, (digits.count - offset) % 3 == 0 { out.append(",") }
        out.append(digit)
    }
    return value < 0 ? "-" + out : out
}

/// Columns padded to their widest cell, two spaces apart.
struct TextTable {
    var header: [String]
    var rightAligned: [Bool]
    var rows: [[String]] = []

    mutating func append(_ row: [String]) { rows.append(row) }

    func lines() -> [String] {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.indices.map { column in
                let padding = String(repeating: " ", count: widths[column] - row[column].count)
                return rightAligned[column] ? padding + row[column] : row[column] + padding
            }
            .joined(separator: "  ")
            .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
    }
}
