// The simulation, robustness, adversaries and security sections of a scenario.

extension ScenarioValidator {
    mutating func simulation(_ top: Fields) -> Scenario.Simulation? {
        guard let node = top.node("simulation") else {
            return Scenario.Simulation(processPerClient: false)
        }
        guard let fields = fields(node, at: "simulation", known: Self.simulationKeys) else {
            return nil
        }
        return optional(fields, "processPerClient", .boolean, default: false)
            .map(Scenario.Simulation.init(processPerClient:))
    }

    /// `robustness: {aggregation: trimmedMean, trimFraction: 0.1, maximumUpdateNormRatio: 10}`.
    mutating func robustness(_ top: Fields) -> Scenario.Robustness? {
        guard let node = top.node("robustness") else { return Scenario.Robustness() }
        guard let fields = fields(node, at: "robustness", known: Self.robustnessKeys) else {
            return nil
        }
        let aggregation = optional(
            fields, "aggregation", .choice(Scenario.Robustness.Aggregation.self), default: .mean)
        let trimFraction = optional(
            fields, "trimFraction", .number(Interval(lower: 0, upper: 0.5, upperIncluded: false)),
            default: 0.1)
        let ratio = optional(
            fields, "maximumUpdateNormRatio", .number(.positive),
            default: Scenario.Robustness.defaultMaximumUpdateNormRatio)
        guard let aggregation, let trimFraction, let ratio else { return nil }
        if aggregation != .trimmedMean, fields.has("trimFraction") {
            report(
                fields.keyPath("trimFraction"),
                "only with aggregation: trimmedMean (found aggregation: \(aggregation.rawValue))")
            return nil
        }
        return Scenario.Robustness(
            aggregation: aggregation, trimFraction: trimFraction, maximumUpdateNormRatio: ratio)
    }

    /// `adversaries: {fraction: 0.1, attack: scale, factor: 10}` (simulated attackers).
    mutating func adversaries(_ node: ScenarioNode) -> Scenario.Adversaries? {
        guard let fields = fields(node, at: "adversaries", known: Self.adversaryKeys) else {
            return nil
        }
        let fraction = required(fields, "fraction", .number(.unitOpenClosed))
        let attack = required(fields, "attack", .choice(Scenario.Adversaries.Attack.self))
        let factor = optional(fields, "factor", .number(.positive), default: 1)
        guard let fraction, let attack, let factor else { return nil }
        return Scenario.Adversaries(fraction: fraction, attack: attack, factor: factor)
    }

    mutating func security(_ top: Fields) -> Scenario.Security? {
        guard let node = top.node("security") else { return Scenario.Security(requireCurve: false) }
        guard let fields = fields(node, at: "security", known: Self.securityKeys) else {
            return nil
        }
        return optional(fields, "requireCurve", .boolean, default: false)
            .map(Scenario.Security.init(requireCurve:))
    }
}
