import Federation
import Fleet
import LowRank

/// How large a frame a coordinator accepts from a peer, and how large a link probe's reply
/// may be: what one peer can make the coordinator hold.
///
/// libzmq allocates an incoming frame whole as soon as its header announces the size, and
/// the coordinator's socket may be reading one from every connection at once, so the bound
/// on inbound frames (`ZMQ_MAXMSGSIZE`) is a bound on memory per connection. The largest
/// frame a legitimate peer sends is an UPDATE at full rank (a device, or a worker forwarding
/// one); everything else a peer sends is small, or a link probe of at most
/// ``largestProbeFrame`` bytes. A peer that announces more is disconnected by libzmq before
/// anything is allocated.
public enum InboundFrameLimit {
    /// The largest link probe reply the coordinator sends (and the largest probe frame
    /// `maestro bench --profile --coordinator` sends): one unread reply per connection is
    /// what a peer that never reads can leave queued beyond its budget.
    public static let largestProbeFrame = 1 << 20

    /// The least limit, whatever the model: link probes, and every small frame (a REGISTER
    /// with a 255-byte tier name, an ERROR with 4 KiB of text, a worker's HELLO).
    public static let floor = 2 << 20

    /// The largest frame `scenario`'s coordinator accepts: its largest UPDATE (the whole
    /// initial model at full rank, which no later round exceeds: ranks only shrink) with an
    /// eighth and 64 KiB of headroom, and at least ``floor``.
    public static func bytes(for scenario: Scenario) -> Int {
        let update = largestUpdateBytes(of: scenario)
        return max(floor, update + update / 8 + (64 << 10))
    }

    /// The most bytes the coordinator legitimately queues for one connection at once: one
    /// TRAIN at its largest (a device gets one a round, a worker one at a time), with an
    /// eighth and 64 KiB of headroom, beside ``floor`` for the small frames around it (a guest
    /// client's rows sent just before it, a probe reply, registration replies). A queue budget
    /// below this drops an honest worker that has not yet taken a guest's rows when the TRAIN
    /// after them is queued.
    public static func dispatchBytes(for scenario: Scenario) -> Int {
        let update = largestUpdateBytes(of: scenario)
        return update + update / 8 + (64 << 10) + floor
    }

    /// The encoded size of an UPDATE of `scenario`'s whole initial model at full rank.
    public static func largestUpdateBytes(of scenario: Scenario) -> Int {
        let slice = largestSlice(of: scenario)
        return WireCodec.encodedSize(
            of: .update(
                TrainingUpdate(
                    factors: slice.factors, shared: slice.shared, sampleCount: 0,
                    trainingLoss: 0, computeSeconds: 0)))
    }

    /// The largest slice a device of `scenario` trains and returns.
    static func largestSlice(of scenario: Scenario) -> ModelSlice {
        let network = scenario.initialNetwork()
        return network.slice(budgets: network.keptRanks)
    }
}
