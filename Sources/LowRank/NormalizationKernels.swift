import Tensors

// Batch and group normalisation, average pooling and residual sums, on channel-major image
// activations `[channels, batch, height, width]`. Sums over a channel or a group run in
// double precision, in a fixed order: the same batch gives the same bits.

/// `a + b` elementwise.
func sum(_ a: [Float], _ b: [Float]) -> [Float] {
    precondition(a.count == b.count, "adding \(a.count) to \(b.count) floats")
    return [Float](unsafeUninitializedCapacity: a.count) { y, initialized in
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                for i in 0..<a.count { y[i] = a[i] + b[i] }
            }
        }
        initialized = a.count
    }
}

/// Mean and (biased) variance of `count` floats at `x`, in double precision.
private func moments(_ x: UnsafePointer<Float>, count: Int) -> (mean: Double, variance: Double) {
    let mean = DoubleSums.sum(x, count: count) / Double(max(count, 1))
    return (mean, DoubleSums.squaredDeviations(x, count: count, from: mean) / Double(max(count, 1)))
}

/// `n[i] = (x[i] − mean)·inverse`, `y[i] = γ·n[i] + β` over `count` floats.
@inline(__always)
private func normalize(
    _ x: UnsafePointer<Float>, count: Int, mean: Float, inverse: Float, scale: Float,
    shift: Float, normalized n: UnsafeMutablePointer<Float>, output y: UnsafeMutablePointer<Float>
) {
    for i in 0..<count {
        let v = (x[i] - mean) * inverse
        n[i] = v
        y[i] = scale * v + shift
    }
}

/// `1 / √(variance + ε)`.
private func inverseDeviation(_ variance: Float) -> Float {
    1 / (variance + LayerSpec.normalizationEpsilon).squareRoot()
}

/// Batch normalisation of each channel's `x.count / channels` values: with the batch's own
/// statistics (`running == nil`) or the running ones. Returns the output, the normalised
/// input `x̂` (for the backward pass) and the statistics used, means then variances.
func batchNormalizationForward(
    _ x: [Float], channels c: Int, scale: [Float], shift: [Float],
    running: (mean: [Float], variance: [Float])?
) -> (output: [Float], normalized: [Float], statistics: [Float]) {
    let length = x.count / c
    var statistics = [Float](repeating: 0, count: 2 * c)
    var normalized = scratch(x.count)
    var y = scratch(x.count)
    x.withUnsafeBufferPointer { xp in
        normalized.withUnsafeMutableBufferPointer { np in
            y.withUnsafeMutableBufferPointer { yp in
                for ci in 0..<c {
                    let base = ci * length
                    let (mean, variance): (Float, Float)
                    if let running {
                        (mean, variance) = (running.mean[ci], running.variance[ci])
                    } else {
                        let m = moments(xp.baseAddress! + base, count: length)
                        (mean, variance) = (Float(m.mean), Float(m.variance))
                    }
                    statistics[ci] = mean
                    statistics[c + ci] = variance
                    normalize(
                        xp.baseAddress! + base, count: length, mean: mean,
                        inverse: inverseDeviation(variance), scale: scale[ci], shift: shift[ci],
                        normalized: np.baseAddress! + base, output: yp.baseAddress! + base)
                }
            }
        }
    }
    return (y, normalized, statistics)
}

/// Back through `batchNormalizationForward`: writes ∂γ and ∂β at `gradients[p]`, `[p + 1]`
/// and returns ∂x (empty unless `needsInput`). With the batch's statistics,
/// `∂x = γ·σ⁻¹/L · (L·∂y − Σ∂y − x̂·Σ∂y·x̂)`; with fixed ones, `γ·σ⁻¹·∂y`.
func batchNormalizationBackward(
    _ dy: [Float], normalized: [Float], statistics: [Float], channels c: Int,
    batchStatistics: Bool, scale: [Float], gradients: inout [Tensor], at p: Int,
    needsInput: Bool
) -> [Float] {
    let length = dy.count / c
    var dx = needsInput ? scratch(dy.count) : []
    dy.withUnsafeBufferPointer { dyp in
        normalized.withUnsafeBufferPointer { np in
            for ci in 0..<c {
                let base = ci * length
                let (shiftGradient, scaleGradient) = DoubleSums.sumAndDot(
                    dyp.baseAddress! + base, np.baseAddress! + base, count: length)
                gradients[p].scalars[ci] = Float(scaleGradient)
                gradients[p + 1].scalars[ci] = Float(shiftGradient)
                guard needsInput else { continue }
                let factor = scale[ci] * inverseDeviation(statistics[c + ci])
                dx.withUnsafeMutableBufferPointer { dxp in
                    if batchStatistics {
                        let meanShift = Float(shiftGradient / Double(length))
                        let meanScale = Float(scaleGradient / Double(length))
                        for i in base..<(base + length) {
                            dxp[i] = factor * (dyp[i] - meanShift - np[i] * meanScale)
                        }
                    } else {
                        for i in base..<(base + length) { dxp[i] = factor * dyp[i] }
                    }
                }
            }
        }
    }
    return dx
}

