import Tensors
import TestSupport
import Testing

/// Per-image geometries: odd shapes, LeNet's two layers, padding wider than the kernel's
/// reach, a kernel wider than the image, 1×1, an output row of exactly two vectors.
let convolutionShapes = [
    (6, 5, 3, 3, 1), (28, 28, 1, 5, 2), (14, 14, 6, 5, 0), (4, 3, 2, 3, 3), (3, 2, 2, 5, 2),
    (1, 1, 1, 1, 0), (7, 4, 5, 1, 1), (10, 9, 4, 3, 1), (5, 7, 8, 5, 3), (3, 18, 2, 3, 0),
]

/// Value of channel-major image element (c, n, y, x), zero outside the image.
private func pixel(
    _ images: [Float], _ g: ConvolutionGeometry, batch: Int, c: Int, n: Int, y: Int, x: Int
) -> Float {
    guard y >= 0, y < g.height, x >= 0, x < g.width else { return 0 }
    return images[((c * batch + n) * g.height + y) * g.width + x]
}

@Suite("Channel-major im2col / col2im")
struct ChannelMajorLoweringTests {
    /// The transposed patch matrix by its definition, one entry at a time.
    static func reference(
        _ images: [Float], batch: Int, geometry g: ConvolutionGeometry
    )
        -> [Float]
    {
        var patches: [Float] = []
        for ky in 0..<g.kernelSize {
            for kx in 0..<g.kernelSize {
                for c in 0..<g.channels {
                    for n in 0..<batch {
                        for oy in 0..<g.outputHeight {
                            for ox in 0..<g.outputWidth {
                                patches.append(
                                    pixel(
                                        images, g, batch: batch, c: c, n: n,
                                        y: oy + ky - g.padding, x: ox + kx - g.padding))
                            }
                        }
                    }
                }
            }
        }
        return patches
    }

    @Test("im2col writes exactly the transposed patch matrix", arguments: convolutionShapes)
    func exact(height: Int, width: Int, channels: Int, kernel: Int, padding: Int) {
        var generator = SeededGenerator(seed: 3)
        let g = ConvolutionGeometry(
            height: height, width: width, channels: channels, kernelSize: kernel, padding: padding)
        let batch = 3
        let images = Tensor.randomNormal(
            shape: [channels * batch * height * width], using: &generator
        ).scalars
        var patches = [Float](
            repeating: .nan, count: batch * g.outputHeight * g.outputWidth * g.patchSize)
        images.withUnsafeBufferPointer { src in
            patches.withUnsafeMutableBufferPointer { dst in
                im2colChannelMajor(
                    src.baseAddress!, batch: batch, geometry: g, into: dst.baseAddress!)
            }
        }
        let expected = Self.reference(images, batch: batch, geometry: g)
        #expect(patches.map(\.bitPattern) == expected.map(\.bitPattern))
    }

