import Foundation
import Report
import RunRecords
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

/// A run directory written by hand: every figure below is chosen so the expected results can
/// be computed on paper.
struct FixtureRun {
    var name: String
    var strategy = "orderedLoD"
    var tiers: [(name: String, fraction: Double)] = [("low", 0.25), ("full", 1)]
    var rounds = 6
    /// Accuracy per tier at the evaluated rounds.
    var evaluations: [Int: [String: Double]]
    var bytesPerRound = 100
    var virtualSecondsPerRound = 1.5
    var ranks: [Int] = [30, 10]
    var truncation: [TruncationPoint]? = nil
    /// `summary.json`'s `width_coverage` (width strategies only).
    var widthCoverage: [RunSummary.WidthLayerCoverage]? = nil

    func metricsLines() -> String {
        (1...rounds).map { round -> String in
            var object: [String: Any] = [
                "round": round, "selected": [0, 1, 2], "participants": [0, 1],
                "dropped_deadline": round == 2 ? [2] : [], "dropped_timeout": [],
                "dropped_invalid": [], "bytes_down": bytesPerRound / 2,
                "bytes_up": bytesPerRound / 2, "dense_equivalent_bytes": 2 * bytesPerRound,
                "bytes_by_tier": Dictionary(
                    uniqueKeysWithValues: tiers.map {
                        (
                            $0.name,
                            [
                                "down": bytesPerRound / 4, "up": bytesPerRound / 4,
                                "dense_equivalent": bytesPerRound,
                            ]
                        )
                    }),
                "cumulative_bytes": round * bytesPerRound,
                "cumulative_dense_equivalent_bytes": round * 2 * bytesPerRound,
                "ranks": ranks.map { max(1, $0 - round) }, "client_compute_seconds": 0.1,
                "virtual_seconds": virtualSecondsPerRound,
                "virtual_time": Double(round) * virtualSecondsPerRound, "wall_seconds": 0.2,
                "learning_rate": 0.05, "rejected": round == 3 ? ["wrong_round": 2] : [:],
                "late_updates": 0, "retries": 0,
            ]
            if let accuracy = evaluations[round] { object["accuracy_by_tier"] = accuracy }
            let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            return String(decoding: data, as: UTF8.self)
        }.joined(separator: "\n") + "\n"
    }

    func summaryJSON() -> String {
        let last = evaluations.keys.max().map { evaluations[$0]! } ?? [:]
        var object: [String: Any] = [
            "scenario": "fixture", "strategy": strategy, "rounds": rounds, "seed": 1,
            "final_accuracy_by_tier": last, "bytes_up": rounds * bytesPerRound / 2,
            "bytes_down": rounds * bytesPerRound / 2,
            "dense_equivalent_bytes": rounds * 2 * bytesPerRound, "savings_ratio": 0.5,
            "wall_seconds": 1.0, "virtual_seconds": Double(rounds) * virtualSecondsPerRound,
            "final_ranks": ranks,
            "tiers": tiers.map {
                [
                    "tier": $0.name, "rank_fraction": $0.fraction, "clients": 3,
                    "participations": rounds, "bytes": rounds * bytesPerRound / 2,
                    "dense_equivalent_bytes": rounds * bytesPerRound,
                    "accuracy": last[$0.name] ?? 0, "ranks": ranks, "parameters": 1000,
                ] as [String: Any]
            },
            "rejected_messages": [:] as [String: Int], "late_updates": 0,
            "client_compute_seconds": 1.0, "transport_bytes_sent": 0,
            "transport_bytes_received": 0, "model_file": "final.maestro",
            "worker_control_bytes": 0, "interrupted": false,
        ]
        if let widthCoverage {
            object["width_coverage"] = widthCoverage.map {
                [
                    "layer": $0.layer, "kind": $0.kind, "channels": $0.channels,
                    "trained_channels": $0.trainedChannels, "coverage": $0.coverage,
                    "rounds_min": $0.roundsMin, "rounds_mean": $0.roundsMean,
                    "rounds_max": $0.roundsMax,
                ] as [String: Any]
            }
        }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// Writes the run's files under `parent/name` and returns the directory.
    func write(in parent: String) throws -> String {
        let directory = "\(parent)/\(name)"
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true)
        try summaryJSON().write(
            toFile: "\(directory)/summary.json", atomically: true, encoding: .utf8)
        try metricsLines().write(
            toFile: "\(directory)/metrics.jsonl", atomically: true, encoding: .utf8)
        if let truncation {
            let recorder = try RunRecorder(directory: directory, scenarioYAML: "")
            try recorder.writeTruncation(truncation)
        }
        return directory
    }
}

func scratchDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(
        "maestro-report-\(UUID().uuidString)"
    ).path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// LoD: best tier 0.75 at round 2, 0.82 at 4, 0.88 at 6 (100 bytes and 1.5 s per round).
let lodFixture = FixtureRun(
    name: "lod",
    evaluations: [
        2: ["low": 0.70, "full": 0.75], 4: ["low": 0.82, "full": 0.79],
        6: ["low": 0.86, "full": 0.88],
    ],
    truncation: [
        TruncationPoint(
            rankFraction: 0.25, accuracy: 0.8, parameters: 300, macs: 250, ranks: [8, 3]),
        TruncationPoint(
            rankFraction: 1, accuracy: 0.88, parameters: 1000, macs: 900, ranks: [24, 4]),
    ])

/// Dense: 0.81 at round 2, 0.86 at 4 and 0.87 at 6 (300 bytes and 4 s per round).
let denseFixture = FixtureRun(
    name: "dense", strategy: "denseFedAvg",
    evaluations: [
        2: ["low": 0.81, "full": 0.81], 4: ["low": 0.86, "full": 0.86],
        6: ["low": 0.87, "full": 0.87],
    ], bytesPerRound: 300, virtualSecondsPerRound: 4, ranks: [])

@Suite("Savings at equal accuracy and the HTML report")
struct ReportTests {
    @Test("To-target figures match the hand-computed ones; a target never reached has none")
    func toTarget() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let lod = try RunData.load(directory: try lodFixture.write(in: parent))
        let dense = try RunData.load(directory: try denseFixture.write(in: parent))
        #expect(lod.rounds.count == 6 && lod.evaluations.map(\.round) == [2, 4, 6])

        // 0.80: LoD's best tier first reaches it at round 4 (low 0.82), dense at round 2.
        let lod80 = TargetReach.first(0.80, in: lod.rounds)
        #expect(lod80 == TargetReach(target: 0.80, round: 4, bytes: 400, virtualSeconds: 6))
        let dense80 = TargetReach.first(0.80, in: dense.rounds)
        #expect(dense80 == TargetReach(target: 0.80, round: 2, bytes: 600, virtualSeconds: 8))
        let ratios = lod80.ratios(to: dense80)
        #expect(ratios.bytes == 400.0 / 600 && ratios.rounds == 2 && ratios.time == 6.0 / 8)
        // Exactly at the target counts as reached (dense 0.87 at round 6).
        #expect(TargetReach.first(0.87, in: dense.rounds).round == 6)
        #expect(TargetReach.first(0.88, in: lod.rounds).bytes == 600)
        // Never reached: no round, bytes or time, and no ratio either way.
        let never = TargetReach.first(0.95, in: lod.rounds)
        #expect(!never.isReached && never.bytes == nil && never.virtualSeconds == nil)
        #expect(never.ratios(to: dense80).bytes == nil && dense80.ratios(to: never).bytes == nil)

        let table = TargetTable(runs: [lod, dense], targets: [0.8, 0.88], baseline: 1)
        #expect(TargetTable.defaultBaseline([lod, dense]) == 1)
        #expect(table.rows[1].reaches[1].isReached == false)