/// Group normalisation: for each sample `n` and group `g` (channels `g·C/G ..< (g+1)·C/G`),
/// the mean and variance over its channels and positions. Returns the output, `x̂`, and the
/// statistics, means then variances, at `n·groups + g`.
func groupNormalizationForward(
    _ x: [Float], channels c: Int, groups: Int, batch: Int, scale: [Float], shift: [Float]
) -> (output: [Float], normalized: [Float], statistics: [Float]) {
    let positions = x.count / (c * batch)
    let perGroup = c / groups
    let count = batch * groups
    var statistics = [Float](repeating: 0, count: 2 * count)
    var normalized = scratch(x.count)
    var y = scratch(x.count)
    x.withUnsafeBufferPointer { xp in
        normalized.withUnsafeMutableBufferPointer { np in
            y.withUnsafeMutableBufferPointer { yp in
                for n in 0..<batch {
                    for g in 0..<groups {
                        let channels = (g * perGroup)..<((g + 1) * perGroup)
                        var total = 0.0
                        for ci in channels {
                            total += DoubleSums.sum(
                                xp.baseAddress! + (ci * batch + n) * positions, count: positions)
                        }
                        let elements = Double(perGroup * positions)
                        let mean = total / elements
                        var squares = 0.0
                        for ci in channels {
                            squares += DoubleSums.squaredDeviations(
                                xp.baseAddress! + (ci * batch + n) * positions, count: positions,
                                from: mean)
                        }
                        let variance = Float(squares / elements)
                        statistics[n * groups + g] = Float(mean)
                        statistics[count + n * groups + g] = variance
                        let inverse = inverseDeviation(variance)
                        for ci in channels {
                            let start = (ci * batch + n) * positions
                            normalize(
                                xp.baseAddress! + start, count: positions, mean: Float(mean),
                                inverse: inverse, scale: scale[ci], shift: shift[ci],
                                normalized: np.baseAddress! + start,
                                output: yp.baseAddress! + start)
                        }
                    }
                }
            }
        }
    }
    return (y, normalized, statistics)
}

/// Back through `groupNormalizationForward`: ∂γ, ∂β per channel at `gradients[p]`,
/// `[p + 1]`; returns ∂x (empty unless `needsInput`), per group
/// `σ⁻¹/M · (M·∂x̂ − Σ∂x̂ − x̂·Σ∂x̂·x̂)` with `∂x̂ = γ·∂y`.
func groupNormalizationBackward(
    _ dy: [Float], normalized: [Float], statistics: [Float], channels c: Int, groups: Int,
    batch: Int, scale: [Float], gradients: inout [Tensor], at p: Int, needsInput: Bool
) -> [Float] {
    let positions = dy.count / (c * batch)
    let perGroup = c / groups
    let count = batch * groups
    var dx = needsInput ? scratch(dy.count) : []
    // Per plane (channel, sample): Σ∂y and Σ∂y·x̂, in one pass; the parameter gradients and
    // the groups' sums are made of them.
    var planeSums = [Double](repeating: 0, count: 2 * c * batch)
    dy.withUnsafeBufferPointer { dyp in
        normalized.withUnsafeBufferPointer { np in
            for plane in 0..<(c * batch) {
                let start = plane * positions
                (planeSums[2 * plane], planeSums[2 * plane + 1]) = DoubleSums.sumAndDot(
                    dyp.baseAddress! + start, np.baseAddress! + start, count: positions)
            }
            for ci in 0..<c {
                var (shiftGradient, scaleGradient) = (0.0, 0.0)
                for n in 0..<batch {
                    shiftGradient += planeSums[2 * (ci * batch + n)]
                    scaleGradient += planeSums[2 * (ci * batch + n) + 1]
                }
                gradients[p].scalars[ci] = Float(scaleGradient)
                gradients[p + 1].scalars[ci] = Float(shiftGradient)
            }
            guard needsInput else { return }
            dx.withUnsafeMutableBufferPointer { dxp in
                for n in 0..<batch {
                    for g in 0..<groups {
                        let channels = (g * perGroup)..<((g + 1) * perGroup)
                        var (s1, s2) = (0.0, 0.0)
                        for ci in channels {
                            let gamma = Double(scale[ci])
                            s1 += gamma * planeSums[2 * (ci * batch + n)]
                            s2 += gamma * planeSums[2 * (ci * batch + n) + 1]
                        }
                        let elements = Double(perGroup * positions)
                        let (meanD, meanDN) = (Float(s1 / elements), Float(s2 / elements))
                        let inverse = inverseDeviation(statistics[count + n * groups + g])
                        for ci in channels {
                            let start = (ci * batch + n) * positions
                            let gamma = scale[ci]
                            for i in start..<(start + positions) {
                                dxp[i] = inverse * (gamma * dyp[i] - meanD - np[i] * meanDN)
                            }
                        }
                    }
                }
            }
        }
    }
    return dx
}