    @Test(
        "col2im is im2col's adjoint: <im2col(x), p> = <x, col2im(p)>",
        arguments: convolutionShapes)
    func adjoint(height: Int, width: Int, channels: Int, kernel: Int, padding: Int) {
        var generator = SeededGenerator(seed: 5)
        let g = ConvolutionGeometry(
            height: height, width: width, channels: channels, kernelSize: kernel, padding: padding)
        let batch = 2
        let images = Tensor.randomNormal(
            shape: [channels * batch * height * width], using: &generator
        ).scalars
        let patches = Self.reference(images, batch: batch, geometry: g)
        let probe = Tensor.randomNormal(shape: [patches.count], using: &generator).scalars
        var back = [Float](repeating: 0, count: images.count)
        probe.withUnsafeBufferPointer { src in
            back.withUnsafeMutableBufferPointer { dst in
                col2imChannelMajor(
                    src.baseAddress!, batch: batch, geometry: g, into: dst.baseAddress!)
            }
        }
        let lhs = zip(patches, probe).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let rhs = zip(images, back).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(lhs - rhs) <= 1e-5 * max(1, abs(lhs)))
    }

    @Test("channelMajor and channelMinor are inverse reorderings")
    func layouts() {
        var generator = SeededGenerator(seed: 7)
        let (batch, positions, channels) = (3, 5, 4)
        let nhwc = Tensor.randomNormal(shape: [batch * positions * channels], using: &generator)
            .scalars
        var major = [Float](repeating: .nan, count: nhwc.count)
        var back = major
        nhwc.withUnsafeBufferPointer { src in
            major.withUnsafeMutableBufferPointer { dst in
                channelMajor(
                    src.baseAddress!, batch: batch, positions: positions, channels: channels,
                    into: dst.baseAddress!)
            }
        }
        #expect(major[(2 * batch + 1) * positions + 3] == nhwc[(1 * positions + 3) * channels + 2])
        major.withUnsafeBufferPointer { src in
            back.withUnsafeMutableBufferPointer { dst in
                channelMinor(
                    src.baseAddress!, batch: batch, positions: positions, channels: channels,
                    into: dst.baseAddress!)
            }
        }
        #expect(back.map(\.bitPattern) == nhwc.map(\.bitPattern))
    }

    @Test(
        "2×2 max pooling picks each window's maximum and its index",
        arguments: [(4, 6), (5, 7), (2, 2), (1, 3)])
    func pooling(height: Int, width: Int) {
        var generator = SeededGenerator(seed: 9)
        let planes = 3
        var x = Tensor.randomNormal(shape: [planes * height * width], using: &generator).scalars
        if x.count > 1 { x[1] = x[0] }  // a tie: the first in row order wins
        let (oh, ow) = (height / 2, width / 2)
        var y = [Float](repeating: .nan, count: planes * oh * ow)
        var sources = [Int32](repeating: -1, count: y.count)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                sources.withUnsafeMutableBufferPointer { sp in
                    maxPool2x2(
                        xp.baseAddress!, planes: planes, height: height, width: width,
                        into: yp.baseAddress!, sources: sp.baseAddress!)
                }
            }
        }
        // Backward: the scatter of each gradient onto its source, zeros elsewhere.
        let dy = Tensor.randomNormal(shape: [y.count], using: &generator).scalars
        var scattered = [Float](repeating: 0, count: x.count)
        for i in dy.indices { scattered[Int(sources[i])] += dy[i] }
        var dx = [Float](repeating: .nan, count: x.count)
        dy.withUnsafeBufferPointer { dp in
            sources.withUnsafeBufferPointer { sp in
                dx.withUnsafeMutableBufferPointer { dxp in
                    maxPool2x2Backward(
                        dp.baseAddress!, sources: sp.baseAddress!, planes: planes, height: height,
                        width: width, into: dxp.baseAddress!)
                }
            }
        }
        #expect(dx.map(\.bitPattern) == scattered.map(\.bitPattern))
        var out = 0
        for plane in 0..<planes {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let base = plane * height * width
                    let window = [
                        base + 2 * oy * width + 2 * ox, base + 2 * oy * width + 2 * ox + 1,
                        base + (2 * oy + 1) * width + 2 * ox,
                        base + (2 * oy + 1) * width + 2 * ox + 1,
                    ]
                    let best = window.max { x[$0] < x[$1] || (x[$0] == x[$1] && $0 > $1) }!
                    #expect(y[out] == x[best])
                    #expect(Int(sources[out]) == best)
                    out += 1
                }
            }
        }
    }
    @Test(
        "Rectified pooling equals ReLU then pooling, forward and backward, bit for bit",
        arguments: [(4, 6), (5, 7), (28, 28)])
    func rectifiedPooling(height: Int, width: Int) {
        var generator = SeededGenerator(seed: 11)
        let planes = 4
        var x = Tensor.randomNormal(shape: [planes * height * width], using: &generator).scalars
        // A window of negatives (its output is 0, its gradient none) and one topped by a 0.
        (x[0], x[1], x[width], x[width + 1]) = (-1, -2, -0.5, -3)
        (x[2], x[3], x[width + 2], x[width + 3]) = (0, -2, -0.5, -3)
        let relu = x.map { max($0, 0) }
        let count = planes * (height / 2) * (width / 2)
        func pooled(_ input: [Float], rectified: Bool) -> ([Float], [Int32]) {
            var y = [Float](repeating: .nan, count: count)
            var sources = [Int32](repeating: -1, count: count)
            input.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    sources.withUnsafeMutableBufferPointer { sp in
                        maxPool2x2(
                            xp.baseAddress!, planes: planes, height: height, width: width,
                            into: yp.baseAddress!, sources: sp.baseAddress!, rectified: rectified)
                    }
                }
            }
            return (y, sources)
        }
        let (separate, separateSources) = pooled(relu, rectified: false)
        let (fused, fusedSources) = pooled(x, rectified: true)
        #expect(fused.map(\.bitPattern) == separate.map(\.bitPattern))
        #expect(fused.contains(0) && fused.contains { $0 > 0 })
        let dy = Tensor.randomNormal(shape: [count], using: &generator).scalars
        func gradient(_ sources: [Int32], gate: [Float]?) -> [Float] {
            var dx = [Float](repeating: .nan, count: x.count)
            dy.withUnsafeBufferPointer { dp in
                sources.withUnsafeBufferPointer { sp in
                    dx.withUnsafeMutableBufferPointer { dxp in
                        if let gate {
                            gate.withUnsafeBufferPointer { gp in
                                maxPool2x2Backward(
                                    dp.baseAddress!, sources: sp.baseAddress!, planes: planes,
                                    height: height, width: width, into: dxp.baseAddress!,
                                    rectified: gp.baseAddress!)
                            }
                        } else {
                            maxPool2x2Backward(
                                dp.baseAddress!, sources: sp.baseAddress!, planes: planes,
                                height: height, width: width, into: dxp.baseAddress!)
                        }
                    }
                }
            }
            return dx
        }
        // Pooling's backward, then the ReLU's (zero where the ReLU's output is ≤ 0).
        let expected = zip(gradient(separateSources, gate: nil), relu).map { $1 > 0 ? $0 : 0 }
        let actual = gradient(fusedSources, gate: fused)
        #expect(actual.map(\.bitPattern) == expected.map(\.bitPattern))
    }
}

