/// The natural partition of a data set whose samples come from writers (LEAF): every writer's
/// samples on one client, writers dealt round-robin.
///
/// The samples are numbered writer after writer (writer `w` owns the `samplesPerWriter[w]`
/// consecutive rows after those of writers `0..<w`, as ``LEAFFormat`` numbers them), and
/// writer `w` goes to client `w mod clientCount`. With as many clients as writers each client
/// is one writer, as in LEAF's own experiments; with fewer, each client holds `⌊W / C⌋` or
/// one more writers, so that a fleet of 100 can run on FEMNIST's 3 550 writers. The deal
/// follows the writers' order and uses no seed: a client index names the same writers in
/// every run. Each client's rows come back ascending.
///
/// - Precondition: `1 ≤ clientCount ≤ samplesPerWriter.count` (no client left without a
///   writer; callers check this against the data and throw first), counts positive.
/// - Complexity: O(samples).
public func naturalPartition(samplesPerWriter: [Int], clientCount: Int) -> [[Int]] {
    precondition(
        clientCount >= 1 && clientCount <= samplesPerWriter.count,
        "\(samplesPerWriter.count) writers cannot give each of \(clientCount) clients one")
    precondition(samplesPerWriter.allSatisfy { $0 > 0 }, "a writer without samples")
    var parts = [[Int]](repeating: [], count: clientCount)
    var start = 0
    for (writer, count) in samplesPerWriter.enumerated() {
        parts[writer % clientCount].append(contentsOf: start..<(start + count))
        start += count
    }
    return parts
}
