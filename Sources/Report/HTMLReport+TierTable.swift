import Foundation

extension HTMLReport {
    /// The page's widest content, in CSS pixels: the body's `max-width` less its padding.
    /// Every table declares column widths that fit it, so a 1,400-px window shows the page
    /// without a horizontal scroll.
    static let pageWidth = 1280
    static let pagePadding = 28
    static var contentWidth: Int { pageWidth - 2 * pagePadding }

    /// The per-tier table's columns: header, width in CSS pixels, and whether its cells may
    /// wrap (a long tier name, a rank list, the data-reached figure).
    static let tierColumns: [(header: String, width: Int, wraps: Bool)] = [
        ("tier", 90, true), ("p", 60, false), ("clients", 64, false),
        ("participations", 110, false), ("bytes", 100, false), ("dense FedAvg", 100, false),
        ("ratio", 64, false), ("accuracy", 80, false), ("parameters", 90, false),
        ("MACs", 84, false), ("training MFLOP / sample", 120, false), ("ranks", 120, true),
        ("data reached (clients, samples)", 120, true),
    ]

    func tierTable(_ run: RunData) -> String {
        let columns = Self.tierColumns
        var html = "<table class=\"tiers\"><colgroup>"
        html += columns.map { "<col style=\"width: \($0.width)px\"/>" }.joined()
        html += "</colgroup><thead><tr>"
        html += columns.map { "<th>\(escapeXML($0.header))</th>" }.joined()
        html += "</tr></thead><tbody>"
        let style = self.style
        let fullFLOPs = run.summary.tiers.max { $0.rankFraction < $1.rankFraction }?
            .trainingFlopsPerSample
        func row(_ cells: [String], total: Bool = false) -> String {
            var html = total ? "<tr class=\"total\">" : "<tr>"
            for (cell, column) in zip(cells, columns) {
                html += column.wraps ? "<td class=\"wrap\">\(cell)</td>" : "<td>\(cell)</td>"
            }
            return html + "</tr>"
        }
        for tier in run.summary.tiers {
            let ratio =
                tier.denseEquivalentBytes > 0
                ? percent(Double(tier.bytes) / Double(tier.denseEquivalentBytes)) : "–"
            html += row([
                "<span class=\"dot\" style=\"background: \(style.colour(tier: tier.tier))\"></span>"
                    + escapeXML(tier.tier),
                String(format: "%.3f", tier.rankFraction), "\(tier.clients)",
                "\(tier.participations)", formatBytes(tier.bytes),
                formatBytes(tier.denseEquivalentBytes), ratio,
                tier.accuracy.map { percent($0, digits: 2) } ?? "–", "\(tier.parameters)",
                tier.macs.map(String.init) ?? "–",
                flopsCell(tier.trainingFlopsPerSample, full: fullFLOPs),
                // A break opportunity after each "/": a long rank list wraps in its column.
                tier.ranks.isEmpty
                    ? "full"
                    : formatRanks(tier.ranks).replacingOccurrences(of: "/", with: "/<wbr/>"),
                dataReached(tier),
            ])
        }
        let s = run.summary
        let total = s.bytesUp + s.bytesDown
        html += row(
            [
                "total", "", "\(s.tiers.map(\.clients).reduce(0, +))",
                "\(s.tiers.map(\.participations).reduce(0, +))", formatBytes(total),
                formatBytes(s.denseEquivalentBytes),
                s.denseEquivalentBytes > 0
                    ? percent(Double(total) / Double(s.denseEquivalentBytes)) : "–",
            ] + Array(repeating: "", count: columns.count - 7), total: true)
        return html + "</tbody></table>\n"
    }

    /// "2.41 (0.31×)": a tier's training cost per sample and its share of the largest tier's.
    func flopsCell(_ flops: Double?, full: Double??) -> String {
        guard let flops else { return "–" }
        var text = String(format: "%.2f", flops / 1e6)
        if let full = full ?? nil, full > 0, flops != full {
            text += String(format: " (%.2f×)", flops / full)
        }
        return text
    }
}
