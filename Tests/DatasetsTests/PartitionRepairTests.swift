import Tensors
import Testing

@testable import Datasets

@Suite("The Dirichlet repair of large fleets")
struct PartitionRepairTests {
    /// The repair as it was first written (a scan for the first largest client per move),
    /// to check that the heap moves exactly the same samples.
    static func scanningReference(
        labels: [Int32], clientCount: Int, alpha: Double, seed: UInt64
    ) -> [[Int]] {
        var generator = SeededGenerator.derived(seed: seed, stream: 0x50_4152_5449_544E)
        var byClass = [[Int]](repeating: [], count: 10)
        for (index, label) in labels.enumerated() { byClass[Int(label)].append(index) }
        let minimumSize = min(10, labels.count / clientCount)
        var parts: [[Int]] = []
        for _ in 0..<100 {
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
                        : min(
                            members.count, Int((cumulative * Double(members.count)).rounded(.down)))
                    if end > start { parts[client].append(contentsOf: members[start..<end]) }
                    start = max(start, end)
                }
            }
            if parts.allSatisfy({ $0.count >= minimumSize }) { break }
        }
        for client in 0..<clientCount {
            while parts[client].count < minimumSize {
                var largest = 0
                for other in 1..<clientCount where parts[other].count > parts[largest].count {
                    largest = other
                }
                guard parts[largest].count > minimumSize, let moved = parts[largest].popLast()
                else { break }
                parts[client].append(moved)
            }
        }
        return parts.map { $0.sorted() }
    }

    @Test(
        "The heap repair moves the same samples as a scan, where the draws always fail",
        arguments: [(0.5, 1000), (0.05, 200), (0.001, 50), (0.5, 3000)])
    func sameAsScanning(alpha: Double, clients: Int) {
        let labels = PartitionTests.labels
        let parts = partition(
            labels: labels, classCount: 10, clientCount: clients,
            scheme: .dirichlet(alpha: alpha), seed: 3)
        #expect(
            parts
                == Self.scanningReference(
                    labels: labels, clientCount: clients, alpha: alpha, seed: 3))
        #expect(parts.allSatisfy { $0.count >= min(10, labels.count / clients) })
    }
}
