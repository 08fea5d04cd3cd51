import Tensors

/// Robust aggregation of width slices: the width analogue of the per-component robust rules
/// of ``OrderedAggregation``.
///
/// Each entry of the full model combines, by ``AggregationRule/median`` or
/// ``AggregationRule/trimmedMean(fraction:)``, the values of the clients whose slice held it,
/// and only theirs: a tail channel trained by the largest tier alone is the median of that
/// tier's clients. An entry no client held keeps its value (zero pseudo-gradient).
public enum WidthRobustAggregation {
    /// One client's trained sub-model (`tensors`, in `plan`'s sub-shapes) and its sample
    /// count.
    public struct Slice: Sendable {
        public var tensors: [Tensor]
        public var plan: WidthPlan
        public var weight: Double

        public init(tensors: [Tensor], plan: WidthPlan, weight: Double) {
            precondition(
                tensors.map(\.shape) == plan.subArchitecture.parameterShapes,
                "slice shapes \(tensors.map(\.shape)) vs \(plan.subArchitecture.parameterShapes)")
            self.tensors = tensors
            self.plan = plan
            self.weight = weight
        }
    }

    /// The pseudo-gradient `Δ = global − aggregate` under `rule`, with `slices` in client-ID
    /// order (ties among equal values keep that order, as in ``OrderedAggregation``).
    ///
    /// Tensor by tensor, each slice's values are scattered to their full positions; an
    /// entry's values are then those of the slices that hold it.
    ///
    /// - Complexity: O(clients · entries) memory for one tensor at a time, and per entry a
    ///   sort of its holders' values.
    public static func pseudoGradient(
        global: [Tensor], slices: [Slice], rule: AggregationRule
    ) -> [Tensor] {
        global.indices.map { t in
            let count = global[t].count
            var values = [[Float]](repeating: [], count: slices.count)
            var held = [[Bool]](repeating: [], count: slices.count)
            for (c, slice) in slices.enumerated() {
                var full = [Float](repeating: 0, count: count)
                var mask = [Bool](repeating: false, count: count)
                slice.tensors[t].scalars.withUnsafeBufferPointer { x in
                    for (j, target) in slice.plan.parameterIndices[t].enumerated() {
                        full[target] = x[j]
                        mask[target] = true
                    }
                }
                (values[c], held[c]) = (full, mask)
            }
            var entry: [(value: Float, weight: Double)] = []
            entry.reserveCapacity(slices.count)
            let delta = global[t].scalars.withUnsafeBufferPointer { g in
                (0..<count).map { j -> Float in
                    entry.removeAll(keepingCapacity: true)
                    for c in slices.indices where held[c][j] {
                        entry.append((values[c][j], slices[c].weight))
                    }
                    guard !entry.isEmpty else { return 0 }
                    return Float(Double(g[j]) - OrderedAggregation.combine(&entry, rule: rule))
                }
            }
            return Tensor(shape: global[t].shape, scalars: delta)
        }
    }
}
