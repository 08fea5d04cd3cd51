import Federation
import Fleet
import LowRank
import Tensors

/// Simulated attackers (`adversaries` in a scenario): a testing feature for measuring the
/// coordinator's robust aggregation, never part of a real client.
///
/// `maestro fleet`'s workers apply it when they build a hosted client's UPDATE; the
/// coordinator does not read it and `maestro client` (a real device, or a fleet run with
/// `processPerClient`) ignores it.
extension Scenario.Adversaries {
    /// Random stream of the draw of attackers.
    static let stream: UInt64 = 0x4144_5645_5253

    /// The fleet indices that attack: `⌈fraction · clients⌉` of `0..<clients`, drawn with the
    /// scenario's seed (the same set in every run of the scenario).
    public func attackers(clients: Int, seed: UInt64) -> Set<Int> {
        let count = min(clients, Int((fraction * Double(clients) - 1e-9).rounded(.up)))
        var generator = SeededGenerator.derived(seed: seed, stream: Self.stream)
        return Set(Array(0..<clients).drawingPrefix(count, using: &generator))
    }

    /// The slice an attacker sends instead of `trained`, the slice it trained from `sent`'s:
    /// each tensor `x` becomes `g + c·(x − g)` (`scale`) or `g − c·(x − g)` (`signFlip`), `g`
    /// the same tensor as sent. A tensor the client returned with other shapes (a frozen
    /// layer's, with no rows) is left as it is.
    public func tampered(_ trained: ModelSlice, sent: TrainingTask) -> ModelSlice {
        let c = Float(attack == .scale ? factor : -factor)
        func move(_ x: Tensor, from g: Tensor) -> Tensor {
            guard x.shape == g.shape else { return x }
            var out = x
            out.scalars.withUnsafeMutableBufferPointer { out in
                g.scalars.withUnsafeBufferPointer { g in
                    for j in out.indices { out[j] = g[j] + c * (out[j] - g[j]) }
                }
            }
            return out
        }
        var result = trained
        for l in result.factors.indices where l < sent.factors.count {
            result.factors[l].up = move(result.factors[l].up, from: sent.factors[l].up)
            result.factors[l].down = move(result.factors[l].down, from: sent.factors[l].down)
        }
        for i in result.shared.indices where i < sent.shared.count {
            result.shared[i] = move(result.shared[i], from: sent.shared[i])
        }
        return result
    }
}
