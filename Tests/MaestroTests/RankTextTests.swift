import Foundation
import Testing

@Suite("eval and export print kept ranks alike", .serialized)
struct RankTextTests {
    @Test("export's kept ranks are eval's ranks at the same fraction, written the same way")
    func sameFormatter() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let model = "\(directory)/m.maestro"
        let train = try maestro([
            "train", "--model", "logistic", "--dataset", "synthetic", "--epochs", "1", "--out",
            model,
        ])
        #expect(train.status == 0, "\(train.error)")
        let eval = try maestro(["eval", model, "--rank-fractions", "0.5,1"])
        #expect(eval.status == 0, "\(eval.error)")
        let lines = eval.output.split(separator: "\n").map(String.init)
        // "FILE: lod logistic, kept ranks 10", then one row per fraction ending in its ranks.
        let kept = try #require(lines.first?.components(separatedBy: "kept ranks ").last)
        let half = try #require(
            lines.first { $0.hasPrefix("  0.5000") }?.split(separator: " ").last)
        let export = try maestro([
            "export", model, "--rank-fraction", "0.5", "--out", "\(directory)/half.maestro",
        ])
        #expect(export.status == 0, "\(export.error)")
        #expect(export.output.contains("kept ranks \(half) (of \(kept))"), "\(export.output)")
        let again = try maestro(["eval", "\(directory)/half.maestro", "--rank-fractions", "1"])
        #expect(again.output.contains("kept ranks \(half)\n"), "\(again.output)")
    }
}
