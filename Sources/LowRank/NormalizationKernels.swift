import Tensors

// Batch and group normalisation, average pooling and residual sums, on channel-major image
// activations `[channels, batch, height, width]`. Sums over a channel or a group run in
// double precision, in a fixed order: the same batch gives the same bits.

/// `a + b` elementwise; with `rectified`, `max(a + b, 0)` (a ReLU after a residual sum, in
/// the same pass).
func sum(_ a: [Float], _ b: [Float], rectified: Bool = false) -> [Float] {
    precondition(a.count == b.count, "adding \(a.count) to \(b.count) floats")
    return [Float](unsafeUninitializedCapacity: a.count) { y, initialized in
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                if rectified {
                    for i in 0..<a.count { y[i] = max(a[i] + b[i], 0) }
                } else {
                    for i in 0..<a.count { y[i] = a[i] + b[i] }
                }
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
/// the mean and variance over its channels and positions. Writes the output into `y` (with
/// `rectified`, `max(·, 0)` of it: a ReLU after the layer, run in the same pass) and returns
/// the statistics, means then variances, at `n·groups + g`. `x̂` is not kept: the backward
/// pass recomputes it from `x` and the statistics, to the same bits.
func groupNormalizationForward(
    _ x: [Float], channels c: Int, groups: Int, batch: Int, scale: [Float], shift: [Float],
    rectified: Bool, into y: inout [Float]
) -> [Float] {
    let positions = x.count / (c * batch)
    let perGroup = c / groups
    let count = batch * groups
    var statistics = [Float](repeating: 0, count: 2 * count)
    x.withUnsafeBufferPointer { xp in
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
                        let (source, target) = (xp.baseAddress! + start, yp.baseAddress! + start)
                        let (m, a, b) = (Float(mean), scale[ci], shift[ci])
                        if rectified {
                            for i in 0..<positions {
                                target[i] = max(a * ((source[i] - m) * inverse) + b, 0)
                            }
                        } else {
                            for i in 0..<positions {
                                target[i] = a * ((source[i] - m) * inverse) + b
                            }
                        }
                    }
                }
            }
        }
    }
    return statistics
}

/// Back through `groupNormalizationForward` on input `x`: ∂γ, ∂β per channel at
/// `gradients[p]`, `[p + 1]`; returns ∂x (empty unless `needsInput`), per group
/// `σ⁻¹/M · (M·∂x̂ − Σ∂x̂ − x̂·Σ∂x̂·x̂)` with `∂x̂ = γ·∂y`. With `rectifiedOutput` (the output
/// of a forward pass run `rectified`), `dy` is the gradient after the ReLU, and is taken
/// as 0 where that output is ≤ 0 (the ReLU's backward, fused).
func groupNormalizationBackward(
    _ dy: [Float], input x: [Float], rectifiedOutput: [Float]?, statistics: [Float],
    channels c: Int, groups: Int, batch: Int, scale: [Float], gradients: inout [Tensor],
    at p: Int, needsInput: Bool
) -> [Float] {
    let positions = dy.count / (c * batch)
    let perGroup = c / groups
    let count = batch * groups
    var dx = needsInput ? scratch(dy.count) : []
    // Per plane (channel, sample): Σ∂y and Σ∂y·x̂, in one pass; the parameter gradients and
    // the groups' sums are made of them.
    var planeSums = [Double](repeating: 0, count: 2 * c * batch)
    let gate = rectifiedOutput ?? []
    dy.withUnsafeBufferPointer { dyp in
        x.withUnsafeBufferPointer { xp in
            gate.withUnsafeBufferPointer { gp in
                let gates = rectifiedOutput == nil ? nil : gp.baseAddress
                for ci in 0..<c {
                    for n in 0..<batch {
                        let plane = ci * batch + n
                        let start = plane * positions
                        let group = n * groups + ci / perGroup
                        let inverse = inverseDeviation(statistics[count + group])
                        (planeSums[2 * plane], planeSums[2 * plane + 1]) =
                            DoubleSums.normalizedSums(
                                dyp.baseAddress! + start, gate: gates.map { $0 + start },
                                input: xp.baseAddress! + start, count: positions,
                                mean: statistics[group], inverse: inverse)
                    }
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
                            let mean = statistics[n * groups + g]
                            let inverse = inverseDeviation(statistics[count + n * groups + g])
                            for ci in channels {
                                let start = (ci * batch + n) * positions
                                let gamma = scale[ci]
                                let (d, source, target) = (
                                    dyp.baseAddress! + start, xp.baseAddress! + start,
                                    dxp.baseAddress! + start
                                )
                                inputGradient(
                                    d, gate: gates.map { $0 + start }, input: source,
                                    count: positions, mean: mean, inverse: inverse, scale: gamma,
                                    meanGradient: meanD, meanProduct: meanDN, into: target)
                            }
                        }
                    }
                }
            }
        }
    }
    return dx
}

/// Group normalisation's input gradient over one plane: `∂x[i] = σ⁻¹·(γ·d[i] − mean∂ −
/// x̂[i]·mean∂x̂)`, with `x̂[i] = (x[i] − mean)·σ⁻¹` recomputed and `d[i] = dy[i]`, or 0 where
/// `gate[i] ≤ 0`. Eight lanes at a time (the select does not vectorize as a scalar loop);
/// the same operations in the same order per entry, so the same bits as one at a time.
@inline(__always)
private func inputGradient(
    _ dy: UnsafePointer<Float>, gate: UnsafePointer<Float>?, input x: UnsafePointer<Float>,
    count: Int, mean: Float, inverse: Float, scale gamma: Float, meanGradient meanD: Float,
    meanProduct meanDN: Float, into dx: UnsafeMutablePointer<Float>
) {
    @inline(__always) func load(_ p: UnsafePointer<Float>, _ i: Int) -> SIMD8<Float> {
        UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
    }
    var i = 0
    while i + 8 <= count {
        let v = (load(x, i) - mean) * inverse
        var d = load(dy, i)
        if let gate { d.replace(with: 0, where: load(gate, i) .<= 0) }
        let result = inverse * (gamma * d - meanD - v * meanDN)
        UnsafeMutableRawPointer(dx + i).storeBytes(of: result, as: SIMD8<Float>.self)
        i += 8
    }
    while i < count {
        let v = (x[i] - mean) * inverse
        let d = gate.map { $0[i] <= 0 } ?? false ? 0 : dy[i]
        dx[i] = inverse * (gamma * d - meanD - v * meanDN)
        i += 1
    }
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
