// The settings a width strategy (heteroFL, fjord, fedRolex, smallModel) refuses: everything
// that acts on LoD factors and rank budgets.

extension ScenarioValidator {
    /// Reports each setting of `scenario` that its width strategy cannot honour, at its key.
    mutating func reportWidthStrategyProblems(_ scenario: Scenario) {
        let strategy = scenario.model.strategy
        guard strategy.isWidthSliced else { return }
        let name = strategy.rawValue
        let training = scenario.training
        if scenario.model.factoredMinimumWeights > 0 {
            report(
                "model.factoredMinimumWeights",
                "must be 0 with \(name): width slices are cut from a dense model")
        }
        if training.sampler != .unsampled {
            report(
                "training.sampler",
                "must be none with \(name): a width slice has no ranks to sample"
                    + (strategy == .fjord
                        ? " (fjord draws each step's width from the tiers' fractions)" : ""))
        }
        if training.groupLasso > 0 {
            report(
                "training.groupLasso",
                "must be 0 with \(name): the group lasso acts on low-rank factors")
        }
        if training.fullBudgetProbability > 0 {
            report(
                "training.fullBudgetProbability",
                "must be 0 with \(name): it biases rank sampling, which width slices do not do")
        }
        if training.coverageDamping {
            report(
                "training.coverageDamping",
                "must be false with \(name): it damps LoD components by coverage; width slices "
                    + "average each weight over the clients that hold it")
        }
        if training.rankAwareServer {
            report(
                "training.rankAwareServer",
                "must be false with \(name): it steps LoD components by rows; a weight no client "
                    + "held already has a zero pseudo-gradient")
        }
        if training.selfDistillation {
            report(
                "training.selfDistillation",
                "not supported with \(name): it distils LoD rank samples"
                    + (strategy == .fjord
                        ? "; fjord's self-distillation over widths is training.widthDistillation"
                        : ""))
        }
        if training.budgetGrowth != nil {
            report(
                "training.budgetGrowth",
                "not allowed with \(name): it caps rank budgets; a width tier trains its own "
                    + "fraction from round 1")
        }
        if scenario.shrinking.threshold > 0 {
            report(
                "shrinking.threshold",
                "must be 0 with \(name): shrinking cuts LoD components; a width model has none")
        }
        if scenario.evaluation.deploy == .bestValidated {
            report(
                "evaluation.deploy",
                "bestValidated is not allowed with \(name): each tier deploys its own width prefix")
        }
    }
}
