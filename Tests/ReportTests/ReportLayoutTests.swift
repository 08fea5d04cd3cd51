import Fleet
import Foundation
import Report
import LowRank
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Elements in document order with their text, for layout checks.
final class LayoutCollector: NSObject, XMLParserDelegate {
    struct Element {
        var name: String
        var attributes: [String: String]
        /// The chart (`svg.chart` id) or table (`table` class) the element is in.
        var container: String?
        var text = ""
    }

    var elements: [Element] = []
    private var open: [Int] = []
    private var container: [String] = []

    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
        qualifiedName: String?, attributes: [String: String] = [:]
    ) {
        if name == "svg", let id = attributes["id"] { container.append(id) }
        if name == "table" { container.append("table." + (attributes["class"] ?? "")) }
        elements.append(Element(name: name, attributes: attributes, container: container.last))
        open.append(elements.count - 1)
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        for index in open { elements[index].text += string }
    }

    func parser(
        _ parser: XMLParser, didEndElement name: String, namespaceURI: String?,
        qualifiedName: String?
    ) {
        open.removeLast()
        if name == "svg" || name == "table" { container.removeLast() }
    }

    static func parse(_ html: String) -> LayoutCollector {
        let collector = LayoutCollector()
        let parser = XMLParser(data: Data(html.utf8))
        parser.delegate = collector
        #expect(parser.parse(), "not well-formed: \(String(describing: parser.parserError))")
        return collector
    }
}

/// An MLP scenario with report targets, written as the run's `scenario.yaml`.
let mlpScenarioYAML = """
    name: fixture
    seed: 1
    clients: 6
    rounds: 6
    clientsPerRound: 3
    dataset: {name: fashion-mnist, partition: iid}
    model: {architecture: mlp, strategy: orderedLoD}
    training: {localEpochs: 1, batchSize: 32, learningRate: 0.02}
    report: {targets: [0.7, 0.8]}
    tiers:
      - {name: low, count: 3, rankFraction: 0.25, gflops: 5, uplinkMbps: 10, downlinkMbps: 40}
      - {name: full, count: 3, rankFraction: 1.0, gflops: 20, uplinkMbps: 50, downlinkMbps: 200}

    """

@Suite("The report's layout fits a 1,400-px page")
struct ReportLayoutTests {
    /// A LoD run of the MLP (three LoD layers) whose scenario states its targets.
    func mlpRun(in parent: String) throws -> RunData {
        var fixture = lodFixture
        fixture.ranks = [300, 100, 10]
        let directory = try fixture.write(in: parent)
        try mlpScenarioYAML.write(
            toFile: "\(directory)/scenario.yaml", atomically: true, encoding: .utf8)
        return try RunData.load(directory: directory, architecture: { _ in
            // The scenario of `mlpRun`: the MLP, factored, on 28×28 images and 10 classes.
            Architecture.make(.mlp, lowRank: true, inputShape: [28, 28, 1], classCount: 10)
        })
    }

    @Test("The per-tier table declares column widths that fit the page, and every cell fits")
    func tierTableFits() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let lod = try mlpRun(in: parent)
        let dense = try RunData.load(directory: try denseFixture.write(in: parent))
        let html = HTMLReport(runs: [lod, dense], targets: [0.8], baseline: 1, generator: "t")
            .render()
        // The page's content width, from its own style sheet.
        let style = try #require(html.firstMatch(of: /max-width: (\d+)px; padding: \d+px (\d+)px/))
        let content = Int(style.1)! - 2 * Int(style.2)!
        #expect(content <= 1400 - 2 * 40, "the page itself is wider than a 1,400-px window")

