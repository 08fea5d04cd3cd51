/// One client of the fleet: its index and the device tier it belongs to.
public struct ClientSpec: Sendable, Equatable, Hashable {
    /// Position in the fleet, `0..<scenario.clients`; also seeds the client's data partition.
    public let index: Int
    /// Position of the tier in `scenario.tiers`.
    public let tierIndex: Int
    /// The tier: rank fraction, speed, links, availability.
    public let tier: Scenario.Tier

    public init(index: Int, tierIndex: Int, tier: Scenario.Tier) {
        self.index = index
        self.tierIndex = tierIndex
        self.tier = tier
    }
}

extension Scenario {
    /// Clients per tier, in tier order; sums to `clients` exactly.
    ///
    /// Counts are taken as written. Shares are apportioned by the largest-remainder
    /// (Hamilton) method: each tier gets ⌊share · clients⌋, then the clients left over go one
    /// each to the tiers with the largest fractional parts, earlier tiers first on ties.
    public var clientsPerTier: [Int] {
        let shares = tiers.map { tier -> Double in
            if case .share(let share) = tier.population { share } else { 0 }
        }
        if tiers.allSatisfy({ if case .count = $0.population { true } else { false } }) {
            return tiers.map { if case .count(let count) = $0.population { count } else { 0 } }
        }
        return Self.apportion(clients, shares: shares)
    }

    /// The fleet, deterministically: tiers in file order take contiguous index ranges, so
    /// tier 0 holds clients `0..<clientsPerTier[0]`, tier 1 the next `clientsPerTier[1]`, ….
    ///
    /// The assignment depends only on the tiers and `clients`, never on the seed, so a
    /// client index names the same device in every run of the scenario.
    public func fleet() -> [ClientSpec] {
        var specs: [ClientSpec] = []
        specs.reserveCapacity(clients)
        for (tierIndex, count) in clientsPerTier.enumerated() {
            for _ in 0..<count {
                specs.append(
                    ClientSpec(index: specs.count, tierIndex: tierIndex, tier: tiers[tierIndex]))
            }
        }
        return specs
    }

    /// The index range of each tier's clients in ``fleet()``.
    public var tierRanges: [Range<Int>] {
        var start = 0
        return clientsPerTier.map { count in
            defer { start += count }
            return start..<(start + count)
        }
    }

    /// Largest-remainder apportionment of `total` seats by `shares` (normalised by their
    /// sum); a 1e-9 tolerance keeps `0.7 · 100` at 70 despite binary rounding.
    static func apportion(_ total: Int, shares: [Double]) -> [Int] {
        let sum = shares.reduce(0, +)
        guard sum > 0 else { return shares.map { _ in 0 } }
        let quotas = shares.map { $0 / sum * Double(total) }
        var seats = quotas.map { Int(($0 + 1e-9).rounded(.down)) }
        let remainders = quotas.enumerated().map {
            ($0.offset, $0.element - Double(seats[$0.offset]))
        }
        let left = total - seats.reduce(0, +)
        let order = remainders.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        for (index, _) in order.prefix(max(0, left)) { seats[index] += 1 }
        // Quotas summing a hair above `total` could overshoot: take back from the smallest
        // remainders.
        for (index, _) in order.reversed().filter({ seats[$0.0] > 0 }).prefix(max(0, -left)) {
            seats[index] -= 1
        }
        return seats
    }
}
