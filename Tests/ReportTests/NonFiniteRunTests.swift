import Foundation
import Report
import RunRecords
import Testing

@Suite("Run files with NaN and ±Inf")
struct NonFiniteRunTests {
    @Test("compare and report read a run whose metrics and summary hold NaN and ±Inf")
    func nonFinite() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let directory = try lodFixture.write(in: parent)
        // The spelling the recorder writes (RunJSON): strings for the non-finite numbers.
        let metricsPath = "\(directory)/metrics.jsonl"
        let lines = try String(contentsOfFile: metricsPath, encoding: .utf8)
            .split(separator: "\n").map { line -> String in
                var object =
                    try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                object["training_loss"] = "NaN"
                object["loss_by_tier"] = ["low": "Infinity", "full": "-Infinity"]
                let data = try JSONSerialization.data(withJSONObject: object)
                return String(decoding: data, as: UTF8.self)
            }
        try (lines.joined(separator: "\n") + "\n").write(
            toFile: metricsPath, atomically: true, encoding: .utf8)
        let summaryPath = "\(directory)/summary.json"
        var summary =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: summaryPath))) as! [String: Any]
        summary["wall_seconds"] = "NaN"
        try JSONSerialization.data(withJSONObject: summary).write(
            to: URL(fileURLWithPath: summaryPath))

        let run = try RunData.load(directory: directory)
        #expect(run.rounds.count == 6)
        #expect(run.rounds.allSatisfy { $0.trainingLoss?.isNaN == true })
        #expect(run.rounds[0].lossByTier?["low"] == .infinity)
        #expect(run.summary.wallSeconds.isNaN)
        let dense = try RunData.load(directory: try denseFixture.write(in: parent))
        let text = CompareReport(runs: [run, dense], targets: [0.8], baseline: 1).text()
        #expect(text.contains("80.0%"))
        let html = HTMLReport(runs: [run, dense], targets: [0.8], baseline: 1, generator: "test")
            .render()
        #expect(html.contains("</html>"))
    }
}
