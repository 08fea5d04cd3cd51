import Tensors

/// What one forward pass keeps for its backward pass.
///
/// `activations[i]` is the input of layer `i` and `activations[layers.count]` the network
/// output (logits). Flat activations are row-major, batch first; image activations
/// (height, width, channels) are channel-major, `[channels, batch, height, width]`, so that
/// convolution, ReLU and pooling all stream contiguous rows (see `im2colChannelMajor`).
/// `flatten` turns them back into per-image (height, width, channel) order, the order
/// dense weights are stored in.
public struct ForwardPass: Sendable {
    public let batch: Int
    /// Rank each LoD layer ran at.
    public let ranks: [Int]
    public internal(set) var activations: [[Float]]
    /// Per layer: the inner activation of LoD layers, `H = X·V_bᵀ` `[batch, b]` for dense
    /// ones and `Hᵀ = V_b·colsᵀ` `[b, positions]` for convolutions (empty otherwise).
    var inner: [[Float]]
    /// Per layer: the transposed patch matrix `colsᵀ` of convolution layers (empty otherwise).
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
        let input = imageLayout(of: input, shape: shapes[0], batch: batch, toChannelMajor: true)
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
        var fusedPool = false
        for index in range {
            if fusedPool {
                // Done with the ReLU before it.
                fusedPool = false
                continue
            }
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
                y = scratch(outputCount)
                let saved = parameters[p].scalars.withUnsafeBufferPointer { w in
                    filterForward(
                        x, batch: batch, geometry: g, filters: w.baseAddress!, count: outputs,
                        into: &y)
                }
                addBias(parameters[p + 1].scalars, length: outputCount / outputs, to: &y)
                pass?.patches[index] = saved
            case .lowRankConvolution(let g, let outputs, _):
                let b = ranks[lowRankIndex]
                let positions = outputCount / outputs
                // H with a row of ones under it: the bias rides in the 1×1 stage's product.
                var h = scratch((b + 1) * positions)
                let saved = parameters[p + 1].scalars.withUnsafeBufferPointer { v in
                    filterForward(
                        x, batch: batch, geometry: g, filters: v.baseAddress!, count: b,
                        into: &h)
                }
                h.withUnsafeMutableBufferPointer {
                    ($0.baseAddress! + b * positions).update(repeating: 1, count: positions)
                }
                y = scratch(outputCount)
                expandRank(
                    h, positions: positions, outputs: outputs, rank: b, up: parameters[p],
                    bias: parameters[p + 2], into: &y)
                pass?.inner[index] = h
                pass?.patches[index] = saved
                lowRankIndex += 1
            case .relu:
                if index + 1 < range.upperBound, fusesRectifierWithPooling(at: index),
                    case .maxPool(let h, let w, let c) = architecture.layers[index + 1]
                {
                    // ReLU and pooling in one pass: the ReLU's output is never stored (its
                    // recorded activation is empty, which the backward pass reads as fused).
                    let pooledCount = batch * shapes[index + 2].reduce(1, *)
                    let (pooled, sources) = pool(
                        x, planes: c * batch, height: h, width: w, count: pooledCount,
                        rectified: true)
                    pass?.activations.append([])
                    pass?.poolSources[index + 1] = sources
                    pass?.activations.append(pooled)
                    x = pooled
                    fusedPool = true
                    continue
                }
                y = rectify(x)
            case .maxPool(let h, let w, let c):
                let sources: [Int32]
                (y, sources) = pool(
                    x, planes: c * batch, height: h, width: w, count: outputCount,
                    rectified: false)
                pass?.poolSources[index] = sources
            case .flatten:
                y = imageLayout(of: x, shape: shapes[index], batch: batch, toChannelMajor: false)
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
    /// gradient with respect to the network input is not computed. The first `frozenLayers`
    /// layers are not back-propagated through at all: their gradients are left as they are
    /// (zero in a trainer), and the first layer with parameters after them computes no input
    /// gradient.
    public func backward(
        _ pass: ForwardPass, outputGradient: [Float], into gradients: inout [Tensor],
        frozenLayers: Int = 0
    ) {
        precondition(
            gradients.map(\.shape) == parameters.map(\.shape),
            "gradient shapes differ from parameters")
        var dy = outputGradient
        guard let stop = firstLayerWithParameters(from: frozenLayers) else { return }
        for index in architecture.layers.indices.reversed() {
            dy = backward(layer: index, pass, outputGradient: dy, into: &gradients, stop: stop)
            if index == stop { break }
        }
    }

    /// The first layer with parameters: back-propagation stops there.
    var firstLayerWithParameters: Int { firstLayerWithParameters(from: 0) ?? 0 }

    /// The first layer at or after `start` with parameters (`nil`: none).
    func firstLayerWithParameters(from start: Int) -> Int? {
        architecture.layers.indices.first {
            $0 >= start && !architecture.layers[$0].parameterShapes.isEmpty
        }
    }

    /// Back-propagates `dy` (∂loss/∂output of layer `index`) through that layer of `pass`:
    /// writes its parameter gradients into `gradients` and returns ∂loss/∂input (empty for
    /// the first layer with parameters, whose input gradient nobody needs).
    func backward(
        layer index: Int, _ pass: ForwardPass, outputGradient dy: [Float],
        into gradients: inout [Tensor], stop: Int? = nil
    ) -> [Float] {
        let layer = architecture.layers[index]
        let x = pass.activations[index]
        let needsInput = index > (stop ?? firstLayerWithParameters)
        let p = architecture.parameterOffsets[index]
        let batch = pass.batch
        let lowRankIndex = architecture.layers[..<index].count(where: \.isLowRank)
        switch layer {
        case .dense(let inputs, let outputs):
            return denseBackward(
                x, dy, rows: batch, inputs: inputs, outputs: outputs, weight: parameters[p],
                gradients: &gradients, at: p, needsInput: needsInput)
        case .lowRankDense(let inputs, let outputs, _):
            return lowRankBackward(
                x, pass.inner[index], dy, rows: batch, inputs: inputs, outputs: outputs,
                rank: pass.ranks[lowRankIndex], up: parameters[p], down: parameters[p + 1],
                gradients: &gradients, at: p, needsInput: needsInput)
        case .convolution(let g, let outputs):
            rowSums(dy, rows: outputs, columns: dy.count / outputs, into: &gradients[p + 1].scalars)
            return parameters[p].scalars.withUnsafeBufferPointer { w in
                gradients[p].scalars.withUnsafeMutableBufferPointer { gw in
                    filterBackward(
                        pass.patches[index], dy, batch: batch, geometry: g,
                        filters: w.baseAddress!, count: outputs, gradient: gw.baseAddress!,
                        needsInput: needsInput)
                }
            }
        case .lowRankConvolution(let g, let outputs, _):
            let b = pass.ranks[lowRankIndex]
            let positions = dy.count / outputs
            let (dh, factorGradient) = contractRank(
                pass.inner[index], dy, positions: positions, outputs: outputs, rank: b,
                up: parameters[p])
            factorGradient.withUnsafeBufferPointer { fg in
                gradients[p].scalars.withUnsafeMutableBufferPointer { gp in
                    gp.baseAddress!.update(from: fg.baseAddress!, count: b * outputs)
                    (gp.baseAddress! + b * outputs).update(
                        repeating: 0, count: gp.count - b * outputs)
                }
                gradients[p + 2].scalars.withUnsafeMutableBufferPointer {
                    $0.baseAddress!.update(from: fg.baseAddress! + b * outputs, count: outputs)
                }
            }
            return parameters[p + 1].scalars.withUnsafeBufferPointer { v in
                gradients[p + 1].scalars.withUnsafeMutableBufferPointer { gv in
                    (gv.baseAddress! + b * g.patchSize).update(
                        repeating: 0, count: gv.count - b * g.patchSize)
                    return filterBackward(
                        pass.patches[index], dh, batch: batch, geometry: g,
                        filters: v.baseAddress!, count: b, gradient: gv.baseAddress!,
                        needsInput: needsInput)
                }
            }
        case .relu:
            guard needsInput else { return [] }
            // Fused with the pooling after it, whose backward pass applied the ReLU's.
            if pass.activations[index + 1].isEmpty { return dy }
            return rectifierBackward(dy, output: pass.activations[index + 1])
        case .maxPool(let h, let w, let c):
            guard needsInput else { return [] }
            // An empty input: the ReLU before was fused in, gated by this layer's output.
            let fused = x.isEmpty
            var dx = scratch(c * batch * h * w)
            dy.withUnsafeBufferPointer { dyp in
                pass.poolSources[index].withUnsafeBufferPointer { sp in
                    pass.activations[index + 1].withUnsafeBufferPointer { yp in
                        dx.withUnsafeMutableBufferPointer { dxp in
                            maxPool2x2Backward(
                                dyp.baseAddress!, sources: sp.baseAddress!, planes: c * batch,
                                height: h, width: w, into: dxp.baseAddress!,
                                rectified: fused ? yp.baseAddress! : nil)
                        }
                    }
                }
            }
            return dx
        case .flatten:
            let shape = architecture.activationShapes[index]
            return imageLayout(of: dy, shape: shape, batch: batch, toChannelMajor: true)
        }
    }

    /// Per layer, the median seconds of its forward and of its backward pass on `input`, as
    /// timed by `measure` (which runs its body repeatedly and returns seconds per run): the
    /// profile `maestro bench --layers` prints. The caller owns the clock. A ReLU and the
    /// pooling after it run as one pass in training, and are timed as one row
    /// (`relu+maxpool`, `layers` covering both).
    public func layerTimes(
        _ input: [Float], batch: Int, ranks: [Int]? = nil,
        measure: (() -> Void) -> Double
    ) -> [(layers: Range<Int>, name: String, forward: Double, backward: Double)] {
        let ranks = ranks ?? keptRanks
        let pass = forward(input, batch: batch, ranks: ranks)
        var gradients = parameters.map { Tensor(zeros: $0.shape) }
        let stop = firstLayerWithParameters
        var rows: [(layers: Range<Int>, name: String, forward: Double, backward: Double)] = []
        var index = 0
        while index < architecture.layers.count {
            let span = fusesRectifierWithPooling(at: index) ? 2 : 1
            let layers = index..<(index + span)
            var recording: ForwardPass? = pass
            let forwardTime = measure {
                _ = run(
                    layers: layers, pass.activations[index], batch: batch, ranks: ranks,
                    recording: &recording)
                recording = pass
            }
            // A stand-in output gradient of the right size: the layers' own output.
            let dy = pass.activations[index + span]
            let backwardTime =
                index < stop
                ? 0
                : measure {
                    var g = dy
                    for layer in layers.reversed() {
                        g = backward(layer: layer, pass, outputGradient: g, into: &gradients)
                    }
                }
            let name = layers.map { architecture.layers[$0].kindName }.joined(separator: "+")
            rows.append((layers, name, forwardTime, backwardTime))
            index += span
        }
        return rows
    }

    /// Whether layer `index` is a ReLU that a forward pass runs together with the max
    /// pooling after it.
    func fusesRectifierWithPooling(at index: Int) -> Bool {
        let layers = architecture.layers
        guard case .relu = layers[index], index + 1 < layers.count,
            case .maxPool = layers[index + 1]
        else { return false }
        return true
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

/// 2×2 max pooling of `planes` channel-major planes (of a rectified input with `rectified`):
/// the `count` maxima and their sources.
private func pool(
    _ x: [Float], planes: Int, height h: Int, width w: Int, count: Int, rectified: Bool
) -> ([Float], [Int32]) {
    var y = scratch(count)
    var sources = [Int32](unsafeUninitializedCapacity: count) { _, n in n = count }
    x.withUnsafeBufferPointer { xp in
        y.withUnsafeMutableBufferPointer { yp in
            sources.withUnsafeMutableBufferPointer { sp in
                maxPool2x2(
                    xp.baseAddress!, planes: planes, height: h, width: w,
                    into: yp.baseAddress!, sources: sp.baseAddress!, rectified: rectified)
            }
        }
    }
    return (y, sources)
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
    // im2colChannelMajor writes every entry: no need to zero the buffer first.
    return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        images.withUnsafeBufferPointer { src in
            im2colChannelMajor(
                src.baseAddress!, batch: batch, geometry: g, into: buffer.baseAddress!)
        }
        initialized = count
    }
}

private func raise(_ cols: [Float], batch: Int, geometry g: ConvolutionGeometry) -> [Float] {
    var images = [Float](repeating: 0, count: batch * g.height * g.width * g.channels)
    cols.withUnsafeBufferPointer { src in
        images.withUnsafeMutableBufferPointer { dst in
            col2imChannelMajor(src.baseAddress!, batch: batch, geometry: g, into: dst.baseAddress!)
        }
    }
    return images
}

/// Image activations (3-D per-image shapes with more than one channel) reordered between
/// per-image (height, width, channel) order and channel-major order; anything else as is.
private func imageLayout(
    of x: [Float], shape: [Int], batch: Int, toChannelMajor: Bool
) -> [Float] {
    guard shape.count == 3, shape[2] > 1 else { return x }
    let (positions, channels) = (shape[0] * shape[1], shape[2])
    return [Float](unsafeUninitializedCapacity: x.count) { y, initialized in
        x.withUnsafeBufferPointer { xp in
            if toChannelMajor {
                channelMajor(
                    xp.baseAddress!, batch: batch, positions: positions, channels: channels,
                    into: y.baseAddress!)
            } else {
                channelMinor(
                    xp.baseAddress!, batch: batch, positions: positions, channels: channels,
                    into: y.baseAddress!)
            }
        }
        initialized = x.count
    }
}

/// Fills each of the `rows` rows of `y` (`length` floats each) with its bias entry.
private func broadcastColumns(
    _ bias: [Float], length: Int, into y: UnsafeMutablePointer<Float>
) {
    for (row, value) in bias.enumerated() {
        (y + row * length).update(repeating: value, count: length)
    }
}

/// Each row's sum: the bias gradient of a channel-major convolution output.
private func rowSums(_ matrix: [Float], rows: Int, columns: Int, into sums: inout [Float]) {
    matrix.withUnsafeBufferPointer { m in
        for i in 0..<rows {
            let row = m.baseAddress! + i * columns
            // Eight partial sums: vectorizes without reassociating.
            var lanes = SIMD8<Float>()
            var j = 0
            while j + 8 <= columns {
                lanes += UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self)
                j += 8
            }
            var total = lanes.sum()
            while j < columns {
                total += row[j]
                j += 1
            }
            sums[i] = total
        }
    }
}

/// From this many filters down, a convolution runs direct (`convolveDirect`), whose cost is
/// proportional to the number of filters; above, as im2col and one streaming product.
/// Measured with `maestro bench --layers` on LeNet's two convolutions (docs/benchmarks.md).
let directConvolutionMaximumFilters = 6

/// `count` filters `[count, patch]` applied to channel-major images `x`: writes the
/// channel-major `[count, batch·outH·outW]` result into `y` and returns what
/// `filterBackward` needs (the transposed patch matrix, or the padded input).
private func filterForward(
    _ x: [Float], batch: Int, geometry g: ConvolutionGeometry, filters: UnsafePointer<Float>,
    count: Int, into y: inout [Float]
) -> [Float] {
    let positions = batch * g.outputHeight * g.outputWidth
    if count <= directConvolutionMaximumFilters {
        let padded = x.withUnsafeBufferPointer { xp in
            paddedPlanes(
                xp.baseAddress!, planes: g.channels * batch, height: g.height, width: g.width,
                pad: g.padding)
        }
        padded.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                convolveDirect(
                    outputs: count, channels: g.channels, batch: batch,
                    paddedHeight: g.height + 2 * g.padding, paddedWidth: g.width + 2 * g.padding,
                    kernel: g.kernelSize, xp.baseAddress!, filters: filters,
                    into: yp.baseAddress!)
            }
        }
        return padded
    }
    let cols = lower(x, batch: batch, geometry: g)
    cols.withUnsafeBufferPointer { cp in
        y.withUnsafeMutableBufferPointer { yp in
            streamingProduct(
                m: count, n: positions, k: g.patchSize, filters, aRow: g.patchSize, aColumn: 1,
                cp.baseAddress!, ldb: positions, yp.baseAddress!, ldc: positions)
        }
    }
    return cols
}

