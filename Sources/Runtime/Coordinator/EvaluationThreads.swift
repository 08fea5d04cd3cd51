import Foundation

extension CoordinatorMachine {
    /// Threads the coordinator's evaluations of the deployed model run on: one per core.
    ///
    /// The workers wait for an evaluation between rounds, so the cores are free; the figures are
    /// the same for any count (`Network.evaluateRows`).
    static let evaluationThreads = max(1, ProcessInfo.processInfo.activeProcessorCount)
}
