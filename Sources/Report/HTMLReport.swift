import Foundation
import RunRecords

/// A self-contained HTML report of one or more runs: inline SVG and CSS, nothing fetched.
public struct HTMLReport: Sendable {
    public var runs: [RunData]
    public var targets: [Double]
    public var baseline: Int
    public var generator: String

    public init(runs: [RunData], targets: [Double], baseline: Int, generator: String) {
        precondition(!runs.isEmpty && runs.indices.contains(baseline))
        self.runs = runs
        self.targets = targets
        self.baseline = baseline
        self.generator = generator
    }

    var style: ReportStyle { ReportStyle(runs: runs) }

    // MARK: - Page

    public func render() -> String {
        let style = self.style
        let table = TargetTable(runs: runs, targets: targets, baseline: baseline)
        var page = """
            <!DOCTYPE html>
            <html lang="en" xmlns="http://www.w3.org/1999/xhtml">
            <head>
            <meta charset="utf-8"/>
            <meta name="viewport" content="width=device-width, initial-scale=1"/>
            <title>\(escapeXML(pageTitle))</title>
            <style>\(Self.css)</style>
            </head>
            <body>
            <header>
            <h1>\(escapeXML(pageTitle))</h1>
            <p class="sub">\(escapeXML(subtitle))</p>
            </header>

            """
        page += headline(table)
        page += section(
            "Bytes, rounds and device time to reach a target accuracy",
            note:
                "The first evaluated round at which the best tier reached the target; bytes are cumulative wire bytes up and down, control messages included; nothing is interpolated between evaluations."
                + (runs.count > 1
                    ? " Ratios are to the baseline run (\(runs[baseline].name))."
                    : " Give a dense FedAvg run of the same scenario too (e.g. smoke-dense.yaml for smoke.yaml) for the bytes saved to each target."),
            body: targetTable(table))
        page += seedSection()
        page += "<section><h2>Accuracy and cost</h2><div class=\"grid\">"
        page += figure(
            "Accuracy against cumulative bytes (the savings chart)",
            note: "Best tier of each run; the grey lines are the target accuracies.",
            legend: runLegend(), chart: savingsChart(table))
        page += figure(
            "Accuracy per tier against round",
            note: "Every tier's budget of the global model, evaluated on the held-out set.",
            legend: tierLegend() + runLegend(),
            chart: accuracyChart(id: "accuracy-round", byTime: false))
        page += figure(
            "Accuracy per tier against virtual (device) time",
            note:
                "Simulated wall time of the devices: compute from the cost model, transfers from the tiers' links.",
            legend: tierLegend() + runLegend(),
            chart: accuracyChart(id: "accuracy-time", byTime: true))
        page += figure(
            "Final model: accuracy against rank fraction",
            note:
                "The final global model cut to a fraction of every layer's kept rank, without retraining; dashed lines mark the tiers' budgets.",
            legend: runLegend(), chart: truncationChart(byMACs: false))
        page += figure(
            "Final model: accuracy against multiply-adds",
            note: "The same cuts, by the MACs of one forward pass of one sample.",
            legend: runLegend(), chart: truncationChart(byMACs: true))
        page += "</div></section>"
        for (index, run) in runs.enumerated() {
            page +=
                "<section><h2>Run \(escapeXML(run.name)) (\(escapeXML(runDescription(run))))</h2><div class=\"grid\">"
            page += figure(
                "Bytes per round per tier, stacked",
                note:
                    "Wire bytes up and down of each tier's clients; the dark line is what dense FedAvg would have sent for the same clients.",
                legend: tierLegend(run)
                    + "<li><span class=\"swatch\" style=\"border-top: 2px dashed \(ReportStyle.denseColour)\"></span>dense-equivalent</li>",
                chart: bytesChart(run, index: index))
            if !run.isDense, run.layerNames.count > 0 {
                page += figure(
                    "Kept rank per layer against round",
                    note: "Progressive shrinking: the rank every LoD layer keeps after each round.",
                    legend: layerLegend(run), chart: rankChart(run, index: index))
            } else {
                let what =
                    run.isDense
                    ? "A dense FedAvg run: every layer keeps its full width all run long"
                    : "A \(run.summary.strategy) run trains width slices of a dense model: "
                        + "no LoD ranks"
                page +=
                    "<figure class=\"empty\"><h3>Kept rank per layer</h3><p class=\"note\">\(what); nothing to draw.</p></figure>"
            }
            page += figure(
                "Clients per round: participants, drops and rejections",
                note:
                    "Stacked: clients whose update was aggregated, dropped at the deadline, timed out, or sent an invalid update; the line counts rejected messages.",
                legend: participationLegend(), chart: participationChart(run, index: index))
            page += "</div>"
            page += "<h3>Per tier at the end (bytes against dense FedAvg at equal rounds)</h3>"
            page +=
                "<p class=\"note\">p: the tier's rank fraction; training MFLOP per sample, with its share of the largest tier's in parentheses; ranks: the budget per LoD layer.</p>"
            page += tierTable(run)
            if let coverage = WidthCoverageTable(summary: run.summary) {
                page += "<h3>Width coverage per layer</h3>"
                page +=
                    "<p class=\"note\">Of each hidden layer's channels (units), those the slice "
                    + "of at least one aggregated client held in some round, and the rounds each "
                    + "channel was trained.</p>"
                page += coverage.html()
            }
            page += "</section>"
        }
        page += section("Provenance", note: nil, body: provenanceTable())
        page +=
            "<footer>Written by \(escapeXML(generator)). Self-contained: no script, font or image is fetched.</footer>\n"
        page += "</body>\n</html>\n"
        return page
    }

