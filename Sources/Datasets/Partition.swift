import Tensors

/// How a centralised labelled set is split among clients.
public enum PartitionScheme: Sendable, Equatable {
    /// Shuffle, then cut into `clientCount` parts whose sizes differ by at most one.
    case iid
    /// Label skew (Hsu, Qi & Brown 2019): each class is spread over the clients with
    /// proportions drawn from Dir(alpha · 1). Small `alpha` (0.1) gives each client few
    /// classes; large `alpha` (100) approaches IID.
    case dirichlet(alpha: Double)
    /// McMahan et al. 2017 ("Communication-Efficient Learning of Deep Networks from
    /// Decentralized Data"): sort by label, cut into `clientCount · perClient` shards, deal
    /// `perClient` random shards to each client (the paper's pathological non-IID uses 2).
    case shards(perClient: Int)
    /// Label skew that follows the device tiers: the clients come in consecutive groups of
    /// `tierSizes[t]` (a scenario's tiers); group `t` draws a label mix
    /// `q_t ~ Dir(tierAlpha · 1)`, and within a group each class is spread over its clients
    /// by `Dir(alpha · 1)` as in `dirichlet`. Small `tierAlpha` gives each group its own
    /// classes; large approaches `dirichlet(alpha)`. Groups hold data in proportion to their
    /// client counts.
    case tiered(alpha: Double, tierAlpha: Double, tierSizes: [Int])
}

/// Splits samples among clients: the sample indices of each client, ascending.
///
/// The result is a deterministic function of its arguments (no global state, platform
/// independent), so every client can compute its own part from the dataset's labels, the
/// seed, the scheme and its index, and no training data needs to cross the wire. Each index
/// in `0..<labels.count` appears in exactly one client's list.
///
/// - `iid`: a seeded shuffle cut into parts of `⌊N / clientCount⌋` or one more samples (the
///   first `N mod clientCount` clients get the extra one).
/// - `dirichlet(alpha)`: for each class in turn, its indices are shuffled, proportions
///   `p ~ Dir(alpha · 1)` over the clients are drawn, and client `j` gets the slice between
///   `⌊N_c · Σ_{i<j} p_i⌋` and `⌊N_c · Σ_{i≤j} p_i⌋`. As in NIID-Bench (Li et al. 2022), the
///   whole draw is repeated until every client holds at least `min(10, ⌊N / clientCount⌋)`
///   samples. After 100 failed draws the last draw is repaired by moving single samples from
///   the currently largest client to each client still short, so no client is ever below the
///   minimum. (Measured on 30 000 Fashion-MNIST labels over 100 clients: alpha 0.1 succeeds
///   within the draws, alpha 0.05 needs the repair, which then leaves several clients at
///   exactly 10 samples.)
/// - `shards(perClient)`: indices sorted by (label, index) and cut into
///   `S = clientCount · perClient` contiguous shards of `⌊N / S⌋` or one more samples; a seeded
///   permutation of the shards deals shards `perClient · j ..< perClient · (j + 1)` to client
///   `j`. When every class size is a multiple of the shard size (Fashion-MNIST with 100 clients
///   and 2 shards each: 6 000 / 300), each shard holds one label, so a client sees at most
///   `perClient` labels; otherwise a shard may straddle two.
///
/// - `tiered(alpha, tierAlpha, tierSizes)`: first the group label mixes
///   `q_t ~ Dir(tierAlpha · 1)` are drawn, group by group; the class-by-group table
///   `n_t · q_t[c]` is fitted (iterative proportional fitting, 500 sweeps, ending on the
///   classes) to the class sizes and to group totals `N · tierSizes[t] / clientCount`, so that
///   each group holds its share of the data with its own label mix; each class's shuffled
///   indices are cut between the groups by that table (cumulative floors), a group short of
///   `min(10, ⌊N / clientCount⌋)` samples per client takes single samples from the group with
///   the most to spare, and each group's samples are split among its clients by
///   `dirichlet(alpha)` (groups in order, one generator).
///
/// The generator is `SeededGenerator.derived(seed: seed, stream: 0x50_4152_5449_544E)`
/// ("PARTITN"), a stream of its own so that reusing the seed elsewhere (model initialisation)
/// draws other numbers.
///
/// - Precondition: `clientCount ≥ 1`, `labels.count ≥ clientCount` (no client is empty),
///   labels in `0..<classCount`, `alpha > 0`, `1 ≤ clientCount · perClient ≤ labels.count`;
///   for `tiered`, `tierAlpha > 0`, no negative size and sizes summing to `clientCount`.
/// - Complexity: O(N) for `iid` and `shards` (plus the sort), O(N · draws) for `dirichlet` and
///   `tiered` (plus 500 · groups · classes for the fitting).
public func partition(
    labels: [Int32], classCount: Int, clientCount: Int, scheme: PartitionScheme, seed: UInt64
) -> [[Int]] {
    precondition(clientCount >= 1, "client count \(clientCount) must be positive")
    precondition(classCount >= 1, "class count \(classCount) must be positive")
    precondition(
        labels.count >= clientCount,
        "\(labels.count) samples cannot give each of \(clientCount) clients one")
    if let bad = labels.firstIndex(where: { $0 < 0 || Int($0) >= classCount }) {
        preconditionFailure("label \(labels[bad]) of sample \(bad) is outside 0..<\(classCount)")
    }
    var generator = SeededGenerator.derived(seed: seed, stream: partitionStream)
    var parts: [[Int]]
    switch scheme {
    case .iid:
        parts = iidPartition(sampleCount: labels.count, clientCount: clientCount, using: &generator)
    case .dirichlet(let alpha):
        precondition(alpha > 0 && alpha.isFinite, "Dirichlet alpha \(alpha) must be positive")
        parts = dirichletPartition(
            labels: labels, classCount: classCount, clientCount: clientCount, alpha: alpha,
            using: &generator)
    case .shards(let perClient):
        precondition(perClient >= 1, "shards per client \(perClient) must be positive")
        let (shardCount, overflow) = clientCount.multipliedReportingOverflow(by: perClient)
        precondition(
            !overflow && shardCount <= labels.count,
            "\(clientCount) × \(perClient) shards from \(labels.count) samples")
        parts = shardPartition(
            labels: labels, clientCount: clientCount, perClient: perClient, using: &generator)
    case .tiered(let alpha, let tierAlpha, let tierSizes):
        precondition(alpha > 0 && alpha.isFinite, "Dirichlet alpha \(alpha) must be positive")
        precondition(
            tierAlpha > 0 && tierAlpha.isFinite, "tier alpha \(tierAlpha) must be positive")
        precondition(
            tierSizes.allSatisfy { $0 >= 0 } && tierSizes.reduce(0, +) == clientCount,
            "tier sizes \(tierSizes) must be non-negative and sum to \(clientCount)")
        parts = tieredPartition(
            labels: labels, classCount: classCount, alpha: alpha, tierAlpha: tierAlpha,
            tierSizes: tierSizes, using: &generator)
    }
    for client in parts.indices { parts[client].sort() }
    return parts
}

