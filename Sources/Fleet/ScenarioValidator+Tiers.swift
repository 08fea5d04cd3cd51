// The tiers section of a scenario: shares or counts, rank fractions, links and availability.

extension ScenarioValidator {
    // MARK: Tiers

    mutating func tiers(_ top: Fields, clients: Int?) -> [Scenario.Tier]? {
        guard let node = requiredNode(top, "tiers") else { return nil }
        guard case .sequence(let items, _) = node else {
            report(
                "tiers", "wrong type: expected a sequence of tiers, found \(node.kindDescription)")
            return nil
        }
        guard !items.isEmpty else {
            report("tiers", "must list at least one tier")
            return nil
        }
        var tiers: [Scenario.Tier?] = []
        var firstUse: [String: Int] = [:]
        var sharesAt: [Int] = []
        var countsAt: [Int] = []
        for (index, item) in items.enumerated() {
            let path = "tiers[\(index)]"
            guard let fields = fields(item, at: path, known: Self.tierKeys) else {
                tiers.append(nil)
                continue
            }
            let name = required(fields, "name", .identifier)
            if let name {
                if let first = firstUse[name] {
                    report(
                        fields.keyPath("name"),
                        "duplicate tier name '\(name)' (first used by tiers[\(first)])")
                } else {
                    firstUse[name] = index
                }
            }
            var population: Scenario.Tier.Population?
            switch (fields.node("share"), fields.node("count")) {
            case (.some, .some):
                report(path, "has both share and count; give one")
                sharesAt.append(index)
                countsAt.append(index)
            case (.some(let share), nil):
                sharesAt.append(index)
                population = read(share, at: fields.keyPath("share"), .number(.unitOpenClosed))
                    .map { .share($0) }
            case (nil, .some(let count)):
                countsAt.append(index)
                population = read(count, at: fields.keyPath("count"), .count)
                    .map { .count($0) }
            case (nil, nil):
                report(path, "missing share or count (give one)")
            }
            let rankFraction = required(fields, "rankFraction", .number(.unitOpenClosed))
            let gflops = required(fields, "gflops", .number(.speed))
            let uplinkMbps = required(fields, "uplinkMbps", .number(.speed))
            let downlinkMbps = required(fields, "downlinkMbps", .number(.speed))
            let latencyMs = optional(fields, "latencyMs", .number(.latency), default: 0)
            let availability = optional(fields, "availability", .number(.unit), default: 1)
            let freezeConvolutions = optional(
                fields, "freezeConvolutions", .boolean, default: false)
            guard let name, let population, let rankFraction, let gflops, let uplinkMbps,
                let downlinkMbps, let latencyMs, let availability, let freezeConvolutions
            else {
                tiers.append(nil)
                continue
            }
            var tier = Scenario.Tier(
                name: name, population: population, rankFraction: rankFraction,
                gflops: gflops, uplinkMbps: uplinkMbps, downlinkMbps: downlinkMbps,
                latencyMs: latencyMs, availability: availability)
            tier.freezeConvolutions = freezeConvolutions
            tiers.append(tier)
        }

        let onlyShares = Set(sharesAt).subtracting(countsAt).sorted()
        let onlyCounts = Set(countsAt).subtracting(sharesAt).sorted()
        if !onlyShares.isEmpty, !onlyCounts.isEmpty {
            func list(_ indices: [Int]) -> String {
                indices.map { "tiers[\($0)]" }.joined(separator: ", ")
            }
            report(
                "tiers",
                "mixes share (\(list(onlyShares))) and count (\(list(onlyCounts))); "
                    + "use one of them for every tier")
            return nil
        }
        let valid = tiers.compactMap { $0 }
        guard valid.count == items.count else { return nil }

        let shares = valid.compactMap { if case .share(let s) = $0.population { s } else { nil } }
        let counts = valid.compactMap { if case .count(let c) = $0.population { c } else { nil } }
        if !shares.isEmpty {
            let sum = shares.reduce(0, +)
            if abs(sum - 1) > Self.shareTolerance {
                report("tiers", "shares sum to \(format(sum)), expected 1")
                return nil
            }
            if let clients {
                let sizes = Scenario.apportion(clients, shares: shares)
                for (index, size) in sizes.enumerated() where size == 0 {
                    report(
                        "tiers[\(index)].share",
                        "\(format(shares[index])) of \(clients) clients rounds to no client")
                }
            }
        } else if let clients, counts.reduce(0, +) != clients {
            report("tiers", "counts sum to \(counts.reduce(0, +)), expected clients (\(clients))")
            return nil
        }
        return valid
    }
}
