// What `model.strategy: fixedRank` means for the training and shrinking keys.

import Vocabulary

extension ScenarioValidator {
    /// Under `fixedRank` every local step trains the client's whole budget of every LoD layer:
    /// a scenario that leaves `training.sampler` out gets `none`, and every key that would
    /// sample, order, shrink or grow the ranks is refused with the key named (a key left at
    /// its neutral value — `none`, 0, `false`, absent — is accepted).
    mutating func applyFixedRank(
        training: inout Scenario.Training?, shrinking: Scenario.Shrinking?, samplerGiven: Bool
    ) {
        let because = "with fixedRank every local step trains the client's whole budget"
        if var fixed = training {
            if !samplerGiven { fixed.sampler = .unsampled }
            training = fixed
            if fixed.sampler != .unsampled {
                report(
                    "training.sampler",
                    "must be none with fixedRank: \(because) (no rank sampling, so no ordering)")
            }
            if fixed.groupLasso > 0 {
                report(
                    "training.groupLasso",
                    "must be 0 with fixedRank: the group lasso orders the components by "
                        + "importance, and fixed ranks impose no order")
            }
            if fixed.fullBudgetProbability > 0 {
                report(
                    "training.fullBudgetProbability",
                    "must be 0 with fixedRank: \(because) already")
            }
            if fixed.selfDistillation {
                report(
                    "training.selfDistillation",
                    "must be false with fixedRank: there are no sampled steps to distil into")
            }
            if fixed.coverageDamping {
                report(
                    "training.coverageDamping",
                    "must be false with fixedRank: the server averages each component over the "
                        + "clients that trained it, undamped")
            }
            if fixed.budgetGrowth != nil {
                report(
                    "training.budgetGrowth",
                    "not allowed with fixedRank: each tier trains its own fixed budget from the "
                        + "first round")
            }
        }
        if let shrinking, shrinking.isEnabled {
            report(
                "shrinking.threshold",
                "must be 0 with fixedRank: the ranks stay fixed (no progressive shrinking)")
        }
    }
}