@Suite("Streaming products against a plain-loop reference")
struct StreamingProductTests {
    @Test(
        "C = βC + A·B with strided A (and Aᵀ) on odd shapes",
        arguments: [
            (1, 1, 1), (1, 50, 25), (2, 33, 150), (5, 17, 3), (6, 16, 25), (7, 47, 16),
            (13, 64, 2), (16, 100, 150), (150, 40, 16), (3, 0, 4), (4, 5, 0),
        ])
    func product(m: Int, n: Int, k: Int) {
        var generator = SeededGenerator(seed: UInt64(m * 1000 + n * 10 + k))
        let a = Tensor.randomNormal(shape: [m, k], using: &generator)
        let b = Tensor.randomNormal(shape: [k, n], using: &generator)
        let c0 = Tensor.randomNormal(shape: [m, n], using: &generator)
        let expected = referenceMatmul(a, b)
        let at = a.transposed()
        for portable in [false, true] {
            for (transposedA, beta) in [(false, Float(0)), (true, 0), (false, 1), (true, 0.5)] {
                // β = 0 must not read C: start from NaN.
                var c = beta == 0 ? [Float](repeating: .nan, count: m * n) : c0.scalars
                let source = transposedA ? at.scalars : a.scalars
                source.withUnsafeBufferPointer { ap in
                    b.scalars.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            guard let cbase = cp.baseAddress, let bbase = bp.baseAddress,
                                let abase = ap.baseAddress
                            else { return }
                            streamingProduct(
                                m: m, n: n, k: k, abase, aRow: transposedA ? 1 : k,
                                aColumn: transposedA ? m : 1, bbase, ldb: n, beta: beta, cbase,
                                ldc: n, portable: portable)
                        }
                    }
                }
                var want = expected
                for i in want.scalars.indices { want.scalars[i] += beta * c0.scalars[i] }
                #expect(
                    isClose(Tensor(shape: [m, n], scalars: c), want, tolerance: 1e-5),
                    "portable \(portable), Aᵀ \(transposedA), β \(beta)")
            }
        }
    }

    @Test(
        "C = βC + A·Bᵀ (a reduction along the long side) on odd shapes",
        arguments: [
            (1, 1, 1), (1, 25, 50176), (2, 150, 6400), (6, 25, 777), (5, 7, 9), (16, 150, 300),
            (4, 3, 8), (9, 10, 257), (3, 4, 0),
        ])
    func reduction(m: Int, n: Int, k: Int) {
        var generator = SeededGenerator(seed: UInt64(m * 1000 + n * 10 + k))
        let a = Tensor.randomNormal(shape: [m, k], using: &generator)
        let b = Tensor.randomNormal(shape: [n, k], using: &generator)
        let c0 = Tensor.randomNormal(shape: [m, n], using: &generator)
        let expected = referenceMatmul(a, b, rhsTransposition: .transposed)
        for portable in [false, true] {
            for beta in [Float(0), 1, -2] {
                var c = beta == 0 ? [Float](repeating: .nan, count: m * n) : c0.scalars
                a.scalars.withUnsafeBufferPointer { ap in
                    b.scalars.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            streamingReduction(
                                m: m, n: n, k: k, ap.baseAddress ?? UnsafePointer(cp.baseAddress!),
                                lda: k, bp.baseAddress ?? UnsafePointer(cp.baseAddress!), ldb: k,
                                beta: beta, cp.baseAddress!, ldc: n, portable: portable)
                        }
                    }
                }
                var want = expected
                for i in want.scalars.indices { want.scalars[i] += beta * c0.scalars[i] }
                // Long reductions: compare to the reference's scale, not each entry's.
                #expect(
                    isClose(Tensor(shape: [m, n], scalars: c), want, tolerance: 1e-4),
                    "portable \(portable), β \(beta)")
            }
        }
    }
}

