import Tensors

/// What one forward pass keeps for its backward pass.
///
/// `activations[i]` is the input of layer `i` (row-major, batch first) and
/// `activations[layers.count]` the network output (logits).
public struct ForwardPass: Sendable {
    public let batch: Int
    /// Rank each LoD layer ran at.
    public let ranks: [Int]
    public internal(set) var activations: [[Float]]
    /// Per layer: the inner activation `H = X·V_b` of LoD layers (empty otherwise).
    var inner: [[Float]]
    /// Per layer: im2col patches of convolution layers (empty otherwise).
    var patches: [[Float]]
    /// Per layer: for max pooling, the flat input index each output came from.
    var poolSources: [[Int32]]

    /// The network output, `[batch, classCount]`.
    public var logits: [Float] { activations[activations.count - 1] }
}

extension Network {
    /// Runs the network on a batch with each LoD layer truncated to `ranks[l]` components.
    ///
    /// - Parameters:
    ///   - input: `batch × inputSize` features, row-major.
    ///   - ranks: one rank per LoD layer, each `≤ keptRanks[l]`; `nil` means the kept ranks.
    public func forward(_ input: [Float], batch: Int, ranks: [Int]? = nil) -> ForwardPass {
        let ranks = ranks ?? keptRanks
        precondition(
            ranks.count == keptRanks.count, "\(ranks.count) ranks for \(keptRanks.count) LoD layers"
        )
        precondition(
            zip(ranks, keptRanks).allSatisfy { $0 >= 0 && $0 <= $1 },
            "ranks \(ranks) exceed kept \(keptRanks)")
        let shapes = architecture.activationShapes
        precondition(
            input.count == batch * shapes[0].reduce(1, *),
            "input of \(input.count) floats for batch \(batch) of \(shapes[0])")
        let layerCount = architecture.layers.count
        var pass = ForwardPass(
            batch: batch, ranks: ranks, activations: [input],
            inner: Array(repeating: [], count: layerCount),
            patches: Array(repeating: [], count: layerCount),
            poolSources: Array(repeating: [], count: layerCount))
        pass.activations.reserveCapacity(layerCount + 1)
        var recording: ForwardPass? = consume pass
        _ = run(layers: 0..<layerCount, input, batch: batch, ranks: ranks, recording: &recording)
        return recording!
    }

    /// Runs layers `range` on `input` (the input of layer `range.lowerBound`) and returns the
    /// output of the last one. With a `recording` pass, stores what `backward` needs in it.
    func run(
        layers range: Range<Int>, _ input: [Float], batch: Int, ranks: [Int],
        recording pass: inout ForwardPass?
    ) -> [Float] {
        let shapes = architecture.activationShapes
        let offsets = architecture.parameterOffsets
        var lowRankIndex = architecture.layers[..<range.lowerBound].count(where: \.isLowRank)
        var x = input
        for index in range {
            let layer = architecture.layers[index]
            let outputCount = batch * shapes[index + 1].reduce(1, *)
            // Every kernel writes each entry of its output: no need to zero it first.
            var y: [Float]
            let p = offsets[index]
            switch layer {
            case .dense(let inputs, let outputs):
                y = scratch(outputCount)
                denseForward(
                    x, rows: batch, inputs: inputs, outputs: outputs, weight: parameters[p],
                    bias: parameters[p + 1], into: &y)
            case .lowRankDense(let inputs, let outputs, _):
                y = scratch(outputCount)
                let inner = lowRankForward(
                    x, rows: batch, inputs: inputs, outputs: outputs, rank: ranks[lowRankIndex],
                    up: parameters[p], down: parameters[p + 1], bias: parameters[p + 2], into: &y)
                pass?.inner[index] = inner
                lowRankIndex += 1
            case .convolution(let g, let outputs):
                let cols = lower(x, batch: batch, geometry: g)
                y = scratch(outputCount)
                denseForward(
                    cols, rows: batch * g.outputHeight * g.outputWidth, inputs: g.patchSize,
                    outputs: outputs,
                    weight: parameters[p], bias: parameters[p + 1], into: &y)
                pass?.patches[index] = cols
            case .lowRankConvolution(let g, let outputs, _):
                let cols = lower(x, batch: batch, geometry: g)
                y = scratch(outputCount)
                let inner = lowRankForward(
                    cols, rows: batch * g.outputHeight * g.outputWidth, inputs: g.patchSize,
                    outputs: outputs,
                    rank: ranks[lowRankIndex], up: parameters[p], down: parameters[p + 1],
                    bias: parameters[p + 2], into: &y)
                pass?.inner[index] = inner
                pass?.patches[index] = cols
                lowRankIndex += 1
            case .relu:
                y = rectify(x)
            case .maxPool(let h, let w, let c):
                y = scratch(outputCount)
                let sources = maxPoolForward(
                    x, batch: batch, height: h, width: w, channels: c, into: &y)
                pass?.poolSources[index] = sources
            case .flatten:
                y = x
            }
            pass?.activations.append(y)
            x = consume y
        }
        return x
    }

