import CKernels

/// Geometry of a 2-D convolution: square `kernelSize`, `stride` (1 unless set), symmetric zero
/// `padding`.
///
/// Shapes are given per image as (height, width, channels). Inside a network, batches of
/// images are stored **channel-major**, `[channels, batch, height, width]`, so that every
/// kernel here reads and writes contiguous rows (see `im2colChannelMajor`).
///
/// A stride of 1 is left out of the encoded form, so that descriptions (and the model files
/// holding them) written before strides existed keep their exact bytes.
public struct ConvolutionGeometry: Sendable, Equatable, Codable {
    public var height: Int
    public var width: Int
    public var channels: Int
    public var kernelSize: Int
    public var padding: Int
    public var stride: Int

    public init(
        height: Int, width: Int, channels: Int, kernelSize: Int, padding: Int, stride: Int = 1
    ) {
        self.height = height
        self.width = width
        self.channels = channels
        self.kernelSize = kernelSize
        self.padding = padding
        self.stride = stride
    }

    private enum CodingKeys: String, CodingKey {
        case height, width, channels, kernelSize, padding, stride
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        height = try container.decode(Int.self, forKey: .height)
        width = try container.decode(Int.self, forKey: .width)
        channels = try container.decode(Int.self, forKey: .channels)
        kernelSize = try container.decode(Int.self, forKey: .kernelSize)
        padding = try container.decode(Int.self, forKey: .padding)
        stride = try container.decodeIfPresent(Int.self, forKey: .stride) ?? 1
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(height, forKey: .height)
        try container.encode(width, forKey: .width)
        try container.encode(channels, forKey: .channels)
        try container.encode(kernelSize, forKey: .kernelSize)
        try container.encode(padding, forKey: .padding)
        if stride != 1 { try container.encode(stride, forKey: .stride) }
    }

    /// Output rows: `⌊(height + 2·padding − kernelSize) / stride⌋ + 1` (0 when the kernel does
    /// not fit, or the stride is not positive).
    public var outputHeight: Int { Self.extent(height, padding, kernelSize, stride) }
    public var outputWidth: Int { Self.extent(width, padding, kernelSize, stride) }
    /// Entries of one patch: `kernelSize² · channels`, ordered (ky, kx, channel), the order of
    /// a convolution weight's columns.
    public var patchSize: Int { kernelSize * kernelSize * channels }

    private static func extent(_ size: Int, _ padding: Int, _ kernel: Int, _ stride: Int) -> Int {
        let span = size + 2 * padding - kernel
        guard stride >= 1, span >= 0 else { return min(span + 1, 0) }
        return span / stride + 1
    }
}