/// `size×size` average pooling, stride `size`, of `planes` planes of `height × width`.
func averagePoolForward(
    _ x: [Float], planes: Int, height h: Int, width w: Int, size s: Int
) -> [Float] {
    let (oh, ow) = (h / s, w / s)
    let area = 1 / Float(s * s)
    return [Float](unsafeUninitializedCapacity: planes * oh * ow) { y, initialized in
        x.withUnsafeBufferPointer { xp in
            var out = 0
            for plane in 0..<planes {
                let base = plane * h * w
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var total: Float = 0
                        for dy in 0..<s {
                            let row = base + (oy * s + dy) * w + ox * s
                            for dx in 0..<s { total += xp[row + dx] }
                        }
                        y[out] = total * area
                        out += 1
                    }
                }
            }
        }
        initialized = planes * oh * ow
    }
}

/// The adjoint of `averagePoolForward`: each window's inputs get its gradient over `size²`;
/// inputs in no window get 0.
func averagePoolBackward(
    _ dy: [Float], planes: Int, height h: Int, width w: Int, size s: Int
) -> [Float] {
    let (oh, ow) = (h / s, w / s)
    let area = 1 / Float(s * s)
    var dx = [Float](repeating: 0, count: planes * h * w)
    dx.withUnsafeMutableBufferPointer { dxp in
        dy.withUnsafeBufferPointer { dyp in
            var out = 0
            for plane in 0..<planes {
                let base = plane * h * w
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let g = dyp[out] * area
                        for ky in 0..<s {
                            let row = base + (oy * s + ky) * w + ox * s
                            for kx in 0..<s { dxp[row + kx] = g }
                        }
                        out += 1
                    }
                }
            }
        }
    }
    return dx
}

/// Each channel's mean over its positions: channel-major `[C, batch, positions]` in,
/// row-major `[batch, C]` out.
func globalAveragePoolForward(
    _ x: [Float], channels c: Int, batch: Int, positions: Int
) -> [Float] {
    [Float](unsafeUninitializedCapacity: batch * c) { y, initialized in
        x.withUnsafeBufferPointer { xp in
            for ci in 0..<c {
                for n in 0..<batch {
                    let plane = xp.baseAddress! + (ci * batch + n) * positions
                    var total: Float = 0
                    for q in 0..<positions { total += plane[q] }
                    y[n * c + ci] = total / Float(positions)
                }
            }
        }
        initialized = batch * c
    }
}

/// The adjoint of `globalAveragePoolForward`.
func globalAveragePoolBackward(
    _ dy: [Float], channels c: Int, batch: Int, positions: Int
) -> [Float] {
    [Float](unsafeUninitializedCapacity: c * batch * positions) { dx, initialized in
        dy.withUnsafeBufferPointer { dyp in
            for ci in 0..<c {
                for n in 0..<batch {
                    let g = dyp[n * c + ci] / Float(positions)
                    (dx.baseAddress! + (ci * batch + n) * positions).update(
                        repeating: g, count: positions)
                }
            }
        }
        initialized = c * batch * positions
    }
}
