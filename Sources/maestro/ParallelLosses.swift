import Dispatch
import Foundation
import LowRank

/// `Network.losses(on:rankSets:sharingWith:)` with its batches split across the processor's
/// cores: each thread sums its own batches' losses, and the sums are added in batch order, so
/// the result is the same on any number of threads (and equals the one-thread call's).
func parallelLosses(
    _ network: Network, on samples: TrainingSamples, rankSets: [[Int]],
    sharingWith base: [Int], batchSize: Int = 32
) -> [Double] {
    let batches = (samples.count + batchSize - 1) / batchSize
    let threads = max(1, min(ProcessInfo.processInfo.activeProcessorCount, batches))
    let slots = BatchLossSlots(count: threads)
    DispatchQueue.concurrentPerform(iterations: threads) { thread in
        let range = (batches * thread / threads)..<(batches * (thread + 1) / threads)
        slots.store(
            network.batchLosses(
                on: samples, rankSets: rankSets, sharingWith: base, batches: range,
                batchSize: batchSize),
            at: thread)
    }
    return Network.meanLosses(
        slots.inOrder, sampleCount: samples.count, setCount: rankSets.count)
}

/// Per thread of `parallelLosses`, its batches' loss sums; each thread writes its own slot
/// once, and they are read after every thread has finished.
private final class BatchLossSlots: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [[[Double]]]

    init(count: Int) { slots = Array(repeating: [], count: count) }

    func store(_ sums: [[Double]], at slot: Int) {
        lock.lock()
        defer { lock.unlock() }
        slots[slot] = sums
    }

    /// Every thread's batches, in batch order.
    var inOrder: [[Double]] {
        lock.lock()
        defer { lock.unlock() }
        return slots.flatMap { $0 }
    }
}
