import Fleet
import Testing

@Suite("Fleet expansion")
struct ClientSpecTests {
    func scenario(clients: Int, tiers: String, clientsPerRound: Int = 1) throws -> Scenario {
        let head = minimalYAML.components(separatedBy: "tiers:\n")[0]
            .replacingOccurrences(of: "clients: 10", with: "clients: \(clients)")
            .replacingOccurrences(
                of: "clientsPerRound: 4", with: "clientsPerRound: \(clientsPerRound)")
        return try Scenario.parse(yaml: head + "tiers:\n" + tiers)
    }

    static let fourTiers = """
          - {name: low, share: 0.4, rankFraction: 0.125, gflops: 2, uplinkMbps: 5, downlinkMbps: 20}
          - {name: mid, share: 0.3, rankFraction: 0.25, gflops: 5, uplinkMbps: 10, downlinkMbps: 40}
          - {name: high, share: 0.2, rankFraction: 0.5, gflops: 10, uplinkMbps: 20, downlinkMbps: 80}
          - {name: full, share: 0.1, rankFraction: 1, gflops: 20, uplinkMbps: 50, downlinkMbps: 200}

        """

    @Test("100 clients at 40/30/20/10 % → 40/30/20/10, contiguous ranges in tier order")
    func hundredClients() throws {
        let scenario = try scenario(clients: 100, tiers: Self.fourTiers)
        #expect(scenario.clientsPerTier == [40, 30, 20, 10])
        #expect(scenario.tierRanges == [0..<40, 40..<70, 70..<90, 90..<100])
        let fleet = scenario.fleet()
        #expect(fleet.map(\.index) == Array(0..<100))
        #expect(fleet[0].tier.name == "low")
        #expect(fleet[39].tierIndex == 0)
        #expect(fleet[40].tierIndex == 1)
        #expect(fleet[89].tier.name == "high")
        #expect(fleet[99].tier == scenario.tiers[3])
    }

    @Test(
        "Odd fleet sizes: counts sum exactly and each is within one of its quota",
        arguments: [7, 10, 13, 33, 99, 101, 997, 1001])
    func oddSizes(clients: Int) throws {
        let scenario = try scenario(clients: clients, tiers: Self.fourTiers)
        let counts = scenario.clientsPerTier
        #expect(counts.reduce(0, +) == clients)
        #expect(scenario.fleet().count == clients)
        for (count, share) in zip(counts, [0.4, 0.3, 0.2, 0.1]) {
            #expect(abs(Double(count) - share * Double(clients)) < 1)
        }
    }

    @Test("Largest remainder: 7 clients at 40/30/20/10 % → 3/2/1/1")
    func largestRemainder() throws {
        // Quotas 2.8, 2.1, 1.4, 0.7: floors 2, 2, 1, 0 leave one seat each for .8 and .7.
        #expect(try scenario(clients: 7, tiers: Self.fourTiers).clientsPerTier == [3, 2, 1, 1])
        // Quotas 4.0, 3.0, 2.0, 1.0 despite 0.3 · 10 = 3.0000000000000004.
        #expect(try scenario(clients: 10, tiers: Self.fourTiers).clientsPerTier == [4, 3, 2, 1])
    }

    @Test("Thirds written with finite decimals still apportion every client")
    func thirds() throws {
        let tiers = """
              - {name: a, share: 0.333333, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
              - {name: b, share: 0.333333, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
              - {name: c, share: 0.333334, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}

            """
        #expect(try scenario(clients: 10, tiers: tiers).clientsPerTier == [3, 3, 4])
        #expect(try scenario(clients: 3, tiers: tiers).clientsPerTier == [1, 1, 1])
    }

    @Test("Counts are used as written")
    func counts() throws {
        let tiers = """
              - {name: a, count: 1, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
              - {name: b, count: 9, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}

            """
        let scenario = try scenario(clients: 10, tiers: tiers)
        #expect(scenario.clientsPerTier == [1, 9])
        #expect(scenario.fleet().filter { $0.tierIndex == 1 }.map(\.index) == Array(1..<10))
    }

    @Test("Kept rank: ceil(p · r), at least 1, at most r, robust to binary rounding")
    func keptRank() throws {
        let tiers = try scenario(clients: 100, tiers: Self.fourTiers).tiers
        #expect([6, 16, 120, 84, 10].map { tiers[0].keptRank(outOf: $0) } == [1, 2, 15, 11, 2])
        // Capped (budget growth): the smaller of the tier's fraction and the cap.
        #expect(
            [6, 16, 120, 84, 10].map { tiers[3].keptRank(outOf: $0, cap: 0.125) } == [
                1, 2, 15, 11, 2,
            ])
        #expect(tiers[0].keptRank(outOf: 120, cap: 0.5) == 15)
        #expect(tiers[3].keptRank(outOf: 7) == 7)
        #expect(tiers[0].keptRank(outOf: 1) == 1)
        #expect(tiers[0].keptRank(outOf: 0) == 0)
        let seventy = try scenario(
            clients: 10,
            tiers:
                "  - {name: a, share: 1, rankFraction: 0.7, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}\n"
        )
        #expect(seventy.tiers[0].keptRank(outOf: 10) == 7)
        #expect(seventy.tiers[0].keptRank(outOf: 100) == 70)
    }
}
