import Datasets
import Tensors
import Testing

@Suite("Partitions of a centralised set")
struct PartitionTests {
    /// 6 000 labels, 600 per class, in a scrambled order (like a real train set).
    static let labels: [Int32] = {
        var generator = SeededGenerator(seed: 99)
        var labels = (0..<6_000).map { Int32($0 % 10) }
        labels.shuffle(using: &generator)
        return labels
    }()

    static let schemes: [PartitionScheme] = [
        .iid, .dirichlet(alpha: 0.1), .dirichlet(alpha: 1), .dirichlet(alpha: 100),
        .shards(perClient: 2), .shards(perClient: 3),
    ]

    static func split(_ scheme: PartitionScheme, clients: Int = 20, seed: UInt64 = 1) -> [[Int]] {
        partition(labels: labels, classCount: 10, clientCount: clients, scheme: scheme, seed: seed)
    }

    @Test("Every index belongs to exactly one client; no client is empty", arguments: schemes)
    func coverage(scheme: PartitionScheme) {
        for clients in [1, 7, 20, 100] {
            let parts = Self.split(scheme, clients: clients)
            #expect(parts.count == clients)
            #expect(parts.allSatisfy { !$0.isEmpty })
            #expect(
                parts.joined().sorted() == Array(0..<Self.labels.count),
                "\(scheme), \(clients) clients")
            #expect(parts.allSatisfy { $0 == $0.sorted() })
        }
    }

    @Test(
        "Deterministic per seed, different across seeds, computable by one client",
        arguments: schemes)
    func determinism(scheme: PartitionScheme) {
        let parts = Self.split(scheme)
        #expect(parts == Self.split(scheme))
        #expect(parts != Self.split(scheme, seed: 2))
        let own = partitionIndices(
            forClient: 13, labels: Self.labels, classCount: 10, clientCount: 20, scheme: scheme,
            seed: 1)
        #expect(own == parts[13])
    }

    @Test("Validation split: disjoint sorted parts covering every sample, seeded, none held")
    func validationSplits() {
        let (validation, training) = validationSplit(sampleCount: 6_000, held: 500, seed: 4)
        #expect(validation.count == 500 && training.count == 5_500)
        #expect(validation == validation.sorted() && training == training.sorted())
        #expect(Set(validation).isDisjoint(with: training))
        #expect(Set(validation + training) == Set(0..<6_000))
        #expect(validationSplit(sampleCount: 6_000, held: 500, seed: 4).validation == validation)
        #expect(validationSplit(sampleCount: 6_000, held: 500, seed: 5).validation != validation)
        // Uniform: every class appears in the held-out part, near its 10 % share.
        let counts = validation.reduce(into: [Int](repeating: 0, count: 10)) {
            $0[Int(Self.labels[$1])] += 1
        }
        #expect(counts.allSatisfy { $0 > 25 && $0 < 75 }, "\(counts)")
        let none = validationSplit(sampleCount: 10, held: 0, seed: 4)
        #expect(none.validation.isEmpty && none.training == Array(0..<10))
    }

    @Test("IID parts differ in size by at most one and see every class")
    func iidSizes() {
        let parts = Self.split(.iid, clients: 7)
        let sizes = parts.map(\.count)
        #expect(sizes.max()! - sizes.min()! <= 1)
        #expect(sizes.reduce(0, +) == 6_000)
        #expect(parts.allSatisfy { Set($0.map { Self.labels[$0] }).count == 10 })
    }

    @Test("Dirichlet label skew: strong at alpha 0.1, near uniform at alpha 1000")
    func dirichletSkew() {
        let skewed = meanLargestClassShare(Self.split(.dirichlet(alpha: 0.1)))
        let uniform = meanLargestClassShare(Self.split(.dirichlet(alpha: 1000)))
        // Measured at seed 1: 0.661 at alpha 0.1, 0.105 at alpha 1000 (uniform: 0.1).
        #expect(skewed > 0.5)
        #expect(uniform < 0.2)
    }

    @Test("Dirichlet gives every client at least min(10, N / clients) samples, even at tiny alpha")
    func dirichletMinimum() {
        for (alpha, clients) in [(0.1, 100), (0.001, 50)] {
            let parts = Self.split(.dirichlet(alpha: alpha), clients: clients)
            #expect(parts.allSatisfy { $0.count >= 10 }, "alpha \(alpha), \(clients) clients")
            #expect(parts.joined().count == 6_000)
        }
        let few = Array(Self.labels.prefix(30))
        let parts = partition(
            labels: few, classCount: 10, clientCount: 12, scheme: .dirichlet(alpha: 0.01), seed: 5)
        #expect(parts.allSatisfy { $0.count >= 2 })
        #expect(parts.joined().sorted() == Array(0..<30))
    }

    @Test("McMahan shards: equal sizes and at most perClient labels per client")
    func shards() {
        for perClient in [1, 2, 3] {
            let parts = Self.split(.shards(perClient: perClient), clients: 100)
            // 6 000 / (100 · perClient) samples per shard divides the 600 of each class.
            #expect(parts.allSatisfy { $0.count == 60 })
            for part in parts {
                #expect(Set(part.map { Self.labels[$0] }).count <= perClient)
            }
        }
        // Uneven shard sizes still cover every sample.
        let uneven = Self.split(.shards(perClient: 2), clients: 7)
        #expect(uneven.joined().sorted() == Array(0..<6_000))
        let sizes = uneven.map(\.count)
        #expect(sizes.max()! - sizes.min()! <= 2)
    }

    /// Tier groupings that sum to the client counts the other tests use, empty groups included.
    static let groupings: [[Int]] = [[1], [3, 0, 4], [8, 6, 4, 2], [40, 30, 20, 10]]

    @Test("Tiered: every index once, no empty client, deterministic, one client's part alone")
    func tieredCoverage() {
        for sizes in Self.groupings {
            let scheme = PartitionScheme.tiered(alpha: 0.5, tierAlpha: 0.3, tierSizes: sizes)
            let clients = sizes.reduce(0, +)
            let parts = Self.split(scheme, clients: clients)
            #expect(parts.count == clients)
            #expect(parts.allSatisfy { $0.count >= 10 }, "\(sizes)")
            #expect(parts.joined().sorted() == Array(0..<Self.labels.count), "\(sizes)")
            #expect(parts == Self.split(scheme, clients: clients))
            if clients > 1 { #expect(parts != Self.split(scheme, clients: clients, seed: 2)) }
            let last = clients - 1
            #expect(
                partitionIndices(
                    forClient: last, labels: Self.labels, classCount: 10, clientCount: clients,
                    scheme: scheme, seed: 1) == parts[last])
        }
    }

    @Test("Tiered: each tier holds its clients' share of the data, with its own label mix")
    func tieredSkew() {
        let sizes = [40, 30, 20, 10]
        func tierMixes(_ tierAlpha: Double) -> (totals: [Int], mixes: [[Double]]) {
            let parts = Self.split(
                .tiered(alpha: 0.5, tierAlpha: tierAlpha, tierSizes: sizes), clients: 100)
            var start = 0
            var totals: [Int] = []
            var mixes: [[Double]] = []
            for size in sizes {
                let members = parts[start..<start + size].joined()
                var counts = [Double](repeating: 0, count: 10)
                for index in members { counts[Int(Self.labels[index])] += 1 }
                totals.append(members.count)
                mixes.append(counts.map { $0 / Double(members.count) })
                start += size
            }
            return (totals, mixes)
        }
        /// Mean total-variation distance between the tiers' label distributions.
        func spread(_ mixes: [[Double]]) -> Double {
            var sum = 0.0
            var pairs = 0
            for a in mixes.indices {
                for b in mixes.indices where b > a {
                    sum += zip(mixes[a], mixes[b]).reduce(0) { $0 + abs($1.0 - $1.1) } / 2
                    pairs += 1
                }
            }
            return sum / Double(pairs)
        }
        for tierAlpha in [0.1, 1, 1000] {
            let (totals, _) = tierMixes(tierAlpha)
            // 6 000 samples over 100 clients: 60 per client. Floors in each of 10 classes
            // take less than one sample from each tier and give them to the last.
            for (total, size) in zip(totals, sizes) {
                #expect(abs(total - 60 * size) < 30, "tierAlpha \(tierAlpha): \(totals)")
            }
        }
        // Measured at seed 1: 0.87 at tierAlpha 0.1, 0.53 at 1, 0.019 at 1000 (sampling noise).
        #expect(spread(tierMixes(0.1).mixes) > 0.4)
        #expect(spread(tierMixes(1000).mixes) < 0.05)
    }
}

/// Mean over clients of the share of the client's most frequent label.
private func meanLargestClassShare(_ parts: [[Int]]) -> Double {
    let shares = parts.map { part in
        var counts = [Int](repeating: 0, count: 10)
        for index in part { counts[Int(PartitionTests.labels[index])] += 1 }
        return Double(counts.max() ?? 0) / Double(part.count)
    }
    return shares.reduce(0, +) / Double(shares.count)
}