/// Back through `filterForward`: writes the filters' gradient (`[count, patch]`) from the
/// output gradient `dy`, and returns the input gradient (empty unless `needsInput`).
private func filterBackward(
    _ saved: [Float], _ dy: [Float], batch: Int, geometry g: ConvolutionGeometry,
    filters: UnsafePointer<Float>, count: Int, gradient: UnsafeMutablePointer<Float>,
    needsInput: Bool
) -> [Float] {
    let (k, c) = (g.kernelSize, g.channels)
    let (oh, ow) = (g.outputHeight, g.outputWidth)
    let positions = batch * oh * ow
    if count <= directConvolutionMaximumFilters {
        let (hp, wp) = (g.height + 2 * g.padding, g.width + 2 * g.padding)
        saved.withUnsafeBufferPointer { xp in
            dy.withUnsafeBufferPointer { dyp in
                convolveDirectFilterGradient(
                    outputs: count, channels: c, batch: batch, paddedHeight: hp,
                    paddedWidth: wp, kernel: k, xp.baseAddress!, outputGradient: dyp.baseAddress!,
                    into: gradient)
            }
        }
        guard needsInput else { return [] }
        // The input gradient is the output gradient, padded by k − 1 − p, convolved with the
        // filters flipped in space and with channels and filters swapped.
        var flipped = [Float](repeating: 0, count: c * k * k * count)
        for o in 0..<count {
            for ky in 0..<k {
                for kx in 0..<k {
                    for ci in 0..<c {
                        flipped[((ci * k + (k - 1 - ky)) * k + (k - 1 - kx)) * count + o] =
                            filters[((o * k + ky) * k + kx) * c + ci]
                    }
                }
            }
        }
        let pad = k - 1 - g.padding
        let padded = dy.withUnsafeBufferPointer { dyp in
            paddedPlanes(dyp.baseAddress!, planes: count * batch, height: oh, width: ow, pad: pad)
        }
        var dx = scratch(c * batch * g.height * g.width)
        padded.withUnsafeBufferPointer { dp in
            flipped.withUnsafeBufferPointer { fp in
                dx.withUnsafeMutableBufferPointer { dxp in
                    convolveDirect(
                        outputs: c, channels: count, batch: batch, paddedHeight: oh + 2 * pad,
                        paddedWidth: ow + 2 * pad, kernel: k, dp.baseAddress!,
                        filters: fp.baseAddress!, into: dxp.baseAddress!)
                }
            }
        }
        return dx
    }
    dy.withUnsafeBufferPointer { dyp in
        saved.withUnsafeBufferPointer { cp in
            streamingReduction(
                m: count, n: g.patchSize, k: positions, dyp.baseAddress!, lda: positions,
                cp.baseAddress!, ldb: positions, gradient, ldc: g.patchSize)
        }
    }
    guard needsInput else { return [] }
    var dcols = scratch(g.patchSize * positions)
    dy.withUnsafeBufferPointer { dyp in
        dcols.withUnsafeMutableBufferPointer { dp in
            // The filters' transpose: element (k, o) is filters[o·patch + k].
            streamingProduct(
                m: g.patchSize, n: positions, k: count, filters, aRow: 1, aColumn: g.patchSize,
                dyp.baseAddress!, ldb: positions, dp.baseAddress!, ldc: positions)
        }
    }
    return raise(dcols, batch: batch, geometry: g)
}

