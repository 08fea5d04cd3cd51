import Tensors

/// What one forward pass keeps for its backward pass.
///
/// `activations[i]` is the input of layer `i` and `activations[layers.count]` the network
/// output (logits). Flat activations are row-major, batch first; image activations
/// (height, width, channels) are channel-major, `[channels, batch, height, width]`, so that
/// convolution, ReLU and pooling all stream contiguous rows (see `im2colChannelMajor`).
/// `flatten` turns them back into per-image (height, width, channel) order, the order
/// dense weights are stored in. A layer whose output the next one consumed in the same pass
/// (a ReLU fused into the group normalisation or residual sum before it, or into the max
/// pooling after it) has that output recorded as empty.
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
    /// Per layer: the statistics a normalisation used, mean then variance (batch norm: per
    /// channel; group norm: per sample and group, from which its backward pass recomputes
    /// `x̂`). Empty otherwise.
    public internal(set) var statistics: [[Float]]
    /// Whether batch normalisation used the batch's statistics (training) rather than the
    /// running ones (evaluation).
    public let usesBatchStatistics: Bool
    /// A previous pass's buffers (outputs, inner activations, saved inputs by layer), which
    /// this pass writes into where a layer's buffer has the size it needs, instead of
    /// allocating: a trainer's steady-state step allocates none for them.
    var spareActivations: [[Float]] = []
    var spareInner: [[Float]] = []
    var sparePatches: [[Float]] = []

    /// The network output, `[batch, classCount]`.
    public var logits: [Float] { activations[activations.count - 1] }

    /// Layer `index`'s output buffer of `count` floats: the spare one if it has that size,
    /// else a new one (its contents are undefined either way: the kernel writes every entry).
    mutating func output(of index: Int, count: Int) -> [Float] {
        ForwardPass.take(&spareActivations, index + 1, count: count)
    }

    /// The same for layer `index`'s inner activation.
    mutating func inner(of index: Int, count: Int) -> [Float] {
        ForwardPass.take(&spareInner, index, count: count)
    }

    /// Layer `index`'s spare saved input (`filterForward` checks its size), or an empty array.
    mutating func spareSaved(of index: Int) -> [Float] {
        guard index < sparePatches.count else { return [] }
        var buffer: [Float] = []
        swap(&buffer, &sparePatches[index])
        return buffer
    }

    private static func take(_ spares: inout [[Float]], _ slot: Int, count: Int) -> [Float] {
        guard slot < spares.count, spares[slot].count == count else { return scratch(count) }
        var buffer: [Float] = []
        swap(&buffer, &spares[slot])
        return buffer
    }
}

extension Network {
    /// Runs the network on a batch with each LoD layer truncated to `ranks[l]` components.
    ///
    /// - Parameters:
    ///   - input: `batch × inputSize` features, row-major.
    ///   - ranks: one rank per LoD layer, each `≤ keptRanks[l]`; `nil` means the kept ranks.
    ///   - batchStatistics: batch normalisation normalises with the batch's statistics (as
    ///     in training), or with the running ones in `state` (as in evaluation).
    public func forward(
        _ input: [Float], batch: Int, ranks: [Int]? = nil, batchStatistics: Bool = true
    ) -> ForwardPass {
        var none: ForwardPass? = nil
        return forward(
            input, batch: batch, ranks: ranks, batchStatistics: batchStatistics, reusing: &none)
    }

