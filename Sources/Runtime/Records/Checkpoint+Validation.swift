import Federation
import Fleet
import LowRank
import Tensors

extension CoordinatorCheckpoint {
    /// Headers larger than this are refused before they are decoded (a checkpoint of the
    /// shipped scenarios has a header of a few kB).
    static let maximumHeaderLength = 1 << 20
    /// The largest byte or frame counter read back: 2⁵³ (9 PB), so the counters a resumed run
    /// adds to stay exact in a `Double` and can never overflow an `Int`.
    static let maximumCounter = 1 << 53
    /// The most seconds read back (about 31 700 years): finite, with the same headroom.
    static let maximumSeconds = 1e12

    /// The first field of a decoded header that no coordinator could have written, as
    /// (field, value, expected); `nil` when every field is in range.
    ///
    /// Ranks must fit the architecture (as in a model file), rounds the scenario's range,
    /// counters `0...maximumCounter`, times `0...maximumSeconds`, accuracies `[0, 1]`.
    static func firstInvalidField(
        of header: Header
    ) -> (field: String, value: String, expected: String)? {
        let maxRanks = header.architecture.lowRankLayerIndices.map {
            header.architecture.layers[$0].maxRank ?? 0
        }
        guard header.keptRanks.count == maxRanks.count else {
            return (
                "keptRanks", "\(header.keptRanks.count) layers",
                "one rank per low-rank layer (\(maxRanks.count))"
            )
        }
        for (index, (kept, maximum)) in zip(header.keptRanks, maxRanks).enumerated()
        where !(0...maximum).contains(kept) {
            return ("keptRanks[\(index)]", "\(kept)", "in [0, \(maximum)] (the layer's max rank)")
        }
        let rounds = 0...Scenario.maximumRounds
        guard rounds.contains(header.round) else {
            return ("round", "\(header.round)", "in [0, \(Scenario.maximumRounds)]")
        }
        let totals = header.totals
        var counters: [(String, Int)] = [
            ("bytesUp", totals.bytesUp), ("bytesDown", totals.bytesDown),
            ("denseEquivalentBytes", totals.denseEquivalentBytes),
            ("transportBytesSent", totals.earlierTransportBytesSent),
            ("transportBytesReceived", totals.earlierTransportBytesReceived),
            ("lateUpdates", totals.lateUpdates),
        ]
        // Names come from the file: escaped like peer text, since they reach the terminal.
        for (name, bytes) in totals.tierBytes.sorted(by: { $0.key < $1.key }) {
            let tier = PeerText.escaped(name)
            counters += [
                ("tierBytes.\(tier).up", bytes.up), ("tierBytes.\(tier).down", bytes.down),
                ("tierBytes.\(tier).denseEquivalent", bytes.denseEquivalent),
            ]
        }
        for (name, table) in [
            ("participations", totals.participations), ("rejected", totals.rejected),
        ] {
            for (key, count) in table.sorted(by: { $0.key < $1.key }) {
                counters.append(("\(name).\(PeerText.escaped(key))", count))
            }
        }
        for (field, value) in counters where !(0...maximumCounter).contains(value) {
            return (field, "\(value)", "in [0, 2^53]")
        }
        let times = [
            ("virtualSeconds", totals.virtualSeconds),
            ("wallSeconds", totals.earlierWallSeconds),
            ("clientComputeSeconds", totals.clientComputeSeconds),
        ]
        for (field, value) in times where !(value >= 0 && value <= maximumSeconds) {
            return (field, "\(value)", "finite seconds in [0, 1e12]")
        }
        for (tier, accuracy) in header.lastAccuracy.sorted(by: { $0.key < $1.key })
        where !(accuracy >= 0 && accuracy <= 1) {
            return ("lastAccuracy.\(PeerText.escaped(tier))", "\(accuracy)", "in [0, 1]")
        }
        // A cooldown ends a few rounds after the round that set it.
        let cooldownRounds = 0...(Scenario.maximumRounds + Cooldowns.maximumRounds + 1)
        for (client, until) in header.standing.cooldownUntil.sorted(by: { $0.key < $1.key })
        where !cooldownRounds.contains(until) {
            return ("cooldownUntil.\(client)", "\(until)", "a round in \(cooldownRounds)")
        }
        // A streak of time-outs in a row is at most one per round.
        for (client, streak) in header.standing.timeoutStreaks.sorted(by: { $0.key < $1.key })
        where !(1...Scenario.maximumRounds).contains(streak) {
            return ("timeoutStreaks.\(client)", "\(streak)", "in 1...\(Scenario.maximumRounds)")
        }
        return nil
    }

    /// The first tensor set holding a NaN or an infinity (no server step writes one).
    static func firstNonFiniteTensorSet(
        _ sets: [(field: String, tensors: [Tensor])]
    ) -> String? {
        sets.first { $0.tensors.contains { !$0.scalars.allSatisfy(\.isFinite) } }?.field
    }
}
