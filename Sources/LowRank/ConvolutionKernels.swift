import Tensors

// Convolutions (direct or im2col and a streaming product), LoD convolutions' 1×1 stage,
// ReLU and max pooling, on channel-major image activations.

/// 2×2 max pooling of `planes` channel-major planes (of a rectified input with `rectified`):
/// the `count` maxima and their sources.
func pool(
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
func rectify(_ x: [Float]) -> [Float] {
    [Float](unsafeUninitializedCapacity: x.count) { y, initialized in
        x.withUnsafeBufferPointer { x in
            for i in 0..<x.count { y[i] = max(x[i], 0) }
        }
        initialized = x.count
    }
}

/// `dy` where the ReLU's output is positive, 0 elsewhere.
func rectifierBackward(_ dy: [Float], output y: [Float]) -> [Float] {
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

func lower(_ images: [Float], batch: Int, geometry g: ConvolutionGeometry) -> [Float] {
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

func raise(_ cols: [Float], batch: Int, geometry g: ConvolutionGeometry) -> [Float] {
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
func imageLayout(
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
func broadcastColumns(
    _ bias: [Float], length: Int, into y: UnsafeMutablePointer<Float>
) {
    for (row, value) in bias.enumerated() {
        (y + row * length).update(repeating: value, count: length)
    }
}

/// Each row's sum: the bias gradient of a channel-major convolution output.
func rowSums(_ matrix: [Float], rows: Int, columns: Int, into sums: inout [Float]) {
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

/// The same for output rows a whole number of 8-float vectors wide (the ResNets' 32, 16 and
/// 8), where the direct kernel's vectors waste no lanes: direct up to this many filters.
/// Measured with `maestro bench layers` on `resnet20` (docs/benchmarks.md).
let directConvolutionMaximumFiltersFullVectors = 16

/// The same for kernels of at least `directConvolutionMinimumKernel` over at least
/// `directConvolutionMinimumChannels` input channels, whatever the row width.
///
/// Their patch matrix is k² times the input (25 times for 5×5), and lowering it, streaming
/// it through the products and adding it back costs far more than the lanes the direct
/// kernel wastes at the rows' ends. `cnn`'s second convolution (32 channels, 5×5, rows of
/// 14) at ranks 8 and 16, batch 32: 1.6 / 3.5 and 3.0 / 6.8 ms forward / backward direct,
/// against 11.1 / 16.9 and 14.0 / 17.5 ms lowered (docs/benchmarks.md). LeNet's
/// convolutions (1 and 6 channels) and the ResNets' 3×3 ones keep the rules above.
let directConvolutionMinimumKernel = 5
let directConvolutionMinimumChannels = 8

/// Whether `count` filters of geometry `g` run direct (stride 1 only).
func usesDirectConvolution(filters count: Int, geometry g: ConvolutionGeometry) -> Bool {
    guard g.stride == 1 else { return false }
    let wide =
        g.kernelSize >= directConvolutionMinimumKernel
        && g.channels >= directConvolutionMinimumChannels
    return count <= directConvolutionMaximumFilters
        || ((g.outputWidth % 8 == 0 || wide)
            && count <= directConvolutionMaximumFiltersFullVectors)
}

/// From this many filters (or output channels of a 1×1 stage) up, a convolution's products
/// run in BLAS (`sgemm`, packed, AVX-512 where the CPU has it); below, in the streaming
/// kernels, which need no packing of the few filters' side. LeNet's convolutions (6 and 16
/// filters, and any rank of their LoD forms) stay below, so their results do not move.
let blasConvolutionMinimumFilters = 32

/// Whether a product with `filters` rows on its short side runs in BLAS.
func usesBLAS(filters: Int) -> Bool { filters >= blasConvolutionMinimumFilters }

/// Below the BLAS threshold, a convolution with at least this many input channels whose
/// patch matrix over the batch would pass `chunkedPatchMinimumFloats` (32 MiB: `cnn`'s second
/// convolution at ranks 17 to 31, 40 MB at batch 64) also lowers its input a chunk of images at a
/// time, its products in the streaming kernels. Smaller ones lower the whole batch at once:
/// measured on `resnet20` (patch matrices up to 19 MB), lowering twice cost more than the
/// memory saved. LeNet's convolutions (1 and 6 channels) lower the whole batch, as they
/// always did (the filter gradient's sums over positions would be split otherwise).
let chunkedConvolutionMinimumChannels = 8
let chunkedPatchMinimumFloats = 1 << 23

/// Whether `count` filters of geometry `g` (not run direct) lower the batch in chunks.
func lowersInChunks(filters count: Int, batch: Int, geometry g: ConvolutionGeometry) -> Bool {
    usesBLAS(filters: count)
        || (g.channels >= chunkedConvolutionMinimumChannels
            && g.patchSize * g.outputArea * batch >= chunkedPatchMinimumFloats)
}

/// Floats of the patch matrix of one chunk of images: about 1 MiB, so that
/// a chunk's patches stay in a core's L2 cache between their lowering and the products that
/// read them (the whole batch's would run to tens of MB, written and read back from memory).
let patchChunkFloats = 1 << 18

/// Images per chunk of `batch` for geometry `g` (at least 1).
func imagesPerChunk(batch: Int, geometry g: ConvolutionGeometry) -> Int {
    min(batch, max(1, patchChunkFloats / max(1, g.patchSize * g.outputArea)))
}

/// Runs `body` on consecutive chunks of the batch's images, in order.
func forEachChunk(batch: Int, geometry g: ConvolutionGeometry, _ body: (Range<Int>) -> Void) {
    let step = imagesPerChunk(batch: batch, geometry: g)
    var start = 0
    while start < batch {
        body(start..<min(batch, start + step))
        start += step
    }
}

extension ConvolutionGeometry {
    /// Output positions of one image.
    var outputArea: Int { outputHeight * outputWidth }
}

/// `count` filters `[count, patch]` applied to channel-major images `x`: writes the
/// channel-major `[count, batch·outH·outW]` result into `y` and returns what
/// `filterBackward` needs (the transposed patch matrix, the padded input, or where the
/// batch is lowered a chunk of images at a time, the input itself) in `saved`. On entry,
/// `saved` may hold a previous pass's buffer, which the padded input is written into when
/// it has the size.
func filterForward(
    _ x: [Float], batch: Int, geometry g: ConvolutionGeometry, filters: UnsafePointer<Float>,
    count: Int, into y: inout [Float], saving saved: inout [Float]
) {
    let positions = batch * g.outputHeight * g.outputWidth
    if usesDirectConvolution(filters: count, geometry: g) {
        x.withUnsafeBufferPointer { xp in
            paddedPlanes(
                xp.baseAddress!, planes: g.channels * batch, height: g.height, width: g.width,
                pad: g.padding, into: &saved)
        }
        let padded = saved
        padded.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                convolveDirect(
                    outputs: count, channels: g.channels, batch: batch,
                    paddedHeight: g.height + 2 * g.padding, paddedWidth: g.width + 2 * g.padding,
                    kernel: g.kernelSize, xp.baseAddress!, filters: filters,
                    into: yp.baseAddress!)
            }
        }
        return
    }
    if lowersInChunks(filters: count, batch: batch, geometry: g) {
        let blas = usesBLAS(filters: count)
        var cols = scratch(g.patchSize * imagesPerChunk(batch: batch, geometry: g) * g.outputArea)
        forEachChunk(batch: batch, geometry: g) { images in
            let columns = images.count * g.outputArea
            x.withUnsafeBufferPointer { xp in
                cols.withUnsafeMutableBufferPointer { cp in
                    im2colChannelMajor(
                        xp.baseAddress!, batch: batch, geometry: g, into: cp.baseAddress!,
                        images: images)
                }
            }
            cols.withUnsafeBufferPointer { cp in
                y.withUnsafeMutableBufferPointer { yp in
                    let target = yp.baseAddress! + images.lowerBound * g.outputArea
                    if blas {
                        sgemm(
                            .none, .none, m: count, n: columns, k: g.patchSize, filters,
                            lda: g.patchSize, cp.baseAddress!, ldb: columns, target,
                            ldc: positions)
                    } else {
                        streamingProduct(
                            m: count, n: columns, k: g.patchSize, filters, aRow: g.patchSize,
                            aColumn: 1, cp.baseAddress!, ldb: columns, target, ldc: positions)
                    }
                }
            }
        }
        // The backward pass lowers the input again, chunk by chunk.
        saved = x
        return
    }
    let cols = lower(x, batch: batch, geometry: g)
    cols.withUnsafeBufferPointer { cp in
        y.withUnsafeMutableBufferPointer { yp in
            streamingProduct(
                m: count, n: positions, k: g.patchSize, filters, aRow: g.patchSize, aColumn: 1,
                cp.baseAddress!, ldb: positions, yp.baseAddress!, ldc: positions)
        }
    }
    saved = cols
}

/// Back through `filterForward`: writes the filters' gradient (`[count, patch]`) from the
/// output gradient `dy`, and returns the input gradient (empty unless `needsInput`).
func filterBackward(
    _ saved: [Float], _ dy: [Float], batch: Int, geometry g: ConvolutionGeometry,
    filters: UnsafePointer<Float>, count: Int, gradient: UnsafeMutablePointer<Float>,
    needsInput: Bool
) -> [Float] {
    let (k, c) = (g.kernelSize, g.channels)
    let (oh, ow) = (g.outputHeight, g.outputWidth)
    let positions = batch * oh * ow
    if usesDirectConvolution(filters: count, geometry: g) {
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
    if lowersInChunks(filters: count, batch: batch, geometry: g) {
        let blas = usesBLAS(filters: count)
        // `saved` is the input: lowered again per chunk, the chunk's gradient added on.
        let chunkColumns = imagesPerChunk(batch: batch, geometry: g) * g.outputArea
        var cols = scratch(g.patchSize * chunkColumns)
        var dcols = needsInput ? scratch(g.patchSize * chunkColumns) : []
        var dx = needsInput ? [Float](repeating: 0, count: saved.count) : []
        forEachChunk(batch: batch, geometry: g) { images in
            let columns = images.count * g.outputArea
            let offset = images.lowerBound * g.outputArea
            saved.withUnsafeBufferPointer { xp in
                cols.withUnsafeMutableBufferPointer { cp in
                    im2colChannelMajor(
                        xp.baseAddress!, batch: batch, geometry: g, into: cp.baseAddress!,
                        images: images)
                }
            }
            let beta: Float = images.lowerBound == 0 ? 0 : 1
            dy.withUnsafeBufferPointer { dyp in
                cols.withUnsafeBufferPointer { cp in
                    if blas {
                        sgemm(
                            .none, .transposed, m: count, n: g.patchSize, k: columns,
                            dyp.baseAddress! + offset, lda: positions, cp.baseAddress!,
                            ldb: columns, beta: beta, gradient, ldc: g.patchSize)
                    } else {
                        streamingReduction(
                            m: count, n: g.patchSize, k: columns, dyp.baseAddress! + offset,
                            lda: positions, cp.baseAddress!, ldb: columns, beta: beta, gradient,
                            ldc: g.patchSize)
                    }
                }
                guard needsInput else { return }
                dcols.withUnsafeMutableBufferPointer { dp in
                    if blas {
                        sgemm(
                            .transposed, .none, m: g.patchSize, n: columns, k: count, filters,
                            lda: g.patchSize, dyp.baseAddress! + offset, ldb: positions,
                            dp.baseAddress!, ldc: columns)
                    } else {
                        // The filters' transpose: element (k, o) is filters[o·patch + k].
                        streamingProduct(
                            m: g.patchSize, n: columns, k: count, filters, aRow: 1,
                            aColumn: g.patchSize, dyp.baseAddress! + offset, ldb: positions,
                            dp.baseAddress!, ldc: columns)
                    }
                }
            }
            guard needsInput else { return }
            dcols.withUnsafeBufferPointer { dp in
                dx.withUnsafeMutableBufferPointer { dxp in
                    col2imChannelMajor(
                        dp.baseAddress!, batch: batch, geometry: g, into: dxp.baseAddress!,
                        images: images)
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
func addBias(_ bias: [Float], length: Int, to y: inout [Float]) {
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
func expandRank(
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
func contractRank(
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
