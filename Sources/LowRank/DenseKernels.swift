import Tensors

// The dense and LoD dense layers' products (BLAS), and the helpers every layer family shares.

/// `y = x·Wᵀ + c` for `x` `[rows, inputs]`, `W` `[outputs, inputs]`.
func denseForward(
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
func lowRankForward(
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

func denseBackward(
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

func lowRankBackward(
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
func scratch(_ count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
}

func broadcastRows(_ row: [Float], rows: Int, into y: UnsafeMutablePointer<Float>) {
    row.withUnsafeBufferPointer { r in
        for i in 0..<rows { (y + i * r.count).update(from: r.baseAddress!, count: r.count) }
    }
}

func columnSums(_ matrix: [Float], rows: Int, columns: Int, into sums: inout [Float]) {
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
