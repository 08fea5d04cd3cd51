import Federation
import Transport

/// One attempt of a round while its updates are collected: the payload of
/// `CoordinatorMachine.Phase.collecting`, gone when the attempt ends.
struct RoundAttempt {
    /// 0 for the round's first selection; a `retry` round counts up from there.
    let number: Int
    /// The clients sent a TRAIN, with their planned time on the virtual clock.
    let invited: [RoundLogic.Invitation]
    /// Budgets of the invited clients whose update is still awaited.
    var pending: [UInt32: [Int]] = [:]
    /// The updates accepted so far, in arrival order.
    var received: [(contribution: ClientContribution, loss: Double)] = []
    /// When the clients still pending are dropped.
    let deadline: Duration

    /// Drops `id` from the attempt; whether it was still awaited.
    mutating func drop(_ id: UInt32) -> Bool { pending.removeValue(forKey: id) != nil }
}
