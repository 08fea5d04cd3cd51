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

/// The layer-curve choice for `budget` (`Network.layerCurveRanks`), each layer's damage the
/// rise of the mean loss on `samples` with that layer alone cut. One sweep per layer: the
/// layers before it run once per batch for all of its cuts (`Network.evaluate(on:rankSets:)`).
func layerCurveRanks(
    _ network: Network, measure: CostMeasure, samples: TrainingSamples, budget: Int
) -> [Int]? {
    let threads = ProcessInfo.processInfo.activeProcessorCount
    let cuts = network.singleLayerCuts(measure: measure)
    var damages = Array(repeating: [Int: Double](), count: network.keptRanks.count)
    for l in damages.indices {
        let layerCuts = cuts.filter { $0.layer == l }.map(\.ranks)
        guard !layerCuts.isEmpty else { continue }
        let losses = network.evaluate(
            on: samples, rankSets: [network.keptRanks] + layerCuts, threads: threads
        ).map(\.loss)
        for (ranks, loss) in zip(layerCuts, losses.dropFirst()) {
            damages[l][ranks[l]] = loss - losses[0]
        }
    }
    return network.layerCurveRanks(budget: budget, measure: measure, damages: damages)
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