        let text = CompareReport(runs: [lod, dense], targets: [0.8, 0.95], baseline: 1).text()
        let lines = text.split(separator: "\n").map(String.init)
        let row80 = try #require(lines.first { $0.hasPrefix("80.0%") })
        #expect(row80.contains("lod") && row80.contains(" 4 ") && row80.contains("66.7%"))
        #expect(row80.contains("2.00x") && row80.contains("0.75x"))
        let row95 = try #require(lines.firstIndex { $0.hasPrefix("95.0%") })
        #expect(lines[row95].contains("not reached") && lines[row95 + 1].contains("not reached"))
        #expect(!lines[row95].contains(" 0 "))

        let json =
            try JSONSerialization.jsonObject(
                with: Data(
                    CompareReport(runs: [lod, dense], targets: [0.8, 0.95], baseline: 1).json().utf8
                ))
            as! [String: Any]
        let reaches = json["targets"] as! [[String: Any]]
        #expect(reaches.count == 4)
        #expect(reaches[0]["round"] as? Int == 4 && reaches[0]["bytes"] as? Int == 400)
        #expect(abs((reaches[0]["bytes_ratio"] as! Double) - 2.0 / 3) < 1e-12)
        #expect(reaches[2]["reached"] as? Bool == false && reaches[2]["round"] is NSNull)
        #expect(reaches[2]["bytes"] is NSNull)

        let line = equalAccuracyLine(run: lod, baseline: dense, targets: [0.8, 0.95])
        #expect(line.contains("80% 66.7% of the bytes (400 B at round 4 vs 600 B at round 2)"))
        #expect(line.contains("95% reached by neither"))
    }

    @Test(
        "The report is well-formed XML, self-contained, and each chart draws what metrics.jsonl holds"
    )
    func htmlStructure() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let lod = try RunData.load(directory: try lodFixture.write(in: parent))
        let dense = try RunData.load(directory: try denseFixture.write(in: parent))
        let html = HTMLReport(
            runs: [lod, dense], targets: [0.8, 0.85, 0.95], baseline: 1, generator: "test"
        ).render()

        let collector = ElementCollector()
        let parser = XMLParser(data: Data(html.utf8))
        parser.delegate = collector
        #expect(parser.parse(), "not well-formed: \(String(describing: parser.parserError))")

        // Nothing fetched: no src/href, no url(), no link or script element.
        #expect(!html.contains("src=") && !html.contains("href=") && !html.contains("url(http"))
        #expect(
            !collector.elements.contains { ["script", "link", "img", "iframe"].contains($0.name) })
        #expect(
            html.components(separatedBy: "http").count - 1 == html.components(
                separatedBy: "xmlns=\"http"
            ).count - 1)

        let charts = collector.elements.filter {
            $0.name == "svg" && $0.attributes["class"] == "chart"
        }
        let ids = Set(charts.compactMap { $0.attributes["id"] })
        for id in [
            "savings", "accuracy-round", "accuracy-time", "truncation-fraction", "truncation-macs",
            "bytes-0", "bytes-1", "ranks-0", "clients-0", "clients-1",
        ] {
            #expect(ids.contains(id), "no chart \(id)")
        }
        #expect(!ids.contains("ranks-1"), "a dense run has no rank chart")

        func series(_ chart: String) -> [(run: String, name: String, points: Int, drawn: Int)] {
            collector.series.filter { $0.chart == chart }.map {
                ($0.run, $0.name, $0.points, $0.drawn)
            }
        }
        // Accuracy per tier: one series per LoD tier and one for the dense model, a point per
        // evaluated round, and the path has exactly that many vertices.
        let accuracy = series("accuracy-round")
        #expect(accuracy.map(\.name) == ["low", "full", "dense model"])
        #expect(accuracy.allSatisfy { $0.points == 3 && $0.drawn == 3 })
        // The savings chart: one best-tier curve per run.
        #expect(series("savings").map(\.run) == ["lod", "dense"])
        #expect(series("savings").allSatisfy { $0.points == 3 && $0.drawn == 3 })
        // Bytes per round: a bar per round per tier, and the dense-equivalent line.
        let bytes = series("bytes-0")
        #expect(bytes.map(\.name) == ["low", "full", "dense-equivalent"])
        #expect(bytes.allSatisfy { $0.points == 6 && $0.drawn == 6 })
        // Ranks: a step line per LoD layer, a vertex per round.
        #expect(series("ranks-0").count == 2)
        #expect(series("ranks-0").allSatisfy { $0.points == 6 && $0.drawn == 6 })
        // Participation: participants and the deadline drop of round 2, rejections of round 3.
        let clients = series("clients-0")
        #expect(clients.first { $0.name == "participants" }?.drawn == 6)
        #expect(clients.first { $0.name == "dropped at the deadline" }?.drawn == 1)
        #expect(clients.first { $0.name == "rejected messages" }?.points == 6)
        // The truncation curve of the LoD run; the dense run wrote none.
        #expect(series("truncation-fraction").map(\.points) == [2])

        // The to-target table says "not reached" for 95 %, never a 0.
        #expect(html.components(separatedBy: ">not reached<").count - 1 == 2)
        #expect(html.contains("66.7%"))
    }

    @Test("Broken run directories are named in the error with the reason")
    func badDirectories() throws {
        let parent = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        #expect(throws: ReportError.self) { try RunData.load(directory: "\(parent)/missing") }
        do {
            _ = try RunData.load(directory: "\(parent)/missing")
        } catch {
            #expect(error.description.contains("\(parent)/missing/summary.json: not found"))
        }
        let directory = try lodFixture.write(in: parent)
        try (lodFixture.metricsLines() + "{\"round\": \"x\"}\n").write(
            toFile: "\(directory)/metrics.jsonl", atomically: true, encoding: .utf8)
        do {
            _ = try RunData.load(directory: directory)
            Issue.record("a corrupt metrics line was accepted")
        } catch {
            #expect(error.description.contains("metrics.jsonl:7: not a round's metrics"))
        }
        try "{}".write(toFile: "\(directory)/summary.json", atomically: true, encoding: .utf8)
        do {
            _ = try RunData.load(directory: directory)
            Issue.record("an empty summary was accepted")
        } catch {
            #expect(
                error.description.contains("summary.json: not a run summary (missing key scenario"))
        }
    }
}

