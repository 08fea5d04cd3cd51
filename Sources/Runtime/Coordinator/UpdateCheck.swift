import Federation
import Fleet
import LowRank
import Tensors

/// Whether an update of the expected round from an invited client may be aggregated: its
/// shapes, values and scalars, and how far it moved from the model it was sent.
enum UpdateCheck {
    /// Why an update of the expected round from an invited client is not aggregated.
    enum Problem: Equatable {
        /// Its tensor shapes are not those of the budget the client was given.
        case shapeMismatch(got: [[Int]], expected: [[Int]])
        /// It holds NaN, ±Inf or a value of magnitude 1e6 or more.
        case nonFiniteOrAbsurd
        /// Its `trainingLoss` is NaN, ±Inf, negative or at least 1e6.
        case badTrainingLoss(Float)
        /// Its `computeSeconds` is NaN, ±Inf, negative or at least 1e6 (11 days).
        case badComputeSeconds(Float)
        /// Tensor `tensor` (factors' up, down, then shared, in slice order) moved from the
        /// global slice by `ratio` times the slice's (floored) norm, beyond `bound`.
        case normTooLarge(tensor: Int, ratio: Double, bound: Double)

        /// The reason counted in `rejected` (metrics and summary).
        var reason: RejectionReason {
            switch self {
            case .shapeMismatch: .shapeMismatch
            case .nonFiniteOrAbsurd: .nonFiniteOrAbsurd
            case .badTrainingLoss: .badTrainingLoss
            case .badComputeSeconds: .badComputeSeconds
            case .normTooLarge: .updateNormTooLarge
            }
        }

        /// What the error reply tells the client.
        var message: String {
            switch self {
            case .shapeMismatch(let got, let expected):
                "update shapes \(got) differ from the budget's \(expected)"
            case .nonFiniteOrAbsurd: "update holds NaN, Inf or values beyond 1e6"
            case .badTrainingLoss(let loss):
                "trainingLoss \(loss) is not a finite number in [0, 1e6)"
            case .badComputeSeconds(let seconds):
                "computeSeconds \(seconds) is not a finite number in [0, 1e6)"
            case .normTooLarge(let tensor, let ratio, let bound):
                "tensor \(tensor) of the update moved \(ratio) times its global norm, above robustness.maximumUpdateNormRatio \(bound)"
            }
        }
    }

    /// Bound on the update's scalars `trainingLoss` and `computeSeconds` (exclusive).
    static let scalarBound: Float = 1e6

    /// Checks an update's shapes against `budgets` (the layers before `frozenLayers` with
    /// no rows), its values and scalars for sanity, and the size of its change from the
    /// global model against `maximumNormRatio` (see ``updateNormRatio(of:budgets:global:frozenLayers:)``).
    ///
    /// `sampleCount` is an unsigned integer the coordinator does not read (an update weighs
    /// the count fixed at registration), so no value of it can do harm.
    ///
    /// Under a width strategy, `widthPlan` is the slice the client was sent: the update must
    /// have its sub-architecture's shapes.
    static func problem(
        with update: TrainingUpdate, budgets: [Int], global: Network, frozenLayers: Int = 0,
        widthPlan: WidthPlan? = nil,
        maximumNormRatio: Double = Scenario.Robustness.defaultMaximumUpdateNormRatio
    ) -> Problem? {
        let expected =
            widthPlan?.subArchitecture.parameterShapes
            ?? global.sliceShapes(budgets: budgets, frozenLayers: frozenLayers)
        let got =
            update.factors.flatMap { [$0.up.shape, $0.down.shape] } + update.shared.map(\.shape)
        guard got == expected else { return .shapeMismatch(got: got, expected: expected) }
        let tensors = update.factors.flatMap { [$0.up, $0.down] } + update.shared
        guard tensors.allSatisfy({ $0.scalars.allSatisfy { $0.isFinite && abs($0) < 1e6 } })
        else { return .nonFiniteOrAbsurd }
        let loss = update.trainingLoss
        guard loss.isFinite, loss >= 0, loss < scalarBound else { return .badTrainingLoss(loss) }
        let seconds = update.computeSeconds
        guard seconds.isFinite, seconds >= 0, seconds < scalarBound else {
            return .badComputeSeconds(seconds)
        }
        let largest = updateNormRatio(
            of: update, budgets: budgets, global: global, frozenLayers: frozenLayers,
            widthPlan: widthPlan)
        if let largest, largest.ratio > maximumNormRatio {
            return .normTooLarge(
                tensor: largest.tensor, ratio: largest.ratio, bound: maximumNormRatio)
        }
        return nil
    }

    /// The smallest norm per entry (RMS) a global tensor counts with in
    /// ``updateNormRatio(of:budgets:global:frozenLayers:)``: a tensor near zero (a bias at
    /// its initial 0, a factor's newly opened rows) may still move by this much per entry.
    static let normFloorPerEntry = 0.01

    /// The largest, over the update's tensors, of `‖x − g‖ / max(‖g‖, 0.01·√n)`: how far the
    /// tensor `x` moved from the global model's same slice `g` (the slice the client was
    /// sent, `n` entries), relative to that slice's size; with the tensor's index in slice
    /// order (factors' up and down, then shared). `nil` when every tensor is empty. The
    /// update's shapes must be those of `budgets`.
    static func updateNormRatio(
        of update: TrainingUpdate, budgets: [Int], global: Network, frozenLayers: Int = 0,
        widthPlan: WidthPlan? = nil
    ) -> (tensor: Int, ratio: Double)? {
        let globals: [Tensor]
        if let widthPlan {
            globals = widthPlan.gather(global.parameters)
        } else {
            let sent = global.slice(budgets: budgets, frozenLayers: frozenLayers)
            globals = sent.factors.flatMap { [$0.up, $0.down] } + sent.shared
        }
        let updates = update.factors.flatMap { [$0.up, $0.down] } + update.shared
        var largest: (tensor: Int, ratio: Double)?
        for (index, (x, g)) in zip(updates, globals).enumerated() where x.count > 0 {
            var (change, size) = (0.0, 0.0)
            x.scalars.withUnsafeBufferPointer { x in
                g.scalars.withUnsafeBufferPointer { g in
                    for j in 0..<x.count {
                        let (a, b) = (Double(x[j]), Double(g[j]))
                        change += (a - b) * (a - b)
                        size += b * b
                    }
                }
            }
            let floor = normFloorPerEntry * Double(x.count).squareRoot()
            let ratio = change.squareRoot() / max(size.squareRoot(), floor)
            if ratio > largest?.ratio ?? -1 { largest = (index, ratio) }
        }
        return largest
    }

}
