import Fleet
import LowRank
import Report
import Runtime
import Vocabulary

/// `scenario show`'s compute table: each tier's training FLOPs per sample and inference
/// multiply-adds at its own budget of the initial model's ranks, for any strategy (a dense
/// strategy trains and runs the whole model on every tier).
///
/// The same functions give the run summary's `training_flops_per_sample` and `macs` (the
/// latter for a tier that deploys its own budget); a tier that freezes the convolutions trains
/// the layers after them only.
func computeTable(for scenario: Scenario) -> String {
    let network = scenario.initialNetwork()
    let full = network.trainingStepFLOPs(batch: 1)
    var rows = [["tier", "p", "train MFLOP/sample", "vs full model", "MACs"]]
    for tier in scenario.tiers {
        let ranks =
            scenario.isLowRank
            ? network.keptRanks.map { RankBudget.rank(fraction: tier.rankFraction, of: $0) } : []
        let flops = network.trainingStepFLOPs(
            batch: 1, ranks: scenario.isLowRank ? ranks : nil,
            frozenLayers: scenario.frozenLayers(of: tier, architecture: network.architecture))
        rows.append([
            tier.name, String(format: "%g", tier.rankFraction), String(format: "%.3f", flops / 1e6),
            String(format: "%.3f", full > 0 ? flops / full : 0), "\(network.macs(ranks: ranks))",
        ])
    }
    let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
    let lines = rows.map { row in
        row.indices.map { pad(row[$0], widths[$0], right: $0 > 0) }.joined(separator: "  ")
    }
    return
        ([
            "Compute per sample at each tier's budget (training: forward and backward pass; "
                + "MACs: one inference of the model the tier runs)"
        ] + lines).joined(separator: "\n")
}