    /// `forward` that writes into the buffers of `spare`, a previous pass of this network
    /// (taken: `spare` is `nil` after the call). Buffers something else still holds are
    /// copied before they are written, so results never depend on the spare.
    public func forward(
        _ input: [Float], batch: Int, ranks: [Int]? = nil, batchStatistics: Bool = true,
        reusing spare: inout ForwardPass?
    ) -> ForwardPass {
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
            poolSources: Array(repeating: [], count: layerCount),
            statistics: Array(repeating: [], count: layerCount),
            usesBatchStatistics: batchStatistics)
        if var previous = spare.take(), previous.activations.count == layerCount + 1 {
            swap(&pass.spareActivations, &previous.activations)
            swap(&pass.spareInner, &previous.inner)
            swap(&pass.sparePatches, &previous.patches)
            // Outputs that are another layer's buffer (a residual block's input, a flat
            // input passed on): written into, they would be copied first.
            for (index, layer) in architecture.layers.enumerated() {
                switch layer {
                case .residualStart, .residualShortcut, .flatten:
                    pass.spareActivations[index + 1] = []
                default: break
                }
            }
        }
        pass.activations.reserveCapacity(layerCount + 1)
        var recording: ForwardPass? = consume pass
        _ = run(layers: 0..<layerCount, input, batch: batch, ranks: ranks, recording: &recording)
        // Spares no layer took are not kept.
        recording!.spareActivations = []
        recording!.spareInner = []
        recording!.sparePatches = []
        return recording!
    }

    /// Runs layers `range` on `input` (the input of layer `range.lowerBound`) and returns the
    /// output of the last one. With a `recording` pass, stores what `backward` needs in it,
    /// and batch normalisation uses the statistics the pass says; without, the running ones.
    ///
    /// A range that starts inside a residual block takes the block's saved input (and body
    /// output) from the recording.
    func run(
        layers range: Range<Int>, _ input: [Float], batch: Int, ranks: [Int],
        recording pass: inout ForwardPass?
    ) -> [Float] {
        let shapes = architecture.activationShapes
        let offsets = architecture.parameterOffsets
        var lowRankIndex = architecture.layers[..<range.lowerBound].count(where: \.isLowRank)
        var x = input
        // The layer before ran this one (a ReLU) in its own pass.
        var fusedNext = false
        let batchStatistics = pass?.usesBatchStatistics ?? false
        let stateOffsets = architecture.stateOffsets
        // Per open residual block: its input, then (after the body) the body's output.
        var saved: [[Float]] = []
        func savedOrRecorded(_ index: Int, body: Bool) -> [Float] {
            if let last = saved.popLast() { return last }
            guard let block = architecture.residualBlock(containing: index), let pass else {
                preconditionFailure("residual marker \(index) run without its block's input")
            }
            return pass.activations[body ? block.shortcut : block.start]
        }
        for index in range {
            if fusedNext {
                fusedNext = false
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
                y = pass?.output(of: index, count: outputCount) ?? scratch(outputCount)
                var saved = pass?.spareSaved(of: index) ?? []
                parameters[p].scalars.withUnsafeBufferPointer { w in
                    filterForward(
                        x, batch: batch, geometry: g, filters: w.baseAddress!, count: outputs,
                        into: &y, saving: &saved)
                }
                addBias(parameters[p + 1].scalars, length: outputCount / outputs, to: &y)
                pass?.patches[index] = saved
            case .lowRankConvolution(let g, let outputs, _):
                let b = ranks[lowRankIndex]
                let positions = outputCount / outputs
                // H with a row of ones under it: the bias rides in the 1×1 stage's product.
                let innerCount = (b + 1) * positions
                var h = pass?.inner(of: index, count: innerCount) ?? scratch(innerCount)
                var saved = pass?.spareSaved(of: index) ?? []
                parameters[p + 1].scalars.withUnsafeBufferPointer { v in
                    filterForward(
                        x, batch: batch, geometry: g, filters: v.baseAddress!, count: b,
                        into: &h, saving: &saved)
                }
                h.withUnsafeMutableBufferPointer {
                    ($0.baseAddress! + b * positions).update(repeating: 1, count: positions)
                }
                y = pass?.output(of: index, count: outputCount) ?? scratch(outputCount)
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
                    fusedNext = true
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
            case .batchNormalization(let c):
                let s = stateOffsets[index]
                let result = batchNormalizationForward(
                    x, channels: c, scale: parameters[p].scalars, shift: parameters[p + 1].scalars,
                    running: batchStatistics ? nil : (state[s].scalars, state[s + 1].scalars))
                y = result.output
                pass?.inner[index] = result.normalized
                pass?.statistics[index] = result.statistics
            case .groupNormalization(let c, let groups):
                // A ReLU after it runs in the same pass: the normalisation's own output is
                // never stored (its recorded activation is empty, which the backward pass
                // reads as fused).
                let rectified = fusesRectifier(after: index, within: range)
                // Fused, its output is the ReLU's (recorded one layer on).
                y =
                    pass?.output(of: rectified ? index + 1 : index, count: outputCount)
                    ?? scratch(outputCount)
                // Not `pass?.statistics[index] = …`: without a pass, that would skip the call.
                let statistics = groupNormalizationForward(
                    x, channels: c, groups: groups, batch: batch, scale: parameters[p].scalars,
                    shift: parameters[p + 1].scalars, rectified: rectified, into: &y)
                pass?.statistics[index] = statistics
                if rectified {
                    pass?.activations.append([])
                    fusedNext = true
                }
            case .averagePool(let h, let w, let c, let size):
                y = averagePoolForward(x, planes: c * batch, height: h, width: w, size: size)
            case .globalAveragePool(let h, let w, let c):
                y = globalAveragePoolForward(x, channels: c, batch: batch, positions: h * w)
            case .residualStart:
                saved.append(x)
                y = x
            case .residualShortcut:
                let blockInput = savedOrRecorded(index, body: false)
                saved.append(x)
                y = blockInput
            case .residualEnd:
                // A ReLU after the sum runs in the same pass, as after a group normalisation.
                let rectified = fusesRectifier(after: index, within: range)
                y = sum(savedOrRecorded(index, body: true), x, rectified: rectified)
                if rectified {
                    pass?.activations.append([])
                    fusedNext = true
                }
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
        var pending: [[Float]] = []
        for index in architecture.layers.indices.reversed() {
            dy = backward(
                layer: index, pass, outputGradient: dy, into: &gradients, stop: stop,
                pending: &pending)
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

    /// `backward(layer:…)` that also goes through residual markers: `pending` holds, per open
    /// block (last first), the gradient its other branch still has to take.
    ///
    /// Back through `residualEnd`, the sum's gradient goes to both branches (the shortcut's
    /// now, the body's kept); back through `residualShortcut`, the shortcut's input gradient
    /// is kept and the body's taken up; back through `residualStart`, the two are added.
    func backward(
        layer index: Int, _ pass: ForwardPass, outputGradient dy: [Float],
        into gradients: inout [Tensor], stop: Int?, pending: inout [[Float]]
    ) -> [Float] {
        switch architecture.layers[index] {
        case .residualEnd:
            // Fused with the ReLU after it (an empty output): its gate applies here.
            let dy =
                pass.activations[index + 1].isEmpty
                ? rectifierBackward(dy, output: pass.activations[index + 2]) : dy
            pending.append(dy)
            return dy
        case .residualShortcut:
            let body = pending.popLast() ?? []
            pending.append(dy)
            return body
        case .residualStart:
            let shortcut = pending.popLast() ?? []
            return dy.isEmpty ? shortcut : shortcut.isEmpty ? dy : sum(dy, shortcut)
        default:
            return backward(layer: index, pass, outputGradient: dy, into: &gradients, stop: stop)
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
            // Fused with the pooling after it, or the normalisation or sum before it, whose
            // backward pass applies the ReLU's.
            if pass.activations[index + 1].isEmpty || x.isEmpty { return dy }
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
        case .batchNormalization(let c):
            return batchNormalizationBackward(
                dy, normalized: pass.inner[index], statistics: pass.statistics[index], channels: c,
                batchStatistics: pass.usesBatchStatistics, scale: parameters[p].scalars,
                gradients: &gradients, at: p, needsInput: needsInput)
        case .groupNormalization(let c, let groups):
            let fused = pass.activations[index + 1].isEmpty
            return groupNormalizationBackward(
                dy, input: x, rectifiedOutput: fused ? pass.activations[index + 2] : nil,
                statistics: pass.statistics[index], channels: c, groups: groups, batch: batch,
                scale: parameters[p].scalars, gradients: &gradients, at: p,
                needsInput: needsInput)
        case .averagePool(let h, let w, let c, let size):
            guard needsInput else { return [] }
            return averagePoolBackward(dy, planes: c * batch, height: h, width: w, size: size)
        case .globalAveragePool(let h, let w, let c):
            guard needsInput else { return [] }
            return globalAveragePoolBackward(dy, channels: c, batch: batch, positions: h * w)
        case .residualStart, .residualShortcut, .residualEnd:
            preconditionFailure("residual marker \(index) needs the pending gradients")
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
            let span =
                fusesRectifierWithPooling(at: index)
                    || fusesRectifier(after: index, within: index..<(index + 2)) ? 2 : 1
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
            if architecture.layers[index].isResidualMarker {
                // Bookkeeping (and the sum at a block's end); its backward is a hand-over.
                let name = layers.map { architecture.layers[$0].kindName }.joined(separator: "+")
                rows.append((layers, name, forwardTime, 0))
                index += span
                continue
            }
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

    /// Whether layer `index` is a group normalisation or a residual sum that a forward pass
    /// running layers `range` runs together with the ReLU after it.
    func fusesRectifier(after index: Int, within range: Range<Int>) -> Bool {
        let layers = architecture.layers
        guard index + 1 < range.upperBound, index + 1 < layers.count,
            case .relu = layers[index + 1]
        else { return false }
        switch layers[index] {
        case .groupNormalization, .residualEnd: return true
        default: return false
        }
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