/// The sample indices of client `client` alone: `partition(...)[client]`, which it computes
/// (the cost is that of the whole partition, which is cheap next to training).
public func partitionIndices(
    forClient client: Int, labels: [Int32], classCount: Int, clientCount: Int,
    scheme: PartitionScheme, seed: UInt64
) -> [Int] {
    precondition(client >= 0 && client < clientCount, "client \(client) of \(clientCount)")
    return partition(
        labels: labels, classCount: classCount, clientCount: clientCount, scheme: scheme,
        seed: seed)[client]
}

/// A held-out validation set of `held` of `sampleCount` samples, drawn uniformly without
/// replacement, and the rest (the training pool a partition splits among clients); both
/// sorted. The generator is `SeededGenerator.derived(seed: seed, stream: 0x56_414C_4944)`
/// ("VALID"), so the split does not move when other streams change.
///
/// - Precondition: `0 ≤ held ≤ sampleCount`.
/// - Complexity: O(sampleCount).
public func validationSplit(
    sampleCount: Int, held: Int, seed: UInt64
) -> (validation: [Int], training: [Int]) {
    precondition(
        held >= 0 && held <= sampleCount, "cannot hold out \(held) of \(sampleCount) samples")
    guard held > 0 else { return ([], Array(0..<sampleCount)) }
    var generator = SeededGenerator.derived(seed: seed, stream: validationStream)
    var order = Array(0..<sampleCount)
    order.shuffleReproducibly(using: &generator)
    return (order[..<held].sorted(), order[held...].sorted())
}