/// Adds `bias[o]` to each row `o` (`length` floats) of a channel-major output.
private func addBias(_ bias: [Float], length: Int, to y: inout [Float]) {
    y.withUnsafeMutableBufferPointer { yp in
        for (row, value) in bias.enumerated() {
            let start = yp.baseAddress! + row * length
            for i in 0..<length { start[i] += value }
        }
    }
}

/// The 1×1 second stage of a LoD convolution: `Yᵀ = [U_b c]ᵀ·[Hᵀ; 1]` (`[outputs,
/// positions]`): `h` holds `b + 1` rows, the last of them ones, so the bias is the product's
/// last term and the output is written once.
private func expandRank(
    _ h: [Float], positions: Int, outputs: Int, rank b: Int, up: Tensor, bias: Tensor,
    into y: inout [Float]
) {
    // U_b's rows and the bias as one more: [b + 1, outputs].
    var factor = scratch((b + 1) * outputs)
    factor.withUnsafeMutableBufferPointer { f in
        up.scalars.withUnsafeBufferPointer {
            f.baseAddress!.update(from: $0.baseAddress!, count: b * outputs)
        }
        bias.scalars.withUnsafeBufferPointer {
            (f.baseAddress! + b * outputs).update(from: $0.baseAddress!, count: outputs)
        }
    }
    y.withUnsafeMutableBufferPointer { yp in
        h.withUnsafeBufferPointer { hp in
            factor.withUnsafeBufferPointer { fp in
                // Element (o, r) of the transpose is factor[r·outputs + o].
                streamingProduct(
                    m: outputs, n: positions, k: b + 1, fp.baseAddress!, aRow: 1,
                    aColumn: outputs, hp.baseAddress!, ldb: positions, yp.baseAddress!,
                    ldc: positions)
            }
        }
    }
}

