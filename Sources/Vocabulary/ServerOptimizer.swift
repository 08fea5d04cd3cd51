/// The server's step along the round's aggregated pseudo-gradient `Δ = global − aggregate`
/// (Reddi et al., ICLR 2021).
///
/// Hyperparameters are doubles, as a scenario file writes them; the server applies them in
/// 32-bit arithmetic, rounding each once (`Float(learningRate)`).
public enum ServerOptimizer: Sendable, Equatable, Hashable, Codable {
    /// `w ← w − η·Δ`; with η = 1 the global model becomes the aggregate (FedAvg).
    case fedAvg(learningRate: Double)
    /// Heavy-ball server momentum (FedAvgM, Hsu et al. 2019): `m ← β·m + Δ`, `w ← w − η·m`.
    case fedAvgM(learningRate: Double, momentum: Double)
    /// FedAdam without bias correction, adaptivity τ = `epsilon`:
    /// `m ← β₁m + (1−β₁)Δ`, `v ← β₂v + (1−β₂)Δ²`, `w ← w − η·m/(√v + τ)`.
    case fedAdam(learningRate: Double, beta1: Double, beta2: Double, epsilon: Double)

    /// The `optimizer` name in scenario files.
    public var name: String {
        switch self {
        case .fedAvg: "fedAvg"
        case .fedAvgM: "fedAvgM"
        case .fedAdam: "fedAdam"
        }
    }

    /// Every optimiser's name.
    public static let names = ["fedAvg", "fedAvgM", "fedAdam"]

    /// Server learning rate η.
    public var learningRate: Double {
        switch self {
        case .fedAvg(let rate), .fedAvgM(let rate, _), .fedAdam(let rate, _, _, _): rate
        }
    }
}