    /// Back-propagates `outputGradient` (∂loss/∂logits) through a forward pass and writes
    /// ∂loss/∂parameters into `gradients` (same shapes as `parameters`, overwritten).
    ///
    /// Components of a LoD layer beyond the rank it ran at receive a zero gradient. The
    /// gradient with respect to the network input is not computed.
    public func backward(
        _ pass: ForwardPass, outputGradient: [Float], into gradients: inout [Tensor]
    ) {
        precondition(
            gradients.map(\.shape) == parameters.map(\.shape),
            "gradient shapes differ from parameters")
        let offsets = architecture.parameterOffsets
        let firstWithParameters =
            architecture.layers.firstIndex { !$0.parameterShapes.isEmpty } ?? 0
        var lowRankIndex = keptRanks.count
        var dy = outputGradient
        let batch = pass.batch
        for index in architecture.layers.indices.reversed() {
            let layer = architecture.layers[index]
            let x = pass.activations[index]
            let needsInput = index > firstWithParameters
            var dx: [Float] = []
            let p = offsets[index]
            switch layer {
            case .dense(let inputs, let outputs):
                dx = denseBackward(
                    x, dy, rows: batch, inputs: inputs, outputs: outputs, weight: parameters[p],
                    gradients: &gradients, at: p, needsInput: needsInput)
            case .lowRankDense(let inputs, let outputs, _):
                lowRankIndex -= 1
                dx = lowRankBackward(
                    x, pass.inner[index], dy, rows: batch, inputs: inputs, outputs: outputs,
                    rank: pass.ranks[lowRankIndex], up: parameters[p], down: parameters[p + 1],
                    gradients: &gradients, at: p, needsInput: needsInput)
            case .convolution(let g, let outputs):
                let rows = batch * g.outputHeight * g.outputWidth
                let dcols = denseBackward(
                    pass.patches[index], dy, rows: rows, inputs: g.patchSize, outputs: outputs,
                    weight: parameters[p], gradients: &gradients, at: p, needsInput: needsInput)
                if needsInput { dx = raise(dcols, batch: batch, geometry: g) }
            case .lowRankConvolution(let g, let outputs, _):
                lowRankIndex -= 1
                let rows = batch * g.outputHeight * g.outputWidth
                let dcols = lowRankBackward(
                    pass.patches[index], pass.inner[index], dy, rows: rows, inputs: g.patchSize,
                    outputs: outputs, rank: pass.ranks[lowRankIndex], up: parameters[p],
                    down: parameters[p + 1],
                    gradients: &gradients, at: p, needsInput: needsInput)
                if needsInput { dx = raise(dcols, batch: batch, geometry: g) }
            case .relu:
                guard needsInput else { break }
                dx = rectifierBackward(dy, output: pass.activations[index + 1])
            case .maxPool:
                guard needsInput else { break }
                dx = maxPoolBackward(dy, sources: pass.poolSources[index], inputCount: x.count)
            case .flatten:
                dx = dy
            }
            if index == firstWithParameters { break }
            dy = dx
        }
    }
}

// MARK: - Kernels

/// `y = x·Wᵀ + c` for `x` `[rows, inputs]`, `W` `[outputs, inputs]`.
private func denseForward(
    _ x: [Float], rows: Int, inputs: Int, outputs: Int, weight: Tensor, bias: Tensor,
    into y: inout [Float]
) {
    y.withUnsafeMutableBufferPointer { yp in
        broadcastRows(bias.scalars, rows: rows, into: yp.baseAddress!)
        x.withUnsafeBufferPointer { xp in
            weight.scalars.withUnsafeBufferPointer { wp in
                sgemm(
                    .none, .transposed, m: rows, n: outputs, k: inputs, xp.baseAddress!,
                    lda: inputs,
                    wp.baseAddress!, ldb: inputs, beta: 1, yp.baseAddress!, ldc: outputs)
            }
        }
    }
}