        let page = LayoutCollector.parse(html)
        let tables = page.elements.filter {
            $0.name == "table" && $0.attributes["class"] == "tiers"
        }
        #expect(tables.count == 2, "one per-tier table per run")
        let widths = page.elements.filter { $0.name == "col" && $0.container == "table.tiers" }
            .compactMap {
                $0.attributes["style"]?.firstMatch(of: /width: (\d+)px/).map { Int($0.1)! }
            }
        let columns = widths.count / 2
        #expect(columns == 13 && widths.count == 26)
        #expect(widths.prefix(columns).reduce(0, +) <= content, "\(widths)")
        // A cell that may not wrap fits its column: 13-px text of at most 8.3 px a character
        // (DejaVu Sans digits) plus 16 px of padding.
        let rows = page.elements.filter { $0.name == "tr" && $0.container == "table.tiers" }
        #expect(rows.count == 2 * 4)
        let cells = page.elements.filter { $0.name == "td" && $0.container == "table.tiers" }
        for (index, cell) in cells.enumerated() where cell.attributes["class"] != "wrap" {
            let width = widths[index % columns]
            #expect(
                Double(cell.text.count) * 8.3 + 16 <= Double(width),
                "'\(cell.text)' in a \(width)-px column")
        }
    }

    @Test("Lines are clipped to the plot area; markers off the axes are not drawn")
    func linesClipped() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let lod = try mlpRun(in: parent)
        let dense = try RunData.load(directory: try denseFixture.write(in: parent))
        let html = HTMLReport(runs: [lod, dense], targets: [0.8], baseline: 1, generator: "t")
            .render()
        let page = LayoutCollector.parse(html)
        let charts = Set(page.elements.compactMap { $0.name == "svg" ? $0.container : nil })
        #expect(charts.contains("accuracy-round") && charts.contains("savings"))
        for chart in charts {
            let inChart = page.elements.filter { $0.container == chart }
            let plot = try #require(inChart.first { $0.attributes["class"] == "plot" })
            let clip = try #require(
                inChart.first { $0.name == "clipPath" }.map { $0.attributes["id"]! })
            let clipIndex = try #require(inChart.firstIndex { $0.attributes["id"] == clip })
            let clipRect = inChart[clipIndex + 1]
            for key in ["x", "y", "width", "height"] {
                let a = Double(plot.attributes[key]!)!
                let b = Double(clipRect.attributes[key]!)!
                // At most half a stroke around the frame.
                #expect(abs(a - b) <= 3, "\(chart): clip \(key) \(b), plot \(a)")
            }
            let top = Double(plot.attributes["y"]!)!
            let bottom = top + Double(plot.attributes["height"]!)!
            for path in inChart where path.name == "path" {
                #expect(path.attributes["clip-path"] == "url(#\(clip))", "\(chart): unclipped path")
            }
            for circle in inChart where circle.name == "circle" {
                let y = Double(circle.attributes["cy"]!)!
                #expect(y >= top - 0.05 && y <= bottom + 0.05, "\(chart): marker at y \(y)")
            }
        }
        // A point below the axis minimum (a first round's accuracy) gets no marker; its
        // line still runs to it, clipped at the frame.
        let chart = LineChart(
            id: "c", title: "c", x: ChartAxis(label: "round") { "\($0)" },
            y: ChartAxis(label: "accuracy", minimum: 0.5, maximum: 1) { "\($0)" },
            series: [
                ChartSeries(
                    run: "r", label: "s", colour: "#000",
                    points: [(1, 0.2), (2, 0.6), (3, 0.9)], markers: true)
            ]
        ).svg()
        let drawn = LayoutCollector.parse(chart).elements
        #expect(drawn.filter { $0.name == "circle" }.count == 2)
        #expect(drawn.first { $0.name == "path" }?.attributes["clip-path"] == "url(#c-clip)")
    }

    @Test("LoD layers are named as LoD in the kept-rank legend; the full-budget label stays inside")
    func legendAndGuides() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let lod = try mlpRun(in: parent)
        #expect(lod.layerNames == ["LoD fc 784→300", "LoD fc 300→100", "LoD fc 100→10"])
        let html = HTMLReport(runs: [lod], targets: [0.8], baseline: 0, generator: "t").render()
        #expect(!html.contains("dense 784"))
        let page = LayoutCollector.parse(html)
        let chart = page.elements.filter { $0.container == "truncation-fraction" }
        let plot = try #require(chart.first { $0.attributes["class"] == "plot" })
        let right = Double(plot.attributes["x"]!)! + Double(plot.attributes["width"]!)!
        let full = try #require(
            chart.first { $0.attributes["class"] == "guide-label" && $0.text == "full" })
        #expect(full.attributes["text-anchor"] == "end")
        #expect(Double(full.attributes["x"]!)! < right)
    }

    @Test("One run is no baseline: no badge, no ratio columns")
    func singleRun() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let lod = try mlpRun(in: parent)
        let html = HTMLReport(runs: [lod], targets: [0.8], baseline: 0, generator: "t").render()
        #expect(!html.contains(">baseline<"))
        #expect(!html.contains("bytes / baseline"))
        let text = CompareReport(runs: [lod], targets: [0.8], baseline: 0).text()
        #expect(!text.contains("baseline") && !text.contains("/base"), "\(text)")
        let dense = try RunData.load(directory: try denseFixture.write(in: parent))
        let two = HTMLReport(runs: [lod, dense], targets: [0.8], baseline: 1, generator: "t")
        #expect(two.render().contains("<span class=\"tag\">baseline</span>"))
    }

    @Test("Without --targets a report uses the first run's scenario targets, else the defaults")
    func scenarioTargets() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let lod = try mlpRun(in: parent)
        let dense = try RunData.load(directory: try denseFixture.write(in: parent))
        #expect(lod.scenarioTargets == [0.7, 0.8])
        #expect(dense.scenarioTargets == nil)
        #expect(RunData.targets(of: [dense, lod]) == [0.7, 0.8])
        #expect(RunData.targets(of: [dense]) == Scenario.defaultReportTargets)
    }
}

@Test("Kept ranks read the same everywhere: one number per LoD layer, or dense")
func rankText() {
    #expect(formatRanks([300, 100, 10]) == "300/100/10")
    #expect(formatRanks([5]) == "5")
    #expect(formatRanks([]) == "dense")
}
