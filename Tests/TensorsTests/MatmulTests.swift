import Tensors
import TestSupport
import Testing

@Suite("sgemm against a plain-loop reference")
struct MatmulTests {
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (7, 5, 3), (3, 1, 9), (17, 33, 2), (64, 129, 31),
    ]

    @Test("Every transposition on odd shapes", arguments: [0, 1, 2, 3, 4])
    func matchesReference(shapeIndex: Int) {
        let (m, k, n) = Self.shapes[shapeIndex]
        var generator = SeededGenerator(seed: 7)
        for transA in [Transposition.none, .transposed] {
            for transB in [Transposition.none, .transposed] {
                let a = Tensor.randomNormal(
                    shape: transA == .none ? [m, k] : [k, m], using: &generator)
                let b = Tensor.randomNormal(
                    shape: transB == .none ? [k, n] : [n, k], using: &generator)
                let fast = matmul(a, b, lhsTransposition: transA, rhsTransposition: transB)
                let slow = referenceMatmul(a, b, lhsTransposition: transA, rhsTransposition: transB)
                #expect(fast.shape == [m, n])
                #expect(
                    isClose(fast, slow, tolerance: Tolerance.blas),
                    "\(m)x\(k)x\(n) \(transA) \(transB)")
            }
        }
    }

    @Test("A column prefix of a wider matrix is used in place through its leading dimension")
    func prefixThroughLeadingDimension() {
        var generator = SeededGenerator(seed: 8)
        let x = Tensor.randomNormal(shape: [5, 9], using: &generator)
        let wide = Tensor.randomNormal(shape: [9, 6], using: &generator)  // use first 4 columns
        var out = [Float](repeating: 0, count: 5 * 4)
        x.scalars.withUnsafeBufferPointer { a in
            wide.scalars.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { c in
                    sgemm(
                        .none, .none, m: 5, n: 4, k: 9, a.baseAddress!, lda: 9, b.baseAddress!,
                        ldb: 6, c.baseAddress!, ldc: 4)
                }
            }
        }
        var narrow = Tensor(zeros: [9, 4])
        for i in 0..<9 { for j in 0..<4 { narrow[i, j] = wide[i, j] } }
        #expect(
            isClose(
                Tensor(shape: [5, 4], scalars: out), referenceMatmul(x, narrow),
                tolerance: Tolerance.blas))
    }

    @Test("k = 0 gives β·C, not garbage")
    func emptyInnerExtent() {
        let product = matmul(Tensor(zeros: [3, 0]), Tensor(zeros: [0, 2]))
        #expect(product == Tensor(zeros: [3, 2]))
    }

    @Test("The loaded OpenBLAS kernel passes the start-up check")
    func kernelCheck() {
        #expect(BLASKernel.sgemmMatchesReference())
    }
}

@Suite("LAPACK SVD")
struct SVDTests {
    @Test(
        "U S Vᵀ reconstructs the matrix; factors are orthonormal",
        arguments: [[1, 1], [8, 6], [6, 8], [31, 7]])
    func reconstruction(shape: [Int]) throws {
        var generator = SeededGenerator(seed: 3)
        let a = Tensor.randomNormal(shape: shape, using: &generator)
        let svd = try singularValueDecomposition(a)
        let k = min(shape[0], shape[1])
        #expect(svd.u.shape == [shape[0], k] && svd.vt.shape == [k, shape[1]])
        var scaled = svd.u
        for i in 0..<shape[0] { for j in 0..<k { scaled[i, j] *= svd.singularValues[j] } }
        #expect(isClose(referenceMatmul(scaled, svd.vt), a, tolerance: 1e-5))
        #expect(zip(svd.singularValues, svd.singularValues.dropFirst()).allSatisfy { $0 >= $1 })
        let identity = Tensor(
            shape: [k, k], scalars: (0..<(k * k)).map { $0 / k == $0 % k ? 1 : 0 })
        #expect(
            isClose(
                referenceMatmul(svd.u, svd.u, lhsTransposition: .transposed), identity,
                tolerance: 1e-5))
        #expect(
            isClose(
                referenceMatmul(svd.vt, svd.vt, rhsTransposition: .transposed), identity,
                tolerance: 1e-5))
    }

    @Test("NaN input is refused, not decomposed")
    func refusesNaN() {
        #expect(throws: SVDError.notFinite) {
            try singularValueDecomposition(Tensor(shape: [2, 2], scalars: [1, .nan, 0, 1]))
        }
    }
}

