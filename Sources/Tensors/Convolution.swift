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
/// ordered (ky, kx, channel) so each kernel row is a contiguous copy of `C` floats.
///
/// With this layout a convolution is one matrix product `patches · Wᵀ` whose result is
/// already NHWC, and a LoD convolution is a LoD dense layer applied to patch rows.
public func im2col(
    _ images: UnsafePointer<Float>, batch: Int, geometry g: ConvolutionGeometry,
    into patches: UnsafeMutablePointer<Float>
) {
    let (h, w, c, k, p) = (g.height, g.width, g.channels, g.kernelSize, g.padding)
    let (oh, ow) = (g.outputHeight, g.outputWidth)
    let span = k * c
    var row = patches
    for n in 0..<batch {
        let image = images + n * h * w * c
        for oy in 0..<oh {
            for ox in 0..<ow {
                var out = row
                let x0 = ox - p
                let rowInside = x0 >= 0 && x0 + k <= w
                for ky in 0..<k {
                    let y = oy + ky - p
                    if y < 0 || y >= h {
                        for i in 0..<span { out[i] = 0 }
                    } else if rowInside {
                        // The k·c floats of this kernel row are contiguous in NHWC.
                        let source = image + (y * w + x0) * c
                        for i in 0..<span { out[i] = source[i] }
                    } else {
                        for kx in 0..<k {
                            let x = x0 + kx
                            let target = out + kx * c
                            if x < 0 || x >= w {
                                for i in 0..<c { target[i] = 0 }
                            } else {
                                let source = image + (y * w + x) * c
                                for i in 0..<c { target[i] = source[i] }
                            }
                        }
                    }
                    out += span
                }
                row += g.patchSize
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
