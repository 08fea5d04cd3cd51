extension Network {
    /// Floating-point operations of one training step (forward, backward, no optimizer)
    /// on `batch` samples with LoD layers at `ranks`, counting 2 per multiply-add.
    ///
    /// The first weight layer computes no input gradient, exactly as `backward` does.
    public func trainingStepFLOPs(batch: Int, ranks: [Int]? = nil) -> Double {
        let ranks = ranks ?? keptRanks
        let shapes = architecture.activationShapes
        let firstLinear = architecture.linearLayerIndices.first
        var total = 0.0
        var l = 0
        for (index, layer) in architecture.layers.enumerated() {
            guard let (outputs, inputs) = layer.matrixShape else { continue }
            let rows = Double(batch * layer.positions(inputShape: shapes[index]))
            let inputGradient = index == firstLinear ? 0.0 : 1.0
            if layer.isLowRank {
                let b = Double(ranks[l])
                l += 1
                // forward x·V_b, h·U_b; backward ∂U, ∂h, ∂V (+ ∂x).
                total +=
                    2 * rows * b
                    * (Double(inputs + outputs) * 2 + Double(outputs) + inputGradient
                        * Double(inputs))
            } else {
                total += 2 * rows * Double(outputs * inputs) * (2 + inputGradient)
            }
        }
        return total
    }
}
