import Foundation
import Report
import RunRecords
import Testing

@Suite("Width coverage in the fleet's end-of-run lines and the HTML report")
struct WidthCoverageReportTests {
    /// A heteroFL run whose conv layer 2 had 12 of its 16 channels trained (0 to 25 rounds,
    /// 9.4 on average) and whose dense layer 6 had all 120 units trained.
    let fixture = FixtureRun(
        name: "hetero", strategy: "heteroFL",
        evaluations: [6: ["low": 0.7, "full": 0.8]], ranks: [],
        widthCoverage: [
            .init(
                layer: 2, kind: "convolution", channels: 16, trainedChannels: 12, coverage: 0.75,
                roundsMin: 0, roundsMean: 9.375, roundsMax: 25),
            .init(
                layer: 6, kind: "dense", channels: 120, trainedChannels: 120, coverage: 1,
                roundsMin: 3, roundsMean: 12, roundsMax: 25),
        ])

    @Test("The text names each layer, its channels trained, the share and the rounds")
    func text() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let run = try RunData.load(directory: try fixture.write(in: parent))
        let table = try #require(WidthCoverageTable(summary: run.summary))
        let lines = table.text().split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines[0].hasPrefix("width coverage"))
        #expect(lines[1] == "layer          channels trained  coverage  rounds min / mean / max")
        #expect(lines[2] == "2 convolution             12/16     75.0%             0 / 9.4 / 25")
        #expect(lines[3] == "6 dense                 120/120    100.0%            3 / 12.0 / 25")
        // A run without width coverage (LoD, or recorded before it was kept) prints none.
        let lod = try RunData.load(directory: try lodFixture.write(in: parent))
        #expect(WidthCoverageTable(summary: lod.summary) == nil)
    }

    @Test("The report draws the coverage table under a width run's tier table only")
    func html() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let hetero = try RunData.load(directory: try fixture.write(in: parent))
        let lod = try RunData.load(directory: try lodFixture.write(in: parent))
        let html = HTMLReport(
            runs: [hetero, lod], targets: [0.8], baseline: 1, generator: "test"
        ).render()
        #expect(html.components(separatedBy: "Width coverage per layer").count - 1 == 1)
        #expect(html.contains("<td>2 convolution</td><td>12/16</td><td>75.0%</td>"))
        #expect(html.contains("<td>0 / 9.4 / 25</td>"))
    }
}