/// Unfolds channel-major images `[C, batch, H, W]` into the transposed patch matrix
/// `[k·k·C, batch·outH·outW]`: row (ky, kx, c) holds, for every output position, the input
/// value under kernel tap (ky, kx) of channel c (zero where the kernel hangs over the edge).
///
/// Each row is written as runs of `outW` consecutive floats copied from one input row, so
/// loads and stores are contiguous. A convolution is then `Yᵀ = W · colsᵀ`, whose result
/// `[outputs, batch·outH·outW]` is again channel-major.
///
/// With `images`, only those images of the batch: the columns of images `images` alone
/// (`images.count·outH·outW` per row), as a product over a chunk of the batch reads them.
public func im2colChannelMajor(
    _ images: UnsafePointer<Float>, batch: Int, geometry g: ConvolutionGeometry,
    into patches: UnsafeMutablePointer<Float>, images range: Range<Int>? = nil
) {
    let range = range ?? 0..<batch
    if g.stride != 1 {
        im2colStrided(images, batch: batch, geometry: g, into: patches, images: range)
        return
    }
    let (h, w, c, k, p) = (g.height, g.width, g.channels, g.kernelSize, g.padding)
    let (oh, ow) = (g.outputHeight, g.outputWidth)
    let positions = range.count * oh * ow
    for ky in 0..<k {
        for kx in 0..<k {
            // Output columns whose input column ox + kx − p lies inside the image.
            let first = min(ow, max(0, p - kx))
            let end = max(first, min(ow, w + p - kx))
            for ci in 0..<c {
                var target = patches + ((ky * k + kx) * c + ci) * positions
                for n in range {
                    let plane = images + (ci * batch + n) * h * w
                    for oy in 0..<oh {
                        let y = oy + ky - p
                        if y < 0 || y >= h {
                            target.update(repeating: 0, count: ow)
                        } else {
                            target.update(repeating: 0, count: first)
                            (target + first).update(
                                from: plane + y * w + first + kx - p, count: end - first)
                            (target + end).update(repeating: 0, count: ow - end)
                        }
                        target += ow
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2colChannelMajor`: adds each entry of the transposed patch matrix back
/// onto the input value it was copied from. `images` (channel-major) must be zeroed, or hold
/// values to accumulate onto.
/// With `images`, the patch matrix holds those images of the batch only (as
/// `im2colChannelMajor` with `images` writes it), and only they are added to.
public func col2imChannelMajor(
    _ patches: UnsafePointer<Float>, batch: Int, geometry g: ConvolutionGeometry,
    into images: UnsafeMutablePointer<Float>, images range: Range<Int>? = nil
) {
    let range = range ?? 0..<batch
    if g.stride != 1 {
        col2imStrided(patches, batch: batch, geometry: g, into: images, images: range)
        return
    }
    let (h, w, c, k, p) = (g.height, g.width, g.channels, g.kernelSize, g.padding)
    let (oh, ow) = (g.outputHeight, g.outputWidth)
    let positions = range.count * oh * ow
    for ky in 0..<k {
        for kx in 0..<k {
            let first = min(ow, max(0, p - kx))
            let end = max(first, min(ow, w + p - kx))
            let count = end - first
            for ci in 0..<c {
                var source = UnsafePointer(patches + ((ky * k + kx) * c + ci) * positions)
                for n in range {
                    let plane = images + (ci * batch + n) * h * w
                    for oy in 0..<oh {
                        let y = oy + ky - p
                        if y >= 0 && y < h && count > 0 {
                            let target = plane + y * w + first + kx - p
                            let from = source + first
                            for i in 0..<count { target[i] += from[i] }
                        }
                        source += ow
                    }
                }
            }
        }
    }
}

/// `im2colChannelMajor` for a stride above 1: input row `oy·s + ky − p`, column
/// `ox·s + kx − p` (a gather; zero outside the image).
private func im2colStrided(
    _ images: UnsafePointer<Float>, batch: Int, geometry g: ConvolutionGeometry,
    into patches: UnsafeMutablePointer<Float>, images range: Range<Int>
) {
    let (h, w, c, k, p, s) = (g.height, g.width, g.channels, g.kernelSize, g.padding, g.stride)
    let (oh, ow) = (g.outputHeight, g.outputWidth)
    var target = patches
    for ky in 0..<k {
        for kx in 0..<k {
            let (first, end) = stridedColumns(kx, geometry: g)
            for ci in 0..<c {
                for n in range {
                    let plane = images + (ci * batch + n) * h * w
                    for oy in 0..<oh {
                        let y = oy * s + ky - p
                        if y < 0 || y >= h {
                            target.update(repeating: 0, count: ow)
                        } else {
                            // No test per entry: the columns inside the image are a range.
                            let row = plane + y * w + kx - p
                            target.update(repeating: 0, count: first)
                            for ox in first..<end { target[ox] = row[ox * s] }
                            (target + end).update(repeating: 0, count: ow - end)
                        }
                        target += ow
                    }
                }
            }
        }
    }
}

/// The output columns `first..<end` whose input column `ox·stride + kx − padding` lies inside
/// the image.
private func stridedColumns(_ kx: Int, geometry g: ConvolutionGeometry) -> (Int, Int) {
    let (s, ow) = (g.stride, g.outputWidth)
    // ox·s ≥ p − kx and ox·s ≤ w − 1 + p − kx.
    let low = g.padding - kx
    let first = min(ow, max(0, low <= 0 ? 0 : (low + s - 1) / s))
    let high = g.width - 1 + g.padding - kx
    let end = max(first, min(ow, high < 0 ? 0 : high / s + 1))
    return (first, end)
}

/// The adjoint of `im2colStrided`: accumulates each patch entry onto its input value.
private func col2imStrided(
    _ patches: UnsafePointer<Float>, batch: Int, geometry g: ConvolutionGeometry,
    into images: UnsafeMutablePointer<Float>, images range: Range<Int>
) {
    let (h, w, c, k, p, s) = (g.height, g.width, g.channels, g.kernelSize, g.padding, g.stride)
    let (oh, ow) = (g.outputHeight, g.outputWidth)
    var source = patches
    for ky in 0..<k {
        for kx in 0..<k {
            let (first, end) = stridedColumns(kx, geometry: g)
            for ci in 0..<c {
                for n in range {
                    let plane = images + (ci * batch + n) * h * w
                    for oy in 0..<oh {
                        let y = oy * s + ky - p
                        if y >= 0 && y < h {
                            let row = plane + y * w + kx - p
                            for ox in first..<end { row[ox * s] += source[ox] }
                        }
                        source += ow
                    }
                }
            }
        }
    }
}

/// Reorders `[batch, positions, channels]` (NHWC) into `[channels, batch, positions]`.
public func channelMajor(
    _ source: UnsafePointer<Float>, batch: Int, positions: Int, channels: Int,
    into target: UnsafeMutablePointer<Float>
) {
    for n in 0..<batch {
        for q in 0..<positions {
            let from = source + (n * positions + q) * channels
            for ci in 0..<channels { target[(ci * batch + n) * positions + q] = from[ci] }
        }
    }
}

/// Reorders `[channels, batch, positions]` into `[batch, positions, channels]` (NHWC): the
/// inverse of `channelMajor`.
public func channelMinor(
    _ source: UnsafePointer<Float>, batch: Int, positions: Int, channels: Int,
    into target: UnsafeMutablePointer<Float>
) {
    for n in 0..<batch {
        for q in 0..<positions {
            let to = target + (n * positions + q) * channels
            for ci in 0..<channels { to[ci] = source[(ci * batch + n) * positions + q] }
        }
    }
}

/// 2×2 stride-2 max pooling of `planes` channel-major planes of `height × width` (odd edges
/// dropped). Writes the maxima and, per output, the flat input index of its maximum (the
/// first one in row order on ties).
///
/// `rectified` pools `max(x, 0)` instead, in the same pass (a ReLU before the pooling: the
/// maximum commutes with it, so the pass over the unpooled ReLU output is saved). The sources
/// are then those of `x`; where the maximum is ≤ 0 the output is 0 and its gradient is 0
/// (`maxPool2x2Backward` with `rectified`), as through a separate ReLU.
public func maxPool2x2(
    _ x: UnsafePointer<Float>, planes: Int, height h: Int, width w: Int,
    into y: UnsafeMutablePointer<Float>, sources: UnsafeMutablePointer<Int32>,
    rectified: Bool = false
) {
    let (oh, ow) = (h / 2, w / 2)
    var out = 0
    for plane in 0..<planes {
        let base = plane * h * w
        for oy in 0..<oh {
            let top = base + 2 * oy * w
            let bottom = top + w
            for ox in 0..<ow {
                // Selects, not branches: the winner is data-dependent.
                var best = top &+ 2 &* ox
                var value = x[best]
                @inline(__always) func challenge(_ candidate: Int) {
                    let v = x[candidate]
                    let wins = v > value
                    best = wins ? candidate : best
                    value = wins ? v : value
                }
                challenge(top &+ 2 &* ox &+ 1)
                challenge(bottom &+ 2 &* ox)
                challenge(bottom &+ 2 &* ox &+ 1)
                y[out] = rectified ? max(value, 0) : value
                sources[out] = Int32(truncatingIfNeeded: best)
                out &+= 1
            }
        }
    }
}

/// Channel-major planes zero-padded by `pad` on every side (a negative `pad` crops), with the
/// slack the direct convolutions may read past the end.
public func paddedPlanes(
    _ x: UnsafePointer<Float>, planes: Int, height: Int, width: Int, pad: Int
) -> [Float] {
    let count = planes * (height + 2 * pad) * (width + 2 * pad)
    let slack = Int(MAESTRO_DIRECT_SLACK)
    return [Float](unsafeUninitializedCapacity: count + slack) { buffer, initialized in
        maestro_pad_planes(x, planes, height, width, pad, buffer.baseAddress!)
        (buffer.baseAddress! + count).initialize(repeating: 0, count: slack)
        initialized = count + slack
    }
}

/// `paddedPlanes` written into `buffer`, which is replaced by a new array unless it already
/// holds the padded planes' size (as when it held the same layer's planes on the last step).
public func paddedPlanes(
    _ x: UnsafePointer<Float>, planes: Int, height: Int, width: Int, pad: Int,
    into buffer: inout [Float]
) {
    let count = planes * (height + 2 * pad) * (width + 2 * pad)
    let slack = Int(MAESTRO_DIRECT_SLACK)
    guard buffer.count == count + slack else {
        buffer = paddedPlanes(x, planes: planes, height: height, width: width, pad: pad)
        return
    }
    buffer.withUnsafeMutableBufferPointer {
        maestro_pad_planes(x, planes, height, width, pad, $0.baseAddress!)
        ($0.baseAddress! + count).update(repeating: 0, count: slack)
    }
}

/// Direct convolution of `channels × batch` padded planes (`paddedPlanes`) of
/// `paddedHeight × paddedWidth` with `outputs` filters `w[o][(ky, kx, c)]`: writes the
/// channel-major `[outputs, batch, outH, outW]` result. No patch matrix: for few filters
/// (low ranks), its cost is proportional to their number. `portable` runs the portable loops
/// on any CPU, for tests.
public func convolveDirect(
    outputs: Int, channels: Int, batch: Int, paddedHeight: Int, paddedWidth: Int, kernel: Int,
    _ input: UnsafePointer<Float>, filters: UnsafePointer<Float>,
    into output: UnsafeMutablePointer<Float>, portable: Bool = false
) {
    if portable {
        guard outputs > 0, batch > 0, paddedHeight >= kernel, paddedWidth >= kernel else { return }
        maestro_convolve_portable(
            outputs, channels, batch, paddedHeight, paddedWidth, kernel, input, filters, output)
    } else {
        maestro_convolve(
            outputs, channels, batch, paddedHeight, paddedWidth, kernel, input, filters, output)
    }
}

/// The filter gradient of `convolveDirect`: `∂w[o][(ky, kx, c)]` from the output gradient.
public func convolveDirectFilterGradient(
    outputs: Int, channels: Int, batch: Int, paddedHeight: Int, paddedWidth: Int, kernel: Int,
    _ input: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>,
    into gradient: UnsafeMutablePointer<Float>, portable: Bool = false
) {
    if portable {
        maestro_convolve_filter_gradient_portable(
            outputs, channels, batch, paddedHeight, paddedWidth, kernel, input, outputGradient,
            gradient)
    } else {
        maestro_convolve_filter_gradient(
            outputs, channels, batch, paddedHeight, paddedWidth, kernel, input, outputGradient,
            gradient)
    }
}

/// The adjoint of `maxPool2x2`: each output's gradient goes to the input its maximum came
/// from, every other input gets 0. (Zeroing and then scattering measured 5× faster than
/// writing each window's four entries in one pass.)
///
/// With `rectified` (the pooled output `y` of a `rectified` `maxPool2x2`), only outputs
/// that are > 0 pass their gradient on: the ReLU's backward, fused.
public func maxPool2x2Backward(
    _ dy: UnsafePointer<Float>, sources: UnsafePointer<Int32>, planes: Int, height h: Int,
    width w: Int, into dx: UnsafeMutablePointer<Float>, rectified y: UnsafePointer<Float>? = nil
) {
    dx.update(repeating: 0, count: planes * h * w)
    let count = planes * (h / 2) * (w / 2)
    if let y {
        // A select, not a branch: the sign is data-dependent.
        for i in 0..<count { dx[Int(sources[i])] += y[i] > 0 ? dy[i] : 0 }
    } else {
        for i in 0..<count { dx[Int(sources[i])] += dy[i] }
    }
}