/// The stream label of the validation split, ASCII "VALID".
private let validationStream: UInt64 = 0x56_414C_4944

/// The stream label of partition generators, ASCII "PARTITN".
private let partitionStream: UInt64 = 0x50_4152_5449_544E

private func iidPartition(
    sampleCount: Int, clientCount: Int, using generator: inout some RandomNumberGenerator
) -> [[Int]] {
    var order = Array(0..<sampleCount)
    order.shuffleReproducibly(using: &generator)
    let base = sampleCount / clientCount
    let extra = sampleCount % clientCount
    var parts: [[Int]] = []
    var start = 0
    for client in 0..<clientCount {
        let size = base + (client < extra ? 1 : 0)
        parts.append(Array(order[start..<start + size]))
        start += size
    }
    return parts
}

private func dirichletPartition(
    labels: [Int32], classCount: Int, clientCount: Int, alpha: Double,
    using generator: inout some RandomNumberGenerator
) -> [[Int]] {
    var byClass = [[Int]](repeating: [], count: classCount)
    for (index, label) in labels.enumerated() { byClass[Int(label)].append(index) }
    let minimumSize = min(10, labels.count / clientCount)
    let maximumDraws = 100

    var parts: [[Int]] = []
    for _ in 0..<maximumDraws {
        parts = [[Int]](repeating: [], count: clientCount)
        for var members in byClass where !members.isEmpty {
            members.shuffleReproducibly(using: &generator)
            let proportions = generator.nextDirichlet(concentration: alpha, count: clientCount)
            var cumulative = 0.0
            var start = 0
            for client in 0..<clientCount {
                cumulative += proportions[client]
                let end =
                    client == clientCount - 1
                    ? members.count
                    : min(members.count, Int((cumulative * Double(members.count)).rounded(.down)))
                if end > start { parts[client].append(contentsOf: members[start..<end]) }
                start = max(start, end)
            }
        }
        if parts.allSatisfy({ $0.count >= minimumSize }) { return parts }
    }
    // Repair: move samples one at a time from the largest client (the first of the largest)
    // to each client still short. A heap finds the largest in O(log clientCount): a fleet of
    // 10 000 clients needs tens of thousands of moves.
    var largest = LargestFirst(parts.map(\.count))
    for client in 0..<clientCount {
        while parts[client].count < minimumSize {
            let donor = largest.first { parts[$0].count }
            guard parts[donor].count > minimumSize, let moved = parts[donor].popLast() else {
                break  // unreachable while labels.count ≥ clientCount · minimumSize
            }
            largest.update(donor, to: parts[donor].count)
            parts[client].append(moved)
        }
    }
    return parts
}

private func tieredPartition(
    labels: [Int32], classCount: Int, alpha: Double, tierAlpha: Double, tierSizes: [Int],
    using generator: inout some RandomNumberGenerator
) -> [[Int]] {
    let clientCount = tierSizes.reduce(0, +)
    var byClass = [[Int]](repeating: [], count: classCount)
    for (index, label) in labels.enumerated() { byClass[Int(label)].append(index) }
    let mixes = tierSizes.map { _ in
        generator.nextDirichlet(concentration: tierAlpha, count: classCount)
    }
    let table = fittedTable(
        mixes: mixes,
        groupTotals: tierSizes.map { Double(labels.count) * Double($0) / Double(clientCount) },
        classTotals: byClass.map { Double($0.count) })

    var pools = [[Int]](repeating: [], count: tierSizes.count)
    for (label, var members) in byClass.enumerated() where !members.isEmpty {
        members.shuffleReproducibly(using: &generator)
        var cumulative = 0.0
        var start = 0
        for group in tierSizes.indices {
            cumulative += table[group][label]
            let end =
                group == tierSizes.count - 1
                ? members.count : min(members.count, Int(cumulative.rounded(.down)))
            if end > start { pools[group].append(contentsOf: members[start..<end]) }
            start = max(start, end)
        }
    }
    // Floors can leave a group a few samples short of its clients' minimum (only when the
    // data barely covers the fleet): move single samples from the group with most to spare.
    let perClient = min(10, labels.count / clientCount)
    for group in tierSizes.indices {
        while pools[group].count < tierSizes[group] * perClient {
            let spare = tierSizes.indices.map { pools[$0].count - tierSizes[$0] * perClient }
            guard let donor = spare.indices.max(by: { spare[$0] < spare[$1] }), spare[donor] > 0,
                let moved = pools[donor].popLast()
            else { break }  // unreachable while labels.count ≥ clientCount · perClient
            pools[group].append(moved)
        }
    }

    var parts: [[Int]] = []
    for (group, pool) in pools.enumerated() where tierSizes[group] > 0 {
        let groupParts = dirichletPartition(
            labels: pool.map { labels[$0] }, classCount: classCount,
            clientCount: tierSizes[group], alpha: alpha, using: &generator)
        parts += groupParts.map { $0.map { pool[$0] } }
    }
    return parts
}

