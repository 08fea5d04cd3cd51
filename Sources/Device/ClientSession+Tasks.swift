import Federation
import LowRank

extension ClientSession {
    /// The answer to a TRAIN or EVALUATE decision, and the round it is for; `nil` for any
    /// other decision, or when `samples` has none to give (the round's deadline drops the
    /// client). Both a client process and a worker's hosted clients answer through here.
    ///
    /// Training is timed by `clock` (CPU time: see ``ProcessClock``); `tamper`, a simulated
    /// attacker's (testing only), changes the trained slice before it is sent.
    public func answer(
        to decision: Decision, clock: ProcessClock,
        samples: (_ round: UInt32) -> TrainingSamples?,
        tamper: ((ModelSlice, TrainingTask) -> ModelSlice)? = nil
    ) -> (message: Message, round: UInt32)? {
        switch decision {
        case .train(let task, let round, let architecture):
            guard let samples = samples(round) else { return nil }
            let started = clock.seconds
            var result = LocalTraining.run(task, architecture: architecture, samples: samples)
            if let tamper { result.slice = tamper(result.slice, task) }
            return (update(for: result, seconds: clock.seconds - started), round)
        case .evaluate(let task, let round, let architecture):
            guard let samples = samples(round) else { return nil }
            return (
                Self.evaluation(of: task, architecture: architecture, samples: samples), round
            )
        default:
            return nil
        }
    }
}