    var pageTitle: String {
        runs.count == 1
            ? "Maestro run \(runs[0].name)"
            : "Maestro runs " + runs.map(\.name).joined(separator: " vs ")
    }

    var subtitle: String {
        runs.map { "\($0.name): \(runDescription($0))" }.joined(separator: " · ")
    }

    func runDescription(_ run: RunData) -> String {
        let s = run.summary
        return "\(s.scenario), \(run.strategyLabel), seed \(s.seed), \(s.rounds) rounds"
    }

    func section(_ title: String, note: String?, body: String) -> String {
        var html = "<section><h2>\(escapeXML(title))</h2>"
        if let note { html += "<p class=\"note\">\(escapeXML(note))</p>" }
        return html + body + "</section>\n"
    }

    func figure(_ title: String, note: String, legend: String, chart: String) -> String {
        "<figure><h3>\(escapeXML(title))</h3><ul class=\"legend\">\(legend)</ul>\(chart)<figcaption class=\"note\">\(escapeXML(note))</figcaption></figure>\n"
    }

    // MARK: - Headline and tables

    func headline(_ table: TargetTable) -> String {
        var html = "<section class=\"cards\">"
        for (index, run) in runs.enumerated() {
            let s = run.summary
            let total = s.bytesUp + s.bytesDown
            let best = s.finalAccuracyByTier.max { $0.value < $1.value }
            html +=
                "<div class=\"card\"><h2>\(escapeXML(run.name))\(index == baseline && runs.count > 1 ? " <span class=\"tag\">baseline</span>" : "")</h2>"
            html += "<p class=\"what\">\(escapeXML(runDescription(run)))</p>"
            html += "<dl>"
            if let best {
                let which = run.isDense ? "one model for every tier" : best.key
                html +=
                    "<dt>final best tier</dt><dd>\(percent(best.value, digits: 2)) (\(escapeXML(which)))</dd>"
            }
            html += "<dt>bytes, up + down</dt><dd>\(formatBytes(total))</dd>"
            if s.denseEquivalentBytes > 0, !run.isDense {
                html +=
                    "<dt>of dense-equivalent, at equal rounds</dt><dd>\(percent(Double(total) / Double(s.denseEquivalentBytes))) after \(s.rounds) rounds</dd>"
            }
            html += "<dt>virtual time</dt><dd>\(formatTime(s.virtualSeconds))</dd>"
            html += "</dl>"
            if index != baseline {
                html +=
                    "<p class=\"equal\">At equal accuracy, against \(escapeXML(runs[baseline].name)):</p><ul class=\"equal\">"
                for (t, target) in targets.enumerated() {
                    let mine = table.rows[index].reaches[t]
                    let theirs = table.rows[baseline].reaches[t]
                    html +=
                        "<li>to \(percent(target, digits: 0)): " + equalAccuracyText(mine, theirs)
                        + "</li>"
                }
                html += "</ul>"
            }
            html += "</div>"
        }
        return html + "</section>\n"
    }

    func equalAccuracyText(_ mine: TargetReach, _ theirs: TargetReach) -> String {
        switch (mine.isReached, theirs.isReached) {
        case (false, false): return "neither run reached it"
        case (false, true):
            return "<strong>not reached</strong> (the baseline did, in \(theirs.round!) rounds)"
        case (true, false): return "reached in \(mine.round!) rounds; the baseline never did"
        case (true, true):
            let r = mine.ratios(to: theirs)
            return
                "<strong>\(r.bytes.map { percent($0, digits: 0) } ?? "–") of the bytes</strong>, \(r.rounds.map { String(format: "%.2f×", $0) } ?? "–") the rounds, \(r.time.map { String(format: "%.2f×", $0) } ?? "–") the device time"
        }
    }

    func targetTable(_ table: TargetTable) -> String {
        // One run has nothing to be compared with: no baseline, no ratio columns.
        let compares = runs.count > 1
        var html =
            "<table class=\"target\"><thead><tr><th>target</th><th>run</th><th>round</th><th>bytes</th><th>virtual time</th>"
            + (compares
                ? "<th>bytes / baseline</th><th>rounds / baseline</th><th>time / baseline</th>"
                : "")
            + "</tr></thead><tbody>"
        for (t, target) in table.targets.enumerated() {
            for (index, row) in table.rows.enumerated() {
                let reach = row.reaches[t]
                let base = table.rows[table.baseline].reaches[t]
                html +=
                    "<tr\(index == 0 ? " class=\"first\"" : "")><td>\(index == 0 ? percent(target, digits: 0) : "")</td><td>\(escapeXML(row.run))</td>"
                if reach.isReached {
                    html +=
                        "<td>\(reach.round!)</td><td>\(formatBytes(reach.bytes!))</td><td>\(formatTime(reach.virtualSeconds!))</td>"
                } else {
                    html += "<td class=\"nr\" colspan=\"3\">not reached</td>"
                }
                if compares && index == table.baseline {
                    html += "<td class=\"base\" colspan=\"3\">baseline</td>"
                } else if compares {
                    let r = reach.ratios(to: base)
                    let missing = reach.isReached ? "baseline not reached" : "–"
                    html += "<td>\(r.bytes.map { percent($0, digits: 1) } ?? missing)</td>"
                    html += "<td>\(r.rounds.map { String(format: "%.2f×", $0) } ?? "–")</td>"
                    html += "<td>\(r.time.map { String(format: "%.2f×", $0) } ?? "–")</td>"
                }
                html += "</tr>"
            }
        }
        return html + "</tbody></table>\n"
    }

    func provenanceTable() -> String {
        var html =
            "<table class=\"provenance\"><thead><tr><th>run</th><th>directory</th><th>scenario</th><th>commit</th><th>version</th><th>started</th><th>host</th><th>wall</th><th>command</th></tr></thead><tbody>"
        for run in runs {
            let s = run.summary
            let p = s.provenance
            html +=
                "<tr><td>\(escapeXML(run.name))</td><td><code>\(escapeXML(run.directory))</code></td><td>\(escapeXML(runDescription(run)))\(s.interrupted ? " (interrupted)" : "")</td><td><code>\(escapeXML(p?.commit.map { String($0.prefix(12)) } ?? "–"))</code></td><td>\(escapeXML(p?.version ?? "–"))</td><td>\(escapeXML(p?.startedAt ?? "–"))</td><td>\(escapeXML(p?.host ?? "–"))</td><td>\(String(format: "%.0f s", s.wallSeconds))</td><td>\(commandCell(p))</td></tr>"
        }
        return html + "</tbody></table>\n"
    }

    /// The command line that started a run, then each `--resume` that continued it: when, on
    /// which host, from which commit when another, and its command line.
    func commandCell(_ provenance: RunSummary.Provenance?) -> String {
        guard let provenance else { return "<code>–</code>" }
        var html = "<code>\(escapeXML(provenance.commandLine.joined(separator: " ")))</code>"
        for resume in provenance.resumes ?? [] {
            let commit =
                resume.commit.map { $0 == provenance.commit ? "" : ", commit \($0.prefix(12))" }
                ?? ""
            html +=
                "<br/>resumed \(escapeXML(resume.startedAt)) on \(escapeXML(resume.host))"
                + "\(escapeXML(commit)): "
                + "<code>\(escapeXML(resume.commandLine.joined(separator: " ")))</code>"
        }
        return html
    }

    // MARK: - Legends

    func tierLegend(_ run: RunData? = nil) -> String {
        let style = self.style
        let names = run.map { $0.isDense ? $0.tierNames : $0.tierNames } ?? style.tiers
        var html = names.map {
            "<li><span class=\"swatch\" style=\"border-top: 3px solid \(style.colour(tier: $0))\"></span>\(escapeXML($0))</li>"
        }.joined()
        if run == nil, runs.contains(where: \.isDense) {
            html +=
                "<li><span class=\"swatch\" style=\"border-top: 3px solid \(ReportStyle.denseColour)\"></span>dense model (all tiers)</li>"
        }
        return html
    }

    func runLegend() -> String {
        let style = self.style
        return runs.enumerated().map { index, run in
            "<li><span class=\"swatch\" style=\"border-top: 3px \(style.dash(run: index).css) \(ReportStyle.denseColour)\"></span>run \(escapeXML(run.name))</li>"
        }.joined()
    }

    func layerLegend(_ run: RunData) -> String {
        run.layerNames.enumerated().map { index, name in
            "<li><span class=\"swatch\" style=\"border-top: 3px solid \(ReportStyle.layerPalette[index % ReportStyle.layerPalette.count])\"></span>\(escapeXML(name))</li>"
        }.joined()
    }

    static let participation: [(label: String, colour: String)] = [
        ("participants", "#9aa5b1"), ("dropped at the deadline", "#e15759"),
        ("timed out", "#8c1c13"), ("invalid update", "#111111"),
    ]
    static let rejectionColour = "#c2185b"

    func participationLegend() -> String {
        Self.participation.map {
            "<li><span class=\"block\" style=\"background: \($0.colour)\"></span>\(escapeXML($0.label))</li>"
        }.joined()
            + "<li><span class=\"swatch\" style=\"border-top: 2px solid \(Self.rejectionColour)\"></span>rejected messages</li>"
    }

    // MARK: - Charts

    static let accuracyFormat: @Sendable (Double) -> String = { String(format: "%.0f%%", 100 * $0) }

    /// An accuracy axis that starts near where the curves become interesting (10th
    /// percentile of the plotted values), so the first rounds do not flatten the rest.
    func accuracyAxis(_ values: [Double], label: String = "test accuracy (%)") -> ChartAxis {
        let sorted = values.sorted()
        let low = sorted.isEmpty ? 0 : sorted[sorted.count / 10]
        let high = sorted.last ?? 1
        let minimum = max(0, ((low - 0.02) * 20).rounded(.down) / 20)
        let maximum = min(1, max(minimum + 0.05, ((high + 0.01) * 20).rounded(.up) / 20))
        return ChartAxis(
            label: label, minimum: minimum, maximum: maximum, format: Self.accuracyFormat)
    }

    /// A bytes axis in MB or GB, whichever reads better.
    static func bytesAxis(_ maximum: Double, label: String) -> (ChartAxis, Double) {
        let (unit, scale) =
            maximum >= 5e9 ? ("GB", 1e9) : maximum >= 5e6 ? ("MB", 1e6) : ("kB", 1e3)
        return (
            ChartAxis(label: "\(label) (\(unit))") { v in
                v == v.rounded() ? String(format: "%.0f", v) : String(format: "%g", v)
            }, scale
        )
    }

    /// A time axis in seconds, minutes or hours, whichever reads better.
    static func timeAxis(_ maximum: Double, label: String) -> (ChartAxis, Double) {
        let (unit, scale) =
            maximum >= 3 * 3600 ? ("h", 3600.0) : maximum >= 180 ? ("min", 60.0) : ("s", 1.0)
        return (ChartAxis(label: "\(label) (\(unit))") { String(format: "%g", $0) }, scale)
    }

    static let roundAxis = ChartAxis(label: "round", integer: true) { String(format: "%.0f", $0) }

    /// Per tier of each run (one line for a dense run, whose tiers share one model).
    func accuracyChart(id: String, byTime: Bool) -> String {
        let style = self.style
        let maxTime = runs.flatMap { $0.rounds.map(\.virtualTime) }.max() ?? 1
        let (timeAxis, timeScale) = Self.timeAxis(maxTime, label: "virtual time")
        var series: [ChartSeries] = []
        for (index, run) in runs.enumerated() {
            let evaluations = run.evaluations
            let tiers = run.isDense ? [run.tierNames.first ?? ""] : run.tierNames
            for tier in tiers {
                let points = evaluations.compactMap { round -> (x: Double, y: Double)? in
                    guard let accuracy = round.accuracyByTier?[tier] else { return nil }
                    return (byTime ? round.virtualTime / timeScale : Double(round.round), accuracy)
                }
                series.append(
                    ChartSeries(
                        run: run.name, label: run.isDense ? "dense model" : tier,
                        colour: run.isDense ? ReportStyle.denseColour : style.colour(tier: tier),
                        dash: style.dash(run: index).svg, points: points,
                        markers: points.count <= 25))
            }
        }
        return LineChart(
            id: id,
            title: byTime
                ? "Accuracy per tier against virtual time" : "Accuracy per tier against round",
            x: byTime ? timeAxis : Self.roundAxis,
            y: accuracyAxis(series.flatMap { $0.points.map(\.y) }), series: series
        ).svg()
    }

    func savingsChart(_ table: TargetTable) -> String {
        let style = self.style
        let maxBytes = Double(runs.flatMap { $0.rounds.map(\.cumulativeBytes) }.max() ?? 1)
        let (axis, scale) = Self.bytesAxis(maxBytes, label: "cumulative bytes, up + down")
        var series: [ChartSeries] = []
        for (index, run) in runs.enumerated() {
            let points = run.evaluations.compactMap { round -> (x: Double, y: Double)? in
                RunData.bestAccuracy(round).map { (Double(round.cumulativeBytes) / scale, $0) }
            }
            series.append(
                ChartSeries(
                    run: run.name, label: "best tier", colour: ReportStyle.denseColour,
                    dash: style.dash(run: index).svg, width: 2.4, points: points,
                    markers: points.count <= 25))
        }
        let guides = targets.map {
            ChartGuide(.horizontal, at: $0, label: "target \(percent($0, digits: 0))")
        }
        var axis2 = axis
        axis2.minimum = 0
        return LineChart(
            id: "savings", title: "Accuracy against cumulative bytes", x: axis2,
            y: accuracyAxis(
                series.flatMap { $0.points.map(\.y) } + targets,
                label: "best tier's test accuracy (%)"),
            series: series, guides: guides
        ).svg()
    }

    func truncationChart(byMACs: Bool) -> String {
        let style = self.style
        var series: [ChartSeries] = []
        for (index, run) in runs.enumerated() {
            guard let curve = run.truncation, !curve.isEmpty else { continue }
            series.append(
                ChartSeries(
                    run: run.name, label: run.isDense ? "dense model" : "final model",
                    colour: ReportStyle.denseColour, dash: style.dash(run: index).svg,
                    points: curve.map {
                        (byMACs ? Double($0.macs) / 1e6 : $0.rankFraction, $0.accuracy)
                    },
                    markers: true))
        }
        var guides: [ChartGuide] = []
        if !byMACs {
            var seen = Set<String>()
            for run in runs where !run.isDense {
                for tier in run.summary.tiers where seen.insert(tier.tier).inserted {
                    guides.append(
                        ChartGuide(
                            .vertical, at: tier.rankFraction, label: tier.tier,
                            colour: style.colour(tier: tier.tier)))
                }
            }
        }
        if series.isEmpty {
            return
                "<p class=\"note\">No truncation curve: the runs predate `truncation.json` (run `maestro eval final.maestro` for the same figures).</p>"
        }
        let x =
            byMACs
            ? ChartAxis(label: "multiply-adds per sample (millions)") { String(format: "%g", $0) }
            : ChartAxis(label: "rank fraction of every layer (log scale)", log2: true) { v in
                v >= 1 ? "1" : "1/\(Int((1 / v).rounded()))"
            }
        var xAxis = x
        if byMACs { xAxis.minimum = 0 }
        return LineChart(
            id: byMACs ? "truncation-macs" : "truncation-fraction",
            title: byMACs ? "Accuracy against MACs" : "Accuracy against rank fraction", x: xAxis,
            y: accuracyAxis(series.flatMap { $0.points.map(\.y) }), series: series, guides: guides
        ).svg()
    }

    func bytesChart(_ run: RunData, index: Int) -> String {
        let style = self.style
        let maximum = Double(
            run.rounds.map { max($0.bytesUp + $0.bytesDown, $0.denseEquivalentBytes) }.max() ?? 1)
        let (axis, scale) = Self.bytesAxis(maximum, label: "bytes per round")
        let tiers = run.tierNames
        let bars = run.rounds.map { round in
            StackedBar(
                x: Double(round.round),
                values: tiers.map { tier in
                    let bytes = round.bytesByTier[tier]
                    return Double((bytes?.up ?? 0) + (bytes?.down ?? 0)) / scale
                })
        }
        let dense = ChartSeries(
            run: run.name, label: "dense-equivalent", colour: ReportStyle.denseColour, dash: "5 3",
            width: 1.6,
            points: run.rounds.map { (Double($0.round), Double($0.denseEquivalentBytes) / scale) })
        return StackedBarChart(
            id: "bytes-\(index)", title: "Bytes per round per tier (\(run.name))",
            x: Self.roundAxis, y: axis,
            run: run.name, layers: tiers.map { ($0, style.colour(tier: $0)) }, bars: bars,
            lines: [dense]
        ).svg()
    }

    func rankChart(_ run: RunData, index: Int) -> String {
        let series = run.layerNames.enumerated().map { layer, name in
            ChartSeries(
                run: run.name, label: name,
                colour: ReportStyle.layerPalette[layer % ReportStyle.layerPalette.count],
                points: run.rounds.compactMap { round in
                    layer < round.ranks.count
                        ? (Double(round.round), Double(round.ranks[layer])) : nil
                }, step: true)
        }
        return LineChart(
            id: "ranks-\(index)", title: "Kept rank per layer (\(run.name))", x: Self.roundAxis,
            y: ChartAxis(label: "kept rank", integer: true) { String(format: "%.0f", $0) },
            series: series,
            includeZero: true
        ).svg()
    }

    func participationChart(_ run: RunData, index: Int) -> String {
        let bars = run.rounds.map { round in
            StackedBar(
                x: Double(round.round),
                values: [
                    Double(round.participants.count), Double(round.droppedDeadline.count),
                    Double(round.droppedTimeout.count), Double(round.droppedInvalid.count),
                ])
        }
        let rejected = ChartSeries(
            run: run.name, label: "rejected messages", colour: Self.rejectionColour, width: 1.6,
            points: run.rounds.map { (Double($0.round), Double($0.rejected.values.reduce(0, +))) })
        return StackedBarChart(
            id: "clients-\(index)", title: "Clients per round (\(run.name))", x: Self.roundAxis,
            y: ChartAxis(label: "clients or messages", integer: true) {
                String(format: "%.0f", $0)
            },
            run: run.name, layers: Self.participation, bars: bars, lines: [rejected]
        ).svg()
    }
}