/// The class-by-group table fitted to both margins (iterative proportional fitting).
///
/// Starts from `total_t · mix_t[c]` (entries floored at 1e-12, so every row and column can be
/// scaled) and fits it to the row totals `groupTotals` and the column totals `classTotals`,
/// which have the same sum; a row whose total is 0 stays 0. Ends on the columns, so each class
/// is cut exactly.
private func fittedTable(
    mixes: [[Double]], groupTotals: [Double], classTotals: [Double]
) -> [[Double]] {
    var table = zip(mixes, groupTotals).map { mix, total in
        total > 0 ? mix.map { max($0, 1e-12) * total } : mix.map { _ in 0 }
    }
    for _ in 0..<500 {
        for group in table.indices where groupTotals[group] > 0 {
            let sum = table[group].reduce(0, +)
            for label in table[group].indices { table[group][label] *= groupTotals[group] / sum }
        }
        for label in classTotals.indices {
            let sum = table.reduce(0) { $0 + $1[label] }
            guard sum > 0 else { continue }
            for group in table.indices { table[group][label] *= classTotals[label] / sum }
        }
    }
    return table
}

/// A binary max-heap of client indices by size, ties to the smaller index: `first` is the
/// index a scan for the first maximum would find. Entries whose size changed outside the heap
/// are corrected as they surface (a grown client, which here never is the largest).
private struct LargestFirst {
    private var heap: [(size: Int, index: Int)]

    init(_ sizes: [Int]) {
        heap = sizes.enumerated().map { ($0.element, $0.offset) }
        for position in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(position) }
    }

    private static func precedes(_ a: (size: Int, index: Int), _ b: (size: Int, index: Int)) -> Bool
    {
        a.size != b.size ? a.size > b.size : a.index < b.index
    }

    /// The first index of the largest size, given each index's current size.
    mutating func first(currentSize: (Int) -> Int) -> Int {
        while heap[0].size != currentSize(heap[0].index) {
            heap[0].size = currentSize(heap[0].index)
            siftDown(0)
        }
        return heap[0].index
    }

    /// The top entry's index shrank to `size`.
    mutating func update(_ index: Int, to size: Int) {
        precondition(heap[0].index == index, "only the top entry is updated")
        heap[0].size = size
        siftDown(0)
    }

    private mutating func siftDown(_ start: Int) {
        var position = start
        while true {
            let left = 2 * position + 1
            let right = left + 1
            var best = position
            if left < heap.count, Self.precedes(heap[left], heap[best]) { best = left }
            if right < heap.count, Self.precedes(heap[right], heap[best]) { best = right }
            if best == position { return }
            heap.swapAt(position, best)
            position = best
        }
    }
}

private func shardPartition(
    labels: [Int32], clientCount: Int, perClient: Int,
    using generator: inout some RandomNumberGenerator
) -> [[Int]] {
    let sorted = labels.indices.sorted { (labels[$0], $0) < (labels[$1], $1) }
    let shardCount = clientCount * perClient
    let base = sorted.count / shardCount
    let extra = sorted.count % shardCount
    var shardStarts = [0]
    for shard in 0..<shardCount {
        shardStarts.append(shardStarts[shard] + base + (shard < extra ? 1 : 0))
    }
    var dealt = Array(0..<shardCount)
    dealt.shuffleReproducibly(using: &generator)
    return (0..<clientCount).map { client in
        dealt[client * perClient..<(client + 1) * perClient].flatMap { shard in
            sorted[shardStarts[shard]..<shardStarts[shard + 1]]
        }
    }
}
