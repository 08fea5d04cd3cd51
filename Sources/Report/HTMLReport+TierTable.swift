import Foundation

extension HTMLReport {
    /// The page's widest content, in CSS pixels: the body's `max-width` less its padding.
    /// Every table declares column widths that fit it, so a 1,400-px window shows the page
    /// without a horizontal scroll.
    static let pageWidth = 1280
    static let pagePadding = 28
    static var contentWidth: Int { pageWidth - 2 * pagePadding }

    /// The per-tier table's columns (``TierTable``'s), each with a width in CSS pixels and
    /// whether its cells may wrap (a long tier name, a rank list, the data-reached figure).
    static let tierColumns: [(column: TierTable.Column, width: Int, wraps: Bool)] = [
        (.tier, 90, true), (.rankFraction, 60, false), (.clients, 64, false),
        (.participations, 110, false), (.bytes, 100, false), (.denseBytes, 100, false),
        (.ratio, 64, false), (.accuracy, 80, false), (.parameters, 90, false),
        (.macs, 84, false), (.trainingMFLOPs, 120, false), (.ranks, 120, true),
        (.dataReached, 120, true),
    ]

    func tierTable(_ run: RunData) -> String {
        let columns = Self.tierColumns
        let table = TierTable(summary: run.summary, columns: columns.map(\.column))
        var html = "<table class=\"tiers\"><colgroup>"
        html += columns.map { "<col style=\"width: \($0.width)px\"/>" }.joined()
        html += "</colgroup><thead><tr>"
        html += columns.map { "<th>\(escapeXML($0.column.title.html))</th>" }.joined()
        html += "</tr></thead><tbody>"
        let style = self.style
        func row(_ cells: [String], total: Bool = false) -> String {
            var html = total ? "<tr class=\"total\">" : "<tr>"
            for (cell, column) in zip(cells, columns) {
                html += column.wraps ? "<td class=\"wrap\">\(cell)</td>" : "<td>\(cell)</td>"
            }
            return html + "</tr>"
        }
        for (tier, cells) in zip(table.tiers, table.rows) {
            var escaped = cells.map(escapeXML)
            escaped[0] =
                "<span class=\"dot\" style=\"background: \(style.colour(tier: tier))\"></span>"
                + escaped[0]
            // A break opportunity after each "/": a long rank list wraps in its column.
            if let ranks = columns.firstIndex(where: { $0.column == .ranks }) {
                escaped[ranks] = escaped[ranks].replacingOccurrences(of: "/", with: "/<wbr/>")
            }
            html += row(escaped)
        }
        html += row(table.total.map(escapeXML), total: true)
        return html + "</tbody></table>\n"
    }
}
