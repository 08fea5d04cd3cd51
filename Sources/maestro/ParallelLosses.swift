import Dispatch
import Foundation
import LowRank

/// Runs `work` on each of `ranges` on the processor's cores; the results in the ranges' order.
func concurrentMap<Part: Sendable>(
    _ ranges: [Range<Int>], _ work: @Sendable (Range<Int>) -> Part
) -> [Part] {
    let slots = Slots<Part>(count: ranges.count)
    DispatchQueue.concurrentPerform(iterations: ranges.count) { index in
        slots.store(work(ranges[index]), at: index)
    }
    return slots.values
}

/// The greedy path's damages by loss on `samples`: a `PrefixLossEvaluator` whose batches are
/// spread over the cores (each set's batch sums are added in batch order, so the result is the
/// same on any number of threads).
func lossGreedyPath(
    _ network: Network, measure: CostMeasure, samples: TrainingSamples, stoppingAt budget: Int?
) -> [(ranks: [Int], cost: Int)] {
    var evaluator = PrefixLossEvaluator(network: network, samples: samples)
    let threads = ProcessInfo.processInfo.activeProcessorCount
    return network.greedyPath(measure: measure, stoppingAt: budget) { _, candidates in
        evaluator.losses(of: candidates, chunks: threads, map: concurrentMap)
    }
}

/// One result per thread of `concurrentMap`; each thread writes its own slot once, and they
/// are read after every thread has finished.
private final class Slots<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Value?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func store(_ value: Value, at slot: Int) {
        lock.lock()
        defer { lock.unlock() }
        slots[slot] = value
    }

    /// Every slot's value, in order (each was stored).
    var values: [Value] {
        lock.lock()
        defer { lock.unlock() }
        return slots.map { $0! }
    }
}
