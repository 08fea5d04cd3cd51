import Fleet
import Foundation
import Testing

/// Replays the scenario fuzzing corpus (tools/fuzz): every input parses or is refused with a
/// `ScenarioError`, and what parses round-trips through `yaml()`.
@Suite("Scenario fuzzing corpus replay")
struct ScenarioCorpusTests {
    @Test("Every corpus input parses or is refused, never a crash")
    func replay() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("FuzzCorpus/scenario")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: corpus.path)) ?? []
        #expect(files.count >= 5, "the scenario corpus is missing (run tools/fuzz scenario)")
        var parsed = 0
        for file in files {
            let text = String(
                decoding: try Data(contentsOf: corpus.appendingPathComponent(file)), as: UTF8.self)
            if let scenario = try? Scenario.parse(yaml: text, path: file) {
                parsed += 1
                #expect(try Scenario.parse(yaml: scenario.yaml()) == scenario)
            }
        }
        #expect(parsed >= 1)
    }
}
