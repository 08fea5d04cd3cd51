#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Tensors

/// Hierarchical group lasso and progressive shrinking of LoD layers (Maestro, §3.2).
///
/// For a layer with factors `U`, `V` (components as rows of `up`, `down`) kept to rank `k`,
/// the suffix norms are `in_b = ‖V[:, b:k]‖_F`, `out_b = ‖U[:, b:k]‖_F` (b = 0..<k, 0-based),
/// `HGL = Σ_b (in_b + out_b)`. Component `i` sits in the groups `b ≤ i`, so tail components
/// are penalised more and die first.
public enum GroupLasso {
    /// Suffix Frobenius norms of the first `kept` rows of a factor: `norms[b] = ‖rows b..<kept‖`.
    public static func suffixNorms(_ factor: Tensor, kept: Int) -> [Double] {
        let width = factor.columns
        var norms = [Double](repeating: 0, count: kept)
        var running = 0.0
        factor.scalars.withUnsafeBufferPointer { f in
            for row in stride(from: kept - 1, through: 0, by: -1) {
                var sum = 0.0
                let base = row * width
                for j in 0..<width { sum += Double(f[base + j]) * Double(f[base + j]) }
                running += sum
                norms[row] = running.squareRoot()
            }
        }
        return norms
    }

    /// `Σ_b ‖rows b..<kept‖` for one factor.
    public static func penalty(_ factor: Tensor, kept: Int) -> Double {
        suffixNorms(factor, kept: kept).reduce(0, +)
    }

    /// Adds `strength · ∂(Σ_b ‖rows b..<kept‖)/∂factor` to `gradient`.
    ///
    /// Row `i` gets `row_i · Σ_{b ≤ i} 1/norm_b`. The gradient of a norm is undefined at
    /// zero; a group whose norm is below `1e-12` contributes nothing (its subgradient 0).
    public static func addGradient(
        of factor: Tensor, kept: Int, strength: Float, to gradient: inout Tensor
    ) {
        guard strength != 0, kept > 0 else { return }
        let norms = suffixNorms(factor, kept: kept)
        let width = factor.columns
        var coefficient = 0.0
        gradient.scalars.withUnsafeMutableBufferPointer { g in
            factor.scalars.withUnsafeBufferPointer { f in
                for row in 0..<kept {
                    if norms[row] > 1e-12 { coefficient += 1 / norms[row] }
                    let scale = strength * Float(coefficient)
                    let base = row * width
                    for j in 0..<width { g[base + j] += scale * f[base + j] }
                }
            }
        }
    }

    /// Importance of each kept suffix, `imp_b = in_b · out_b` (non-increasing in b).
    public static func suffixImportance(up: Tensor, down: Tensor, kept: Int) -> [Double] {
        let outs = suffixNorms(up, kept: kept)
        let ins = suffixNorms(down, kept: kept)
        return zip(ins, outs).map { $0 * $1 }
    }

    /// The new kept rank: the longest prefix whose suffix importance passes the threshold.
    ///
    /// With `relative`, the threshold is a fraction of `imp_0` (the whole layer's product),
    /// which keeps shrinking meaningful as weights and learning rate change scale.
    public static func keptRank(
        up: Tensor, down: Tensor, kept: Int, threshold: Double, relative: Bool
    ) -> Int {
        let importance = suffixImportance(up: up, down: down, kept: kept)
        guard let first = importance.first, first > 0 else { return kept }
        let cut = relative ? threshold * first : threshold
        var rank = 0
        while rank < kept && importance[rank] >= cut { rank += 1 }
        return max(rank, 1)
    }
}