@Suite("Direct convolution against the patch-matrix definition")
struct DirectConvolutionTests {
    @Test(
        "convolveDirect = W·colsᵀ and its filter gradient = dY·cols, 1 to 7 filters, odd shapes",
        arguments: convolutionShapes)
    func direct(height: Int, width: Int, channels: Int, kernel k: Int, padding p: Int) {
        let g = ConvolutionGeometry(
            height: height, width: width, channels: channels, kernelSize: k, padding: p)
        let batch = 3
        for portable in [false, true] {
            for filters in [1, 2, 3, 4, 7] {
                var generator = SeededGenerator(seed: UInt64(17 + filters))
                let images = Tensor.randomNormal(
                    shape: [channels * batch * height * width], using: &generator
                ).scalars
                let w = Tensor.randomNormal(shape: [filters, g.patchSize], using: &generator)
                let positions = batch * g.outputHeight * g.outputWidth
                let cols = Tensor(
                    shape: [g.patchSize, positions],
                    scalars: ChannelMajorLoweringTests.reference(images, batch: batch, geometry: g))
                let expected = referenceMatmul(w, cols)
                let padded = images.withUnsafeBufferPointer {
                    paddedPlanes(
                        $0.baseAddress!, planes: channels * batch, height: height, width: width,
                        pad: p)
                }
                let (hp, wp) = (height + 2 * p, width + 2 * p)
                var y = [Float](repeating: .nan, count: filters * positions)
                padded.withUnsafeBufferPointer { xp in
                    w.scalars.withUnsafeBufferPointer { wp2 in
                        y.withUnsafeMutableBufferPointer { yp in
                            convolveDirect(
                                outputs: filters, channels: channels, batch: batch,
                                paddedHeight: hp,
                                paddedWidth: wp, kernel: k, xp.baseAddress!,
                                filters: wp2.baseAddress!, into: yp.baseAddress!, portable: portable
                            )
                        }
                    }
                }
                #expect(
                    isClose(
                        Tensor(shape: [filters, positions], scalars: y), expected, tolerance: 1e-5),
                    "\(filters) filters, portable \(portable)")

                let dy = Tensor.randomNormal(shape: [filters, positions], using: &generator)
                let expectedGradient = referenceMatmul(dy, cols, rhsTransposition: .transposed)
                var gradient = [Float](repeating: .nan, count: filters * g.patchSize)
                padded.withUnsafeBufferPointer { xp in
                    dy.scalars.withUnsafeBufferPointer { dp in
                        gradient.withUnsafeMutableBufferPointer { gp in
                            convolveDirectFilterGradient(
                                outputs: filters, channels: channels, batch: batch,
                                paddedHeight: hp,
                                paddedWidth: wp, kernel: k, xp.baseAddress!,
                                outputGradient: dp.baseAddress!, into: gp.baseAddress!,
                                portable: portable)
                        }
                    }
                }
                #expect(
                    isClose(
                        Tensor(shape: [filters, g.patchSize], scalars: gradient), expectedGradient,
                        tolerance: 1e-5), "\(filters) filters, gradient, portable \(portable)")
            }
        }
    }

    @Test("Padding crops when negative and zero-fills when positive")
    func padding() {
        let x: [Float] = [1, 2, 3, 4, 5, 6]  // one 2×3 plane
        let grown = x.withUnsafeBufferPointer {
            paddedPlanes($0.baseAddress!, planes: 1, height: 2, width: 3, pad: 1)
        }
        #expect(
            Array(grown.prefix(20)) == [0, 0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 4, 5, 6, 0, 0, 0, 0, 0, 0])
        let cropped = grown.withUnsafeBufferPointer {
            paddedPlanes($0.baseAddress!, planes: 1, height: 4, width: 5, pad: -1)
        }
        #expect(Array(cropped.prefix(6)) == x)
    }
}
