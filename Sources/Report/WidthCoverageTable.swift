import Foundation
import RunRecords

/// A width run's coverage per layer (`summary.json`'s `width_coverage`): of each hidden weight
/// layer's channels (units), how many some aggregated client trained, and the rounds each was
/// trained. The fleet prints it as text at the end; the HTML report draws it as a table.
public struct WidthCoverageTable {
    public let layers: [RunSummary.WidthLayerCoverage]

    /// `nil` for a run without width coverage (not a width strategy, or an older run).
    public init?(summary: RunSummary) {
        guard let layers = summary.widthCoverage, !layers.isEmpty else { return nil }
        self.layers = layers
    }

    static let headings = ["layer", "channels trained", "coverage", "rounds min / mean / max"]

    /// The cells of each layer's row: "2 convolution", "12/16", "75.0%", "0 / 9.4 / 25".
    var rows: [[String]] {
        layers.map { layer in
            [
                "\(layer.layer) \(layer.kind)", "\(layer.trainedChannels)/\(layer.channels)",
                percent(layer.coverage),
                String(
                    format: "%d / %.1f / %d", layer.roundsMin, layer.roundsMean, layer.roundsMax),
            ]
        }
    }

    /// A heading line and one aligned line per layer.
    public func text() -> String {
        let lines = [Self.headings] + rows
        let widths = Self.headings.indices.map { index in
            lines.map { $0[index].count }.max() ?? 0
        }
        let body = lines.map { cells in
            zip(cells, widths).enumerated().map { index, pair in
                pad(pair.0, pair.1, right: index > 0)
            }.joined(separator: "  ")
        }
        return (["width coverage (channels some aggregated client trained, over the run):"] + body)
            .joined(separator: "\n")
    }

    /// An HTML table with the same rows.
    func html() -> String {
        var html = "<table class=\"tiers\"><thead><tr>"
        html += Self.headings.map { "<th>\(escapeXML($0))</th>" }.joined()
        html += "</tr></thead><tbody>"
        for cells in rows {
            html += "<tr>" + cells.map { "<td>\(escapeXML($0))</td>" }.joined() + "</tr>"
        }
        return html + "</tbody></table>\n"
    }
}