/// `h = x·V_bᵀᵀ` (`[rows, b]`), `y = h·U_bᵀ + c`; returns `h`.
private func lowRankForward(
    _ x: [Float], rows: Int, inputs: Int, outputs: Int, rank b: Int, up: Tensor, down: Tensor,
    bias: Tensor,
    into y: inout [Float]
) -> [Float] {
    var h = [Float](repeating: 0, count: rows * b)
    x.withUnsafeBufferPointer { xp in
        down.scalars.withUnsafeBufferPointer { vp in
            h.withUnsafeMutableBufferPointer { hp in
                sgemm(
                    .none, .transposed, m: rows, n: b, k: inputs, xp.baseAddress!, lda: inputs,
                    vp.baseAddress!, ldb: inputs, hp.baseAddress!, ldc: b)
            }
        }
    }
    y.withUnsafeMutableBufferPointer { yp in
        broadcastRows(bias.scalars, rows: rows, into: yp.baseAddress!)
        h.withUnsafeBufferPointer { hp in
            up.scalars.withUnsafeBufferPointer { up in
                sgemm(
                    .none, .none, m: rows, n: outputs, k: b, hp.baseAddress!, lda: b,
                    up.baseAddress!, ldb: outputs, beta: 1, yp.baseAddress!, ldc: outputs)
            }
        }
    }
    return h
}

private func denseBackward(
    _ x: [Float], _ dy: [Float], rows: Int, inputs: Int, outputs: Int, weight: Tensor,
    gradients: inout [Tensor], at p: Int, needsInput: Bool
) -> [Float] {
    columnSums(dy, rows: rows, columns: outputs, into: &gradients[p + 1].scalars)
    dy.withUnsafeBufferPointer { dyp in
        x.withUnsafeBufferPointer { xp in
            gradients[p].scalars.withUnsafeMutableBufferPointer { gp in
                sgemm(
                    .transposed, .none, m: outputs, n: inputs, k: rows, dyp.baseAddress!,
                    lda: outputs,
                    xp.baseAddress!, ldb: inputs, gp.baseAddress!, ldc: inputs)
            }
        }
    }
    guard needsInput else { return [] }
    var dx = [Float](repeating: 0, count: rows * inputs)
    dy.withUnsafeBufferPointer { dyp in
        weight.scalars.withUnsafeBufferPointer { wp in
            dx.withUnsafeMutableBufferPointer { dxp in
                sgemm(
                    .none, .none, m: rows, n: inputs, k: outputs, dyp.baseAddress!, lda: outputs,
                    wp.baseAddress!, ldb: inputs, dxp.baseAddress!, ldc: inputs)
            }
        }
    }
    return dx
}

private func lowRankBackward(
    _ x: [Float], _ h: [Float], _ dy: [Float], rows: Int, inputs: Int, outputs: Int, rank b: Int,
    up: Tensor, down: Tensor, gradients: inout [Tensor], at p: Int, needsInput: Bool
) -> [Float] {
    columnSums(dy, rows: rows, columns: outputs, into: &gradients[p + 2].scalars)
    var dh = [Float](repeating: 0, count: rows * b)
    dy.withUnsafeBufferPointer { dyp in
        h.withUnsafeBufferPointer { hp in
            gradients[p].scalars.withUnsafeMutableBufferPointer { gp in
                // ∂U_bᵀ = hᵀ·dy; rows ≥ b get no task gradient.
                sgemm(
                    .transposed, .none, m: b, n: outputs, k: rows, hp.baseAddress!, lda: b,
                    dyp.baseAddress!, ldb: outputs, gp.baseAddress!, ldc: outputs)
                (gp.baseAddress! + b * outputs).update(repeating: 0, count: gp.count - b * outputs)
            }
        }
        up.scalars.withUnsafeBufferPointer { upp in
            dh.withUnsafeMutableBufferPointer { dhp in
                sgemm(
                    .none, .transposed, m: rows, n: b, k: outputs, dyp.baseAddress!, lda: outputs,
                    upp.baseAddress!, ldb: outputs, dhp.baseAddress!, ldc: b)
            }
        }
    }
    dh.withUnsafeBufferPointer { dhp in
        x.withUnsafeBufferPointer { xp in
            gradients[p + 1].scalars.withUnsafeMutableBufferPointer { gp in
                sgemm(
                    .transposed, .none, m: b, n: inputs, k: rows, dhp.baseAddress!, lda: b,
                    xp.baseAddress!, ldb: inputs, gp.baseAddress!, ldc: inputs)
                (gp.baseAddress! + b * inputs).update(repeating: 0, count: gp.count - b * inputs)
            }
        }
    }
    guard needsInput else { return [] }
    var dx = [Float](repeating: 0, count: rows * inputs)
    dh.withUnsafeBufferPointer { dhp in
        down.scalars.withUnsafeBufferPointer { vp in
            dx.withUnsafeMutableBufferPointer { dxp in
                sgemm(
                    .none, .none, m: rows, n: inputs, k: b, dhp.baseAddress!, lda: b,
                    vp.baseAddress!, ldb: inputs, dxp.baseAddress!, ldc: inputs)
            }
        }
    }
    return dx
}

/// An array of `count` floats for a kernel that writes every entry before anything reads it.
private func scratch(_ count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
}

/// `max(x, 0)` elementwise.
private func rectify(_ x: [Float]) -> [Float] {
    [Float](unsafeUninitializedCapacity: x.count) { y, initialized in
        x.withUnsafeBufferPointer { x in
            for i in 0..<x.count { y[i] = max(x[i], 0) }
        }
        initialized = x.count
    }
}

