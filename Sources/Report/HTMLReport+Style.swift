import Foundation

/// The colours and line styles shared by every chart and table of a report.
struct ReportStyle {
    /// Tier colours, smallest budget first (colour-blind-safe, distinct in print).
    static let tierPalette = [
        "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#9c755f", "#edc948", "#ff9da7",
    ]
    static let denseColour = "#333a44"
    static let layerPalette = ["#1b7f8c", "#c2571a", "#7b5ea7", "#5a8f29", "#a23b72", "#3d5a80"]
    /// Run line styles: SVG dash arrays and their CSS look-alikes for legends.
    static let runDashes: [(svg: String?, css: String)] = [
        (nil, "solid"), ("7 4", "dashed"), ("2 3", "dotted"), ("10 3 2 3", "dashed"),
    ]

    let tiers: [String]

    init(runs: [RunData]) {
        var fractions: [String: Double] = [:]
        for run in runs {
            for tier in run.summary.tiers where fractions[tier.tier] == nil {
                fractions[tier.tier] = tier.rankFraction
            }
        }
        tiers = fractions.keys.sorted { (fractions[$0]!, $0) < (fractions[$1]!, $1) }
    }

    func colour(tier: String) -> String {
        let index = tiers.firstIndex(of: tier) ?? 0
        return Self.tierPalette[index % Self.tierPalette.count]
    }

    func dash(run index: Int) -> (svg: String?, css: String) {
        Self.runDashes[index % Self.runDashes.count]
    }
}

extension HTMLReport {
    static let css = """
        :root { color-scheme: light; }
        * { box-sizing: border-box; }
        body { margin: 0 auto; max-width: \(pageWidth)px; padding: 24px \(pagePadding)px 40px; font: 14px/1.45 "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: #1d232b; background: #ffffff; }
        header h1 { font-size: 24px; margin: 0 0 2px; }
        .sub { color: #5b6470; margin: 0 0 18px; }
        h2 { font-size: 18px; margin: 26px 0 8px; border-bottom: 1px solid #e3e6ea; padding-bottom: 4px; }
        h3 { font-size: 14px; margin: 0 0 4px; }
        .note { color: #5b6470; font-size: 12px; margin: 4px 0 10px; }
        .cards { display: flex; flex-wrap: wrap; gap: 16px; }
        .card { flex: 1 1 320px; border: 1px solid #dfe3e8; border-radius: 8px; padding: 12px 16px; background: #fafbfc; }
        .card h2 { border: 0; margin: 0; padding: 0; }
        .card .what { color: #5b6470; margin: 0 0 8px; font-size: 12px; }
        .card dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 0; }
        .card dt { color: #5b6470; }
        .card dd { margin: 0; font-weight: 600; }
        .card ul.equal { margin: 4px 0 0; padding-left: 18px; }
        p.equal { margin: 10px 0 0; font-weight: 600; }
        .tag { font-size: 11px; font-weight: 600; background: #e8ebef; border-radius: 4px; padding: 1px 6px; vertical-align: middle; }
        .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 18px 22px; }
        figure { margin: 0; break-inside: avoid; page-break-inside: avoid; }
        figure.empty { border: 1px dashed #d0d5db; border-radius: 6px; padding: 12px; }
        svg.chart { width: 100%; height: auto; display: block; }
        svg.chart .plot { fill: #ffffff; stroke: #c9ced6; }
        svg.chart .grid { stroke: #eceff3; stroke-width: 1; }
        svg.chart .tick { font-size: 11px; fill: #5b6470; }
        svg.chart .axis-label { font-size: 12px; fill: #2c333c; }
        svg.chart .guide { stroke-width: 1; stroke-dasharray: 4 3; }
        svg.chart .guide-label { font-size: 10px; fill: #5b6470; }
        ul.legend { list-style: none; margin: 0 0 4px; padding: 0; display: flex; flex-wrap: wrap; gap: 2px 14px; font-size: 12px; }
        ul.legend li { display: flex; align-items: center; gap: 6px; }
        .swatch { display: inline-block; width: 26px; height: 0; }
        .block { display: inline-block; width: 12px; height: 12px; border-radius: 2px; }
        .dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; }
        table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
        th, td { text-align: right; padding: 4px 8px; border-bottom: 1px solid #eceff3; white-space: nowrap; }
        th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
        th { color: #5b6470; font-weight: 600; border-bottom: 1px solid #c9ced6; }
        tr.first td { border-top: 1px solid #c9ced6; }
        tr.total td { font-weight: 600; }
        td.nr { color: #b3261e; font-weight: 600; text-align: center; }
        td.base { color: #5b6470; text-align: center; }
        table.tiers { table-layout: fixed; }
        table.tiers th { white-space: normal; vertical-align: bottom; }
        td.wrap { white-space: normal; overflow-wrap: anywhere; }
        table.provenance td { white-space: normal; text-align: left; vertical-align: top; }
        code { font: 12px "DejaVu Sans Mono", Menlo, monospace; word-break: break-all; }
        footer { margin-top: 28px; color: #8a9099; font-size: 12px; }
        @media print { body { padding: 0; } .grid { grid-template-columns: 1fr 1fr; } h2 { break-after: avoid; } }
        """
}
