import Fleet
import Testing

@Suite("Cross-tier problems come with the others")
struct CrossTierProblemsTests {
    func problems(_ yaml: String) -> [String] {
        do {
            _ = try Scenario.parse(yaml: yaml, path: "x.yaml")
            return []
        } catch {
            guard case .invalid(_, let problems) = error else { return ["\(error)"] }
            return problems.map(\.description)
        }
    }

    static func file(rounds: Int, tiers: String) -> String {
        """
        name: x
        seed: 1
        clients: 10
        rounds: \(rounds)
        clientsPerRound: 2
        dataset: {name: fashion-mnist, partition: iid}
        model: {architecture: mlp, strategy: orderedLoD}
        training: {localEpochs: 1, batchSize: 32, learningRate: 0.05}
        tiers:
        \(tiers)
        """
    }

    @Test("Frozen convolutions on a model without any are reported beside a bad round count")
    func freezingWithOthers() {
        let found = problems(
            Self.file(
                rounds: -1,
                tiers: """
                      - {name: a, share: 0.5, rankFraction: 0.5, gflops: 1, uplinkMbps: 1, downlinkMbps: 1, freezeConvolutions: true}
                      - {name: b, share: 0.5, rankFraction: 1, gflops: -1, uplinkMbps: 1, downlinkMbps: 1}
                    """))
        #expect(
            found == [
                "rounds: out of range: must be at least 1, found -1",
                "tiers[1].gflops: out of range: must be in [0.001, 1000000000], found -1",
                "tiers[0].freezeConvolutions: model.architecture mlp has no convolutions to freeze",
            ], "\(found)")
    }

    @Test("Frozen convolutions of a convolutional model other than LeNet: refused as unsupported")
    func freezingCNN() {
        let found = problems(
            Self.file(
                rounds: 5,
                tiers: """
                      - {name: a, share: 0.5, rankFraction: 0.5, gflops: 1, uplinkMbps: 1, downlinkMbps: 1, freezeConvolutions: true}
                      - {name: b, share: 0.5, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
                    """
            ).replacingOccurrences(of: "architecture: mlp", with: "architecture: cnn"))
        #expect(
            found == [
                "tiers[0].freezeConvolutions: model.architecture cnn: frozen convolutions are supported for lenet only"
            ], "\(found)")
    }

    @Test("Shares and counts that do not add up are reported even when a tier has a bad key")
    func sumsWithABadTier() {
        let shares = problems(
            Self.file(
                rounds: 1,
                tiers: """
                      - {name: a, share: 0.5, rankFraction: 0.5, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
                      - {name: b, share: 0.4, rankFraction: 2, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
                    """))
        #expect(
            shares == [
                "tiers[1].rankFraction: out of range: must be in (0, 1], found 2",
                "tiers: shares sum to 0.9, expected 1",
            ], "\(shares)")
        let counts = problems(
            Self.file(
                rounds: 1,
                tiers: """
                      - {name: a, count: 3, rankFraction: 0.5, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
                      - {name: b, count: 4, rankFractio: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
                    """))
        #expect(counts.contains("tiers: counts sum to 7, expected clients (10)"), "\(counts)")
        #expect(counts.count == 3, "\(counts)")
    }

    @Test("A problem the main pass finds is reported once")
    func noRepeats() {
        let found = problems(
            Self.file(
                rounds: 1,
                tiers: """
                      - {name: a, share: 0.5, rankFraction: 0.5, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
                      - {name: b, share: 0.4, rankFraction: 1, gflops: 1, uplinkMbps: 1, downlinkMbps: 1}
                    """))
        #expect(found == ["tiers: shares sum to 0.9, expected 1"])
    }
}
