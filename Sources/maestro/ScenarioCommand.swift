import ArgumentParser
import Federation
import Fleet
import Foundation
import LowRank
import Runtime

struct ScenarioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scenario", abstract: "Check and describe scenario files.",
        subcommands: [Validate.self, Show.self])

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Report every problem of a scenario file with its key path and reason.")

        @Argument(help: "Scenario files (YAML).")
        var files: [String]

        func run() throws {
            var failed = false
            for file in files {
                do {
                    let scenario = try Scenario.load(path: file)
                    print(
                        "\(file): valid (\(scenario.clients) clients in \(scenario.tiers.count) tiers, \(scenario.rounds) rounds, \(scenario.model.strategy.rawValue))"
                    )
                } catch {
                    failed = true
                    FileHandle.standardError.write(Data("\(error)\n".utf8))
                }
            }
            if failed { throw ExitCode(1) }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Print the fleet, each tier's budget per layer, the expected bytes per round vs dense, and each tier's training FLOPs and MACs."
        )

        @Argument(help: "A scenario file (YAML).")
        var file: String

        @Option(
            name: .customLong("set"),
            help: ArgumentHelp(
                "Override a scenario key first, as 'fleet --set' does (repeatable).",
                valueName: "key.path=value"))
        var assignments: [String] = []

        func validate() throws { try validateAssignments(assignments) }

        func run() throws {
            let scenario = try loadScenario(file, overrides: parseAssignments(assignments))
            print(report(for: scenario).render())
            print(computeTable(for: scenario))
        }
    }
}

/// Checks that every `--set` value has the form `key.path=value`.
func validateAssignments(_ assignments: [String]) throws {
    for assignment in assignments where !assignment.contains("=") {
        throw ValidationError("--set \(assignment): expected key.path=value")
    }
}

/// `--set key.path=value` options as (key path, value) pairs, in order.
func parseAssignments(_ assignments: [String]) -> [(keyPath: String, value: String)] {
    assignments.map { assignment in
        let parts = assignment.split(separator: "=", maxSplits: 1).map(String.init)
        return (parts[0], parts.count > 1 ? parts[1] : "")
    }
}

/// The traffic report of a scenario, with the wire's real per-message and per-tensor overhead.
func report(for scenario: Scenario) -> ScenarioReport {
    let network = scenario.initialNetwork()
    let layers = layerShapes(of: network)
    // A 2-D tensor costs 1 + 2·4 bytes of header, a message 32 bytes plus its fixed fields.
    let overhead = MessageOverhead(perMessage: WireLimits.headerSize + 48, perTensor: 9)
    if let spaces = scenario.channelSpaces(of: network.architecture) {
        // Width strategies: each tier's slice (its size is the same in every round).
        let trained = scenario.tiers.map { scenario.widthPlan(spaces, tier: $0, round: 1) }
        let deployed = scenario.tiers.map { scenario.deployedWidthPlan(spaces, tier: $0) }
        return ScenarioReport(
            scenario: scenario, layers: layers, overhead: overhead,
            widthLayers: trained.map { layerShapes(of: $0.gather(network)) },
            compute: zip(trained, deployed).map { trained, deployed in
                TierCompute(
                    trainingFLOPsPerSample: trained.gather(network).trainingStepFLOPs(batch: 1),
                    deployedMACs: deployed.gather(network).macs(ranks: []))
            })
    }
    let compute = scenario.tiers.map { tier in
        let ranks = scenario.isLowRank ? network.keptRanks.map { tier.keptRank(outOf: $0) } : []
        return TierCompute(
            trainingFLOPsPerSample: network.trainingStepFLOPs(
                batch: 1, ranks: scenario.isLowRank ? ranks : nil,
                frozenLayers: scenario.frozenLayers(of: tier, architecture: network.architecture)),
            deployedMACs: network.macs(ranks: ranks))
    }
    return ScenarioReport(scenario: scenario, layers: layers, overhead: overhead, compute: compute)
}

/// The weight layers of a network as the wire sees them (`ScenarioReport`'s input).
private func layerShapes(of network: Network) -> [LayerShape] {
    let names = network.architecture.linearLayerNames
    var l = 0
    var layers: [LayerShape] = []
    for (index, layer) in network.architecture.layers.enumerated() {
        guard let (outputs, inputs) = layer.matrixShape else { continue }
        let rank = layer.isLowRank ? network.keptRanks[l] : min(outputs, inputs)
        if layer.isLowRank { l += 1 }
        var shape = LayerShape(
            name: names[index] ?? "layer\(index)", outputs: outputs, inputs: inputs,
            isLowRank: layer.isLowRank,
            rank: rank, sharedParameterCount: outputs)
        shape.isConvolution = index < network.architecture.layersThroughLastConvolution
        layers.append(shape)
    }
    return layers
}

/// Loads a scenario or fails with every problem, one per line.
func loadScenario(
    _ path: String, overrides: [(keyPath: String, value: String)] = []
) throws -> Scenario {
    do {
        let scenario = try Scenario.load(path: path)
        return overrides.isEmpty
            ? scenario : try scenario.overriding(overrides, source: "command-line options")
    } catch {
        throw CommandError("\(error)")
    }
}