@Suite("im2col / col2im")
struct ConvolutionLoweringTests {
    @Test(
        "A convolution through im2col equals a direct loop; col2im is its adjoint",
        arguments: [
            // (height, width, channels, kernel, padding): odd shapes, LeNet's two layers,
            // padding wider than the kernel's reach, a kernel wider than the image, 1×1.
            (6, 5, 3, 3, 1), (28, 28, 1, 5, 2), (14, 14, 6, 5, 0), (4, 3, 2, 3, 3),
            (3, 2, 2, 5, 2), (1, 1, 1, 1, 0), (7, 4, 5, 1, 1),
        ])
    func directConvolution(height: Int, width: Int, channels: Int, kernel k: Int, padding p: Int) {
        var generator = SeededGenerator(seed: 11)
        let g = ConvolutionGeometry(
            height: height, width: width, channels: channels, kernelSize: k, padding: p)
        let batch = 2
        let outC = 4
        let images = Tensor.randomNormal(
            shape: [batch, g.height, g.width, g.channels], using: &generator)
        let kernel = Tensor.randomNormal(shape: [outC, g.patchSize], using: &generator)
        let rows = batch * g.outputHeight * g.outputWidth
        var patches = Tensor(zeros: [rows, g.patchSize])
        images.scalars.withUnsafeBufferPointer { src in
            patches.scalars.withUnsafeMutableBufferPointer { dst in
                im2col(src.baseAddress!, batch: batch, geometry: g, into: dst.baseAddress!)
            }
        }
        let lowered = referenceMatmul(patches, kernel, rhsTransposition: .transposed)
        var direct = Tensor(zeros: [rows, outC])
        for n in 0..<batch {
            for oy in 0..<g.outputHeight {
                for ox in 0..<g.outputWidth {
                    for o in 0..<outC {
                        var sum: Float = 0
                        for ky in 0..<k {
                            for kx in 0..<k {
                                let y = oy + ky - p
                                let x = ox + kx - p
                                guard y >= 0, y < g.height, x >= 0, x < g.width else { continue }
                                for c in 0..<g.channels {
                                    sum +=
                                        images.scalars[
                                            ((n * g.height + y) * g.width + x) * g.channels + c]
                                        * kernel[o, (ky * k + kx) * g.channels + c]
                                }
                            }
                        }
                        direct[(n * g.outputHeight + oy) * g.outputWidth + ox, o] = sum
                    }
                }
            }
        }
        #expect(isClose(lowered, direct, tolerance: 1e-5))

        // Adjoint: <im2col(x), p> == <x, col2im(p)>.
        let probe = Tensor.randomNormal(shape: [rows, g.patchSize], using: &generator)
        var back = Tensor(zeros: images.shape)
        probe.scalars.withUnsafeBufferPointer { src in
            back.scalars.withUnsafeMutableBufferPointer { dst in
                col2im(src.baseAddress!, batch: batch, geometry: g, into: dst.baseAddress!)
            }
        }
        let lhs = zip(patches.scalars, probe.scalars).reduce(0.0) {
            $0 + Double($1.0) * Double($1.1)
        }
        let rhs = zip(images.scalars, back.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(lhs - rhs) <= 1e-4 * abs(lhs))
    }
}

@Suite("im2col writes exactly the patch matrix")
struct Im2colExactTests {
    /// The patch matrix by its definition, one entry at a time.
    static func reference(_ images: [Float], batch: Int, geometry g: ConvolutionGeometry) -> [Float]
    {
        var patches: [Float] = []
        for n in 0..<batch {
            for oy in 0..<g.outputHeight {
                for ox in 0..<g.outputWidth {
                    for ky in 0..<g.kernelSize {
                        for kx in 0..<g.kernelSize {
                            for ci in 0..<g.channels {
                                let (y, x) = (oy + ky - g.padding, ox + kx - g.padding)
                                let inside = y >= 0 && y < g.height && x >= 0 && x < g.width
                                patches.append(
                                    inside
                                        ? images[
                                            ((n * g.height + y) * g.width + x) * g.channels + ci]
                                        : 0)
                            }
                        }
                    }
                }
            }
        }
        return patches
    }

    @Test(
        "Both copy paths (column at a time, kernel row at a time) equal the definition bit for bit",
        arguments: [
            (28, 28, 1, 5, 2), (14, 14, 6, 5, 0), (10, 9, 4, 3, 1), (5, 7, 8, 5, 3),
            (3, 2, 6, 5, 2), (6, 6, 3, 3, 1), (4, 4, 16, 1, 0),
        ])
    func exact(height: Int, width: Int, channels: Int, kernel: Int, padding: Int) {
        var generator = SeededGenerator(seed: 3)
        let g = ConvolutionGeometry(
            height: height, width: width, channels: channels, kernelSize: kernel, padding: padding)
        let batch = 3
        let images = Tensor.randomNormal(
            shape: [batch, height, width, channels], using: &generator
        ).scalars
        var patches = [Float](
            repeating: .nan, count: batch * g.outputHeight * g.outputWidth * g.patchSize)
        images.withUnsafeBufferPointer { src in
            patches.withUnsafeMutableBufferPointer { dst in
                im2col(src.baseAddress!, batch: batch, geometry: g, into: dst.baseAddress!)
            }
        }
        let expected = Self.reference(images, batch: batch, geometry: g)
        #expect(patches.map(\.bitPattern) == expected.map(\.bitPattern))
    }
}