/// Collects elements, and per chart series its declared and drawn point counts.
final class ElementCollector: NSObject, XMLParserDelegate {
    struct Element {
        var name: String
        var attributes: [String: String]
    }
    struct Series {
        var chart: String
        var run: String
        var name: String
        var points: Int
        var drawn = 0
    }

    var elements: [Element] = []
    var series: [Series] = []
    private var chart: String?
    private var inSeries = false

    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
        qualifiedName: String?, attributes: [String: String] = [:]
    ) {
        elements.append(Element(name: name, attributes: attributes))
        if name == "svg", attributes["class"] == "chart" { chart = attributes["id"] }
        if name == "g", attributes["class"] == "series", let chart {
            series.append(
                Series(
                    chart: chart, run: attributes["data-run"] ?? "",
                    name: attributes["data-series"] ?? "",
                    points: Int(attributes["data-points"] ?? "") ?? -1))
            inSeries = true
        }
        guard inSeries else { return }
        switch name {
        case "rect": series[series.count - 1].drawn += 1
        case "path":
            // Vertices: one per M, L, and H command (a step's V ends the same vertex).
            let d = attributes["d"] ?? ""
            series[series.count - 1].drawn += d.filter { "MLH".contains($0) }.count
        case "circle":
            // Markers repeat the path's vertices; count them only for a lone point.
            if series[series.count - 1].points == 1 { series[series.count - 1].drawn += 1 }
        default: break
        }
    }

    func parser(
        _ parser: XMLParser, didEndElement name: String, namespaceURI: String?,
        qualifiedName: String?
    ) {
        if name == "g" { inSeries = false }
        if name == "svg" { chart = nil }
    }
}
