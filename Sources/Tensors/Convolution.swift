/// Geometry of a 2-D convolution on NHWC images: square `kernelSize`, stride 1,
/// symmetric zero `padding`.
public struct ConvolutionGeometry: Sendable, Equatable, Codable {
    public var height: Int
    public var width: Int
    public var channels: Int
    public var kernelSize: Int
    public var padding: Int

    public init(height: Int, width: Int, channels: Int, kernelSize: Int, padding: Int) {
        self.height = height
        self.width = width
        self.channels = channels
        self.kernelSize = kernelSize
        self.padding = padding
    }

    public var outputHeight: Int { height + 2 * padding - kernelSize + 1 }
    public var outputWidth: Int { width + 2 * padding - kernelSize + 1 }
    /// Length of one im2col row: `kernelSize² · channels`, ordered (ky, kx, channel).
    public var patchSize: Int { kernelSize * kernelSize * channels }
}

/// Unfolds NHWC images into patch rows: `[batch · outH · outW, k·k·C]`, patch entries
/// ordered (ky, kx, channel), so each kernel row of a patch is `k·C` consecutive input floats.
///
/// With this layout a convolution is one matrix product `patches · Wᵀ` whose result is
/// already NHWC, and a LoD convolution is a LoD dense layer applied to patch rows.
public func im2col(
    _ images: UnsafePointer<Float>, batch: Int, geometry g: ConvolutionGeometry,
    into patches: UnsafeMutablePointer<Float>
) {
    let (h, w, c, k, p) = (g.height, g.width, g.channels, g.kernelSize, g.padding)
    let (oh, ow) = (g.outputHeight, g.outputWidth)
    let (span, patchSize) = (k * c, g.patchSize)
    // One patch column at a time over the `ow` patch rows of an output row: the loads walk
    // along an image row and the strided stores stay inside a block of `ow · patchSize`
    // floats that fits in L1. Copying a kernel row per patch instead (k·c floats, 5 for
    // LeNet's conv1) spent most of its time in loop and call overhead.
    for n in 0..<batch {
        let image = images + n * h * w * c
        for oy in 0..<oh {
            let rows = patches + (n * oh + oy) * ow * patchSize
            for ky in 0..<k {
                let y = oy + ky - p
                if y < 0 || y >= h {
                    for ox in 0..<ow {
                        (rows + (ox &* patchSize &+ ky &* span)).update(repeating: 0, count: span)
                    }
                    continue
                }
                let line = image + y * w * c
                if c >= im2colRowCopyChannels {
                    copyKernelRows(
                        line, into: rows + ky * span, outputWidth: ow, width: w, channels: c,
                        kernelSize: k, padding: p, patchSize: patchSize)
                    continue
                }
                for kx in 0..<k {
                    // Patch rows whose input column ox + kx − p lies inside the image.
                    let first = min(ow, max(0, p - kx))
                    let end = max(first, min(ow, w + p - kx))
                    for ci in 0..<c {
                        let column = rows + (ky * span + kx * c + ci)
                        let source = line + ci
                        var ox = 0
                        while ox < first {
                            column[ox &* patchSize] = 0
                            ox &+= 1
                        }
                        while ox < end {
                            column[ox &* patchSize] = source[(ox &+ kx &- p) &* c]
                            ox &+= 1
                        }
                        while ox < ow {
                            column[ox &* patchSize] = 0
                            ox &+= 1
                        }
                    }
                }
            }
        }
    }
}

/// From this many channels on, `im2col` copies each kernel row of a patch (`k·C` consecutive
/// floats, 30 for LeNet's conv2) as one run; below, one patch column at a time (see there).
/// Both write the same matrix.
let im2colRowCopyChannels = 4

/// Writes kernel row `ky` of the `ow` patches of one output row: for each patch, the `k·c`
/// input floats under it (zeros where the kernel hangs over the image's left or right edge).
@inline(__always)
private func copyKernelRows(
    _ line: UnsafePointer<Float>, into first: UnsafeMutablePointer<Float>, outputWidth ow: Int,
    width w: Int, channels c: Int, kernelSize k: Int, padding p: Int, patchSize: Int
) {
    let span = k * c
    for ox in 0..<ow {
        let target = first + ox &* patchSize
        let x0 = ox - p
        if x0 >= 0 && x0 + k <= w {
            target.update(from: line + x0 * c, count: span)
            continue
        }
        for kx in 0..<k {
            let x = x0 + kx
            if x >= 0 && x < w {
                (target + kx * c).update(from: line + x * c, count: c)
            } else {
                (target + kx * c).update(repeating: 0, count: c)
            }
        }
    }
}

/// The adjoint of `im2col`: adds each patch row back onto the images it came from.
/// `images` must be zeroed (or hold values to accumulate onto) by the caller.
public func col2im(
    _ patches: UnsafePointer<Float>, batch: Int, geometry g: ConvolutionGeometry,
    into images: UnsafeMutablePointer<Float>
) {
    let (h, w, c, k, p) = (g.height, g.width, g.channels, g.kernelSize, g.padding)
    let (oh, ow) = (g.outputHeight, g.outputWidth)
    let span = k * c
    var row = patches
    for n in 0..<batch {
        let image = images + n * h * w * c
        for oy in 0..<oh {
            for ox in 0..<ow {
                var source = row
                let x0 = ox - p
                let rowInside = x0 >= 0 && x0 + k <= w
                for ky in 0..<k {
                    let y = oy + ky - p
                    if y >= 0 && y < h {
                        if rowInside {
                            let target = image + (y * w + x0) * c
                            for i in 0..<span { target[i] += source[i] }
                        } else {
                            for kx in 0..<k {
                                let x = x0 + kx
                                guard x >= 0 && x < w else { continue }
                                let target = image + (y * w + x) * c
                                for i in 0..<c { target[i] += source[kx * c + i] }
                            }
                        }
                    }
                    source += span
                }
                row += g.patchSize
            }
        }
    }
}
