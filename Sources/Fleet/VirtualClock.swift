/// Simulated time of a client's round on its device tier (a pure model, no real clock).
///
/// compute = FLOPs of its local training / (tier GFLOP/s); each transfer = bytes / bandwidth
/// + latency. A round lasts as long as its slowest participant, capped by the deadline;
/// clients whose time exceeds the deadline are dropped from the round (FedAvg semantics).
public struct ClientRoundTime: Sendable, Equatable {
    public var computeSeconds: Double
    public var downloadSeconds: Double
    public var uploadSeconds: Double

    public var totalSeconds: Double { computeSeconds + downloadSeconds + uploadSeconds }

    /// The time of one client's round on `tier`; `gflops`, when given, is the device's own
    /// measured speed (reported at registration) instead of the tier's.
    public init(
        tier: Scenario.Tier, trainingFLOPs: Double, downloadBytes: Int, uploadBytes: Int,
        gflops: Double? = nil
    ) {
        computeSeconds = trainingFLOPs / ((gflops ?? tier.gflops) * 1e9)
        downloadSeconds =
            Double(downloadBytes) * 8 / (tier.downlinkMbps * 1e6) + tier.latencyMs / 1000
        uploadSeconds = Double(uploadBytes) * 8 / (tier.uplinkMbps * 1e6) + tier.latencyMs / 1000
    }
}

extension Scenario {
    /// Whether a client with this round time makes the deadline.
    public func meetsDeadline(_ time: ClientRoundTime) -> Bool {
        guard let deadlineSeconds else { return true }
        return time.totalSeconds <= deadlineSeconds
    }

    /// The virtual length of a round whose participants took `times`: the slowest one,
    /// or the deadline when someone was dropped for missing it.
    public func roundSeconds(participants times: [ClientRoundTime], anyDropped: Bool) -> Double {
        let slowest = times.map(\.totalSeconds).max() ?? 0
        if anyDropped, let deadlineSeconds { return deadlineSeconds }
        return slowest
    }
}
