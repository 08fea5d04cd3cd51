import Fleet

/// libFuzzer entry point: the scenario parser must turn any text into a scenario or a
/// `ScenarioError` naming key paths, never a crash; a valid scenario must round-trip.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzScenario(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let scenario = try? Scenario.parse(yaml: text, path: "fuzz.yaml") {
        precondition((try? Scenario.parse(yaml: scenario.yaml())) == scenario, "yaml() does not round-trip")
    }
    return 0
}
