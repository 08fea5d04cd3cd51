import Foundation
import RunRecords

/// The per-tier table of a run: bytes against dense FedAvg, accuracy and cost per tier, and a
/// total row. One definition of its columns and cells, rendered as aligned text (`fleet`,
/// `coordinator`, `compare`) or as an HTML table (`report`).
public struct TierTable: Sendable {
    /// A column, in the order a table lists them.
    public enum Column: Sendable, CaseIterable {
        case tier, rankFraction, clients, participations, bytes, denseBytes, ratio, accuracy
        case parameters, macs, trainingMFLOPs, ranks, deploys, dataReached

        /// The heading in a text table (short) and in an HTML table.
        public var title: (text: String, html: String) {
            switch self {
            case .tier: ("tier", "tier")
            case .rankFraction: ("p", "rank fraction")
            case .clients: ("clients", "clients")
            case .participations: ("participations", "participations")
            case .bytes: ("bytes", "bytes")
            case .denseBytes: ("dense FedAvg", "dense FedAvg")
            case .ratio: ("ratio", "ratio")
            case .accuracy: ("accuracy", "accuracy")
            case .parameters: ("parameters", "parameters")
            case .macs: ("MACs", "MACs")
            case .trainingMFLOPs: ("train MFLOP/sample", "training MFLOP / sample")
            case .ranks: ("ranks", "ranks")
            case .deploys: ("deploys", "deploys")
            case .dataReached: ("data reached", "data reached (clients, samples)")
            }
        }

        /// Text columns are right-aligned, but for names and the last, free-form column.
        var isLeftAligned: Bool { [.tier, .deploys, .dataReached, .ranks].contains(self) }

        /// The narrowest a text column is, so that short cells still line up with the
        /// headings as `fleet` has always printed them.
        var minimumWidth: Int { self == .tier || self == .deploys ? 8 : 0 }
    }

    public let columns: [Column]
    /// The tier of each row.
    public let tiers: [String]
    /// One cell per column, per tier.
    public let rows: [[String]]
    /// The totals over the tiers (empty where a column has none).
    public let total: [String]

    /// The table of `summary` with `columns`; `deploys` is dropped when no tier deploys
    /// another tier's budget.
    public init(summary: RunSummary, columns: [Column]) {
        let deploys = summary.tiers.contains { $0.deployedBudget != nil }
        let columns = columns.filter { $0 != .deploys || deploys }
        let fullFLOPs = summary.tiers.max { $0.rankFraction < $1.rankFraction }?
            .trainingFlopsPerSample
        self.columns = columns
        tiers = summary.tiers.map(\.tier)
        rows = summary.tiers.map { tier in
            columns.map { Self.cell($0, of: tier, fullFLOPs: fullFLOPs) }
        }
        let bytes = summary.bytesUp + summary.bytesDown
        total = columns.map { column in
            switch column {
            case .tier: "total"
            case .clients: "\(summary.tiers.map(\.clients).reduce(0, +))"
            case .participations: "\(summary.tiers.map(\.participations).reduce(0, +))"
            case .bytes: formatBytes(bytes)
            case .denseBytes: formatBytes(summary.denseEquivalentBytes)
            case .ratio: Self.ratio(bytes, summary.denseEquivalentBytes)
            default: ""
            }
        }
    }

    static func cell(
        _ column: Column, of tier: RunSummary.TierSummary, fullFLOPs: Double?
    ) -> String {
        switch column {
        case .tier: tier.tier
        case .rankFraction: String(format: "%.3f", tier.rankFraction)
        case .clients: "\(tier.clients)"
        case .participations: "\(tier.participations)"
        case .bytes: formatBytes(tier.bytes)
        case .denseBytes: formatBytes(tier.denseEquivalentBytes)
        case .ratio: ratio(tier.bytes, tier.denseEquivalentBytes)
        case .accuracy: tier.accuracy.map { percent($0, digits: 2) } ?? "-"
        case .parameters: "\(tier.parameters)"
        case .macs: tier.macs.map(String.init) ?? "-"
        case .trainingMFLOPs:
            tier.trainingFlopsPerSample.map { flops in
                String(format: "%.2f", flops / 1e6)
                    + (fullFLOPs.map {
                        $0 > 0 && $0 != flops ? String(format: " (%.2f)", flops / $0) : ""
                    } ?? "")
            } ?? "-"
        case .ranks:
            tier.ranks.isEmpty ? "full" : tier.ranks.map(String.init).joined(separator: "/")
        case .deploys: tier.deployedBudget ?? "-"
        case .dataReached: dataReached(tier)
        }
    }

    /// `bytes` as a share of `dense`: "31.2%", or "-" without a dense figure.
    static func ratio(_ bytes: Int, _ dense: Int) -> String {
        dense > 0 ? percent(Double(bytes) / Double(dense)) : "-"
    }

    /// Aligned text: a heading line and a line per tier (`withTotal`: and the total row),
    /// columns two spaces apart.
    public func text(withTotal: Bool = false) -> String {
        let lines = [columns.map(\.title.text)] + rows + (withTotal ? [total] : [])
        let widths = columns.indices.map { index in
            max(columns[index].minimumWidth, lines.map { $0[index].count }.max() ?? 0)
        }
        return lines.map { cells in
            zip(columns.indices, cells).map { index, cell in
                pad(cell, widths[index], right: !columns[index].isLeftAligned)
            }.joined(separator: "  ").replacingOccurrences(
                of: "\\s+$", with: "", options: .regularExpression)
        }.joined(separator: "\n")
    }
}