/// `dy` where the ReLU's output is positive, 0 elsewhere.
private func rectifierBackward(_ dy: [Float], output y: [Float]) -> [Float] {
    [Float](unsafeUninitializedCapacity: dy.count) { dx, initialized in
        dy.withUnsafeBufferPointer { dy in
            y.withUnsafeBufferPointer { y in
                let (source, gate, target) = (
                    UnsafeRawPointer(dy.baseAddress!), UnsafeRawPointer(y.baseAddress!),
                    UnsafeMutableRawPointer(dx.baseAddress!)
                )
                var i = 0
                // Eight lanes at a time (the scalar select does not vectorize), then the rest.
                while i + 8 <= dy.count {
                    let g = gate.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                    let d = source.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                    target.storeBytes(
                        of: d.replacing(with: 0, where: g .<= 0), toByteOffset: i * 4,
                        as: SIMD8<Float>.self)
                    i += 8
                }
                while i < dy.count {
                    dx[i] = y[i] <= 0 ? 0 : dy[i]
                    i += 1
                }
            }
        }
        initialized = dy.count
    }
}

/// Routes each pooled gradient back to the input its maximum came from.
private func maxPoolBackward(_ dy: [Float], sources: [Int32], inputCount: Int) -> [Float] {
    var dx = [Float](repeating: 0, count: inputCount)
    dx.withUnsafeMutableBufferPointer { dx in
        dy.withUnsafeBufferPointer { dy in
            sources.withUnsafeBufferPointer { sources in
                for i in 0..<dy.count { dx[Int(sources[i])] += dy[i] }
            }
        }
    }
    return dx
}

private func broadcastRows(_ row: [Float], rows: Int, into y: UnsafeMutablePointer<Float>) {
    row.withUnsafeBufferPointer { r in
        for i in 0..<rows { (y + i * r.count).update(from: r.baseAddress!, count: r.count) }
    }
}

private func columnSums(_ matrix: [Float], rows: Int, columns: Int, into sums: inout [Float]) {
    sums.withUnsafeMutableBufferPointer { s in
        s.update(repeating: 0)
        matrix.withUnsafeBufferPointer { m in
            for i in 0..<rows {
                let row = m.baseAddress! + i * columns
                for j in 0..<columns { s[j] += row[j] }
            }
        }
    }
}

private func lower(_ images: [Float], batch: Int, geometry g: ConvolutionGeometry) -> [Float] {
    let count = batch * g.outputHeight * g.outputWidth * g.patchSize
    // im2col writes every entry: no need to zero the buffer first.
    return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        images.withUnsafeBufferPointer { src in
            im2col(src.baseAddress!, batch: batch, geometry: g, into: buffer.baseAddress!)
        }
        initialized = count
    }
}

private func raise(_ cols: [Float], batch: Int, geometry g: ConvolutionGeometry) -> [Float] {
    var images = [Float](repeating: 0, count: batch * g.height * g.width * g.channels)
    cols.withUnsafeBufferPointer { src in
        images.withUnsafeMutableBufferPointer { dst in
            col2im(src.baseAddress!, batch: batch, geometry: g, into: dst.baseAddress!)
        }
    }
    return images
}

/// 2×2 stride-2 max pooling on NHWC; returns, per output, the flat index of its source.
private func maxPoolForward(
    _ x: [Float], batch: Int, height h: Int, width w: Int, channels c: Int, into y: inout [Float]
) -> [Int32] {
    let (oh, ow) = (h / 2, w / 2)
    var sources = [Int32](repeating: 0, count: batch * oh * ow * c)
    x.withUnsafeBufferPointer { xp in
        y.withUnsafeMutableBufferPointer { yp in
            sources.withUnsafeMutableBufferPointer { sp in
                var out = 0
                for n in 0..<batch {
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            let topLeft = ((n * h + 2 * oy) * w + 2 * ox) * c
                            let candidates = (
                                topLeft, topLeft + c, topLeft + w * c, topLeft + w * c + c
                            )
                            for ch in 0..<c {
                                // Selects, not branches: the winner is data-dependent.
                                var best = candidates.0 &+ ch
                                var value = xp[best]
                                func challenge(_ candidate: Int) {
                                    let index = candidate &+ ch
                                    let v = xp[index]
                                    let wins = v > value
                                    best = wins ? index : best
                                    value = wins ? v : value
                                }
                                challenge(candidates.1)
                                challenge(candidates.2)
                                challenge(candidates.3)
                                yp[out] = value
                                sp[out] = Int32(truncatingIfNeeded: best)
                                out &+= 1
                            }
                        }
                    }
                }
            }
        }
    }
    return sources
}
