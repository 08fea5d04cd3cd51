extension Network {
    /// Floating-point operations of one training step (forward, backward, no optimizer)
    /// on `batch` samples with LoD layers at `ranks`, counting 2 per multiply-add.
    ///
    /// The first weight layer computes no input gradient, exactly as `backward` does. The
    /// first `frozenLayers` layers run forward only, and the first weight layer after them
    /// computes no input gradient either.
    public func trainingStepFLOPs(batch: Int, ranks: [Int]? = nil, frozenLayers: Int = 0) -> Double
    {
        let ranks = ranks ?? keptRanks
        let shapes = architecture.activationShapes
        let firstTrained = architecture.linearLayerIndices.first { $0 >= frozenLayers }
        var total = 0.0
        var l = 0
        for (index, layer) in architecture.layers.enumerated() {
            guard let (outputs, inputs) = layer.matrixShape else { continue }
            let rows = Double(batch * layer.positions(inputShape: shapes[index]))
            let frozen = index < frozenLayers
            let inputGradient = index == firstTrained ? 0.0 : 1.0
            if layer.isLowRank {
                let b = Double(ranks[l])
                l += 1
                // forward x·V_b, h·U_b; backward ∂U, ∂h, ∂V (+ ∂x).
                total +=
                    frozen
                    ? 2 * rows * b * Double(inputs + outputs)
                    : 2 * rows * b
                        * (Double(inputs + outputs) * 2 + Double(outputs) + inputGradient
                            * Double(inputs))
            } else {
                total += 2 * rows * Double(outputs * inputs) * (frozen ? 1 : 2 + inputGradient)
            }
        }
        return total
    }
}
