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
    var row = patches
    for n in 0..<batch {
        let image = images + n * h * w * c
        for oy in 0..<oh {
            for ox in 0..<ow {
                var out = row
                for ky in 0..<k {
                    let y = oy + ky - p
                    if y < 0 || y >= h {
                        out.update(repeating: 0, count: k * c)
                        out += k * c
                        continue
                    }
                    for kx in 0..<k {
                        let x = ox + kx - p
                        if x < 0 || x >= w {
                            out.update(repeating: 0, count: c)
                        } else {
                            out.update(from: image + (y * w + x) * c, count: c)
                        }
                        out += c
                    }
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
    var row = patches
    for n in 0..<batch {
        let image = images + n * h * w * c
        for oy in 0..<oh {
            for ox in 0..<ow {
                var source = row
                for ky in 0..<k {
                    let y = oy + ky - p
                    if y < 0 || y >= h {
                        source += k * c
                        continue
                    }
                    for kx in 0..<k {
                        let x = ox + kx - p
                        if x >= 0 && x < w {
                            let target = image + (y * w + x) * c
                            for ch in 0..<c { target[ch] += source[ch] }
                        }
                        source += c
                    }
                }
                row += g.patchSize
            }
        }
    }
}
