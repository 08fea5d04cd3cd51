/// The `report` key: how `maestro report` and `maestro compare` judge a run of the scenario.
extension Scenario {
    /// Settings for reports on a run of this scenario; they change nothing the run computes.
    public struct ReportSettings: Sendable, Equatable {
        /// Target accuracies of the best tier, as fractions in (0, 1], ascending: the
        /// accuracies at which reports compare bytes, rounds and device time.
        public var targets: [Double]

        public init(targets: [Double]) {
            self.targets = targets
        }
    }

    /// The targets `report` and `compare` use when no `--targets` is given and no run states
    /// its own.
    public static let defaultReportTargets = [0.80, 0.85, 0.87]

    /// The `report` mapping as written in the scenario as run (nil: not set).
    var reportNode: ScenarioNode? {
        report.map { .flow([("targets", .sequence($0.targets.map { .number($0) }, isFlow: true))]) }
    }
}

extension ScenarioValidator {
    static let reportKeys = ["targets"]

    /// Reads the optional `report` mapping: `.some(nil)` when absent, `nil` when invalid.
    mutating func reportSettings(_ root: ScenarioNode?) -> Scenario.ReportSettings?? {
        guard case .mapping(let entries, _)? = root,
            let node = entries.first(where: { $0.key == "report" })?.value, node != .null
        else { return .some(nil) }
        guard case .mapping(let fields, _) = node else {
            report("report", "wrong type: expected a mapping, found \(node.kindDescription)")
            return nil
        }
        var valid = true
        for entry in fields where !Self.reportKeys.contains(entry.key) {
            let suggestion = closestMatch(to: entry.key, among: Self.reportKeys)
            report(
                "report.\(entry.key)",
                "unknown key; "
                    + (suggestion.map { "did you mean '\($0)'?" }
                        ?? "expected one of " + Self.reportKeys.joined(separator: ", ")))
            valid = false
        }
        guard let targetsNode = fields.first(where: { $0.key == "targets" })?.value,
            targetsNode != .null
        else {
            report("report.targets", "missing required key")
            return nil
        }
        switch Field.list(of: .number(.unitOpenClosed)).read(targetsNode) {
        case .failure(let problem):
            report("report.targets", problem.reason)
            return nil
        case .success(let targets):
            if targets.isEmpty {
                report("report.targets", "must list at least one target accuracy")
                return nil
            }
            if targets.count > 16 {
                report("report.targets", "out of range: at most 16 targets, found \(targets.count)")
                return nil
            }
            if let index = targets.indices.dropFirst().first(where: {
                targets[$0] <= targets[$0 - 1]
            }) {
                report(
                    "report.targets",
                    "must increase: element \(index) (\(format(targets[index]))) is not above "
                        + "element \(index - 1) (\(format(targets[index - 1])))")
                return nil
            }
            return valid ? .some(Scenario.ReportSettings(targets: targets)) : nil
        }
    }
}
