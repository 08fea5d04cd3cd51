import Fleet

/// The traffic report's layers for a 784-300-100-10 MLP, so that every valid scenario's
/// derived figures (fleet, tier sizes, bytes and times per round) are computed too.
let reportLayers = [(300, 784), (100, 300), (10, 100)].enumerated().map { index, shape in
    LayerShape(
        name: "dense\(index)", outputs: shape.0, inputs: shape.1, isLowRank: index < 2,
        rank: min(shape.0, shape.1), sharedParameterCount: shape.0)
}

/// libFuzzer entry point: the scenario parser must turn any text into a scenario or a
/// `ScenarioError` naming key paths, never a crash; a valid scenario must round-trip, fit a
/// worker assignment, and yield its fleet and traffic report without trapping.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzScenario(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let scenario = try? Scenario.parse(yaml: text, path: "fuzz.yaml") {
        let yaml = scenario.yaml()
        precondition((try? Scenario.parse(yaml: yaml)) == scenario, "yaml() does not round-trip")
        precondition(
            yaml.utf8.count <= Scenario.maximumYAMLBytes, "longer than a worker assignment")
        _ = scenario.tierRanges
        let report = ScenarioReport(
            scenario: scenario, layers: reportLayers,
            overhead: MessageOverhead(perMessage: 80, perTensor: 9))
        _ = report.render()
    }
    return 0
}
