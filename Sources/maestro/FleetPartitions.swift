import Datasets
import Fleet
import LowRank
import Runtime

/// `client --partition-of SCENARIO --index I` in the full `maestro`: the scenario is read and
/// the client's partition derived locally, as the coordinator derives it.
enum FleetPartitions: ScenarioPartitions {
    static var available: Bool { true }

    static func partition(
        of path: String, index: Int, dataDirectory: String?
    ) throws -> (tier: String, samples: TrainingSamples) {
        var overrides: [(keyPath: String, value: String)] = []
        if let dataDirectory { overrides.append(("dataset.directory", dataDirectory)) }
        let scenario = try loadScenario(path, overrides: overrides)
        guard index < scenario.clients else {
            throw CommandError(
                "--index \(index): the scenario \(path) has \(scenario.clients) clients")
        }
        return (scenario.fleet()[index].tier.name, try scenario.clientSamples(index: index))
    }
}