/// Back through `expandRank`: `[∂U_b; ∂c] = [Hᵀ; 1]·dY` (`[b + 1, outputs]`) in one pass
/// over `dY`, and `dHᵀ = U_b·dYᵀ`.
private func contractRank(
    _ h: [Float], _ dy: [Float], positions: Int, outputs: Int, rank b: Int, up: Tensor
) -> (dh: [Float], factorGradient: [Float]) {
    var dh = scratch(b * positions)
    var factorGradient = scratch((b + 1) * outputs)
    dy.withUnsafeBufferPointer { dyp in
        h.withUnsafeBufferPointer { hp in
            factorGradient.withUnsafeMutableBufferPointer { fp in
                streamingReduction(
                    m: b + 1, n: outputs, k: positions, hp.baseAddress!, lda: positions,
                    dyp.baseAddress!, ldb: positions, fp.baseAddress!, ldc: outputs)
            }
        }
        up.scalars.withUnsafeBufferPointer { upp in
            dh.withUnsafeMutableBufferPointer { dhp in
                streamingProduct(
                    m: b, n: positions, k: outputs, upp.baseAddress!, aRow: outputs, aColumn: 1,
                    dyp.baseAddress!, ldb: positions, dhp.baseAddress!, ldc: positions)
            }
        }
    }
    return (dh, factorGradient)
}
