import Foundation

extension HTMLReport {
    /// The section over seeds (``SeedTables``): empty when no scenario ran with more than one
    /// seed.
    func seedSection() -> String {
        let tables = SeedTables(runs: runs, targets: targets, baseline: baseline)
        guard !tables.isEmpty else { return "" }
        var body = Self.seedTable(tables.targetRows, firstTargetRows: true)
        for group in tables.groups where group.isGroup {
            body += "<h3>\(escapeXML(tables.summaryLine(group)))</h3>"
            body += Self.seedTable(tables.tierRows(group), firstTargetRows: false)
        }
        return section(
            "Over seeds: mean ± standard deviation",
            note: "Runs of the same scenario that differ only in their seed, grouped: "
                + tables.caption + ".",
            body: body)
    }

    /// A table of cells, heading first; `firstTargetRows` marks each target's first row.
    static func seedTable(_ rows: [[String]], firstTargetRows: Bool) -> String {
        var html = "<table class=\"target\"><thead><tr>"
        html += rows[0].map { "<th>\(escapeXML($0))</th>" }.joined()
        html += "</tr></thead><tbody>"
        for row in rows.dropFirst() {
            let first = firstTargetRows && !row[0].isEmpty
            html += first ? "<tr class=\"first\">" : "<tr>"
            html += row.map { "<td>\(escapeXML($0))</td>" }.joined() + "</tr>"
        }
        return html + "</tbody></table>\n"
    }
}
