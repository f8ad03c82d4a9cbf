import EmberStorage
import EmberTensor

/// The loops of convolution and transposed convolution: per sample and group, a column matrix
/// (``ColumnMatrix``) and one matrix product with the weight. A 1x1 convolution with stride 1 and
/// no padding multiplies the input planes directly.
///
/// Layouts (contiguous): input `[N, C_in, inputPlane]`, output `[N, C_out, outputPlane]` of the
/// geometry; a convolution's weight `[C_out, C_in / groups, kernelVolume]`, a transposed
/// convolution's `[C_in, C_out / groups, kernelVolume]` (PyTorch's layouts). For a transposed
/// convolution the geometry is that of the convolution it is the adjoint of: its `input` is the
/// transposed convolution's output.
enum ConvolutionKernel {
    struct Sizes {
        let batch: Int, inChannels: Int, outChannels: Int, groups: Int
    }

    /// A scratch column matrix of `count` elements, or `nil` for a pointwise geometry.
    private static func scratch<T>(_ g: WindowGeometry, _ count: Int, _: T.Type) -> UnsafeMutablePointer<T>? {
        g.isPointwise ? nil : .allocate(capacity: max(count, 1))
    }

    static func forward<T: TensorFloat>(x: UnsafePointer<T>, w: UnsafePointer<T>, bias: UnsafePointer<T>?,
                                        y: UnsafeMutablePointer<T>, _ s: Sizes, _ g: WindowGeometry) {
        let cinG = s.inChannels / s.groups, coutG = s.outChannels / s.groups
        let rows = cinG * g.kernelVolume, L = g.outputPlane, P = g.inputPlane
        let cols = scratch(g, rows * L, T.self)
        defer { cols?.deallocate() }
        for n in 0..<s.batch {
            for gi in 0..<s.groups {
                let src = x + (n * s.inChannels + gi * cinG) * P
                if let cols { ColumnMatrix.im2col(src, channels: cinG, g, into: cols) }
                let c = y + (n * s.outChannels + gi * coutG) * L
                var beta: T = 0
                if let bias {
                    for o in 0..<coutG { (c + o * L).update(repeating: bias[gi * coutG + o], count: L) }
                    beta = 1
                } else if rows == 0 {
                    c.update(repeating: 0, count: coutG * L)
                }
                if rows > 0 {
                    gemm(m: coutG, n: L, k: rows, a: w + gi * coutG * rows, rows, 1,
                         b: cols.map { UnsafePointer($0) } ?? src, L, 1, beta: beta, c: c, ldc: L)
                }
            }
        }
    }

    /// Input and weight gradients of ``forward``; either output may be `nil` (not needed).
    static func backward<T: TensorFloat>(x: UnsafePointer<T>, w: UnsafePointer<T>, gy: UnsafePointer<T>,
                                         dx: UnsafeMutablePointer<T>?, dw: UnsafeMutablePointer<T>?,
                                         _ s: Sizes, _ g: WindowGeometry) {
        let cinG = s.inChannels / s.groups, coutG = s.outChannels / s.groups
        let rows = cinG * g.kernelVolume, L = g.outputPlane, P = g.inputPlane
        let cols = scratch(g, rows * L, T.self)
        defer { cols?.deallocate() }
        if let dw {
            dw.update(repeating: 0, count: s.outChannels * rows)
            for n in 0..<s.batch {
                for gi in 0..<s.groups {
                    let src = x + (n * s.inChannels + gi * cinG) * P
                    if let cols { ColumnMatrix.im2col(src, channels: cinG, g, into: cols) }
                    // dW_g += gy_ng [coutG, L] x cols^T [L, rows]
                    gemm(m: coutG, n: rows, k: L, a: gy + (n * s.outChannels + gi * coutG) * L, L, 1,
                         b: cols.map { UnsafePointer($0) } ?? src, 1, L, beta: 1, c: dw + gi * coutG * rows, ldc: rows)
                }
            }
        }
        if let dx {
            dx.update(repeating: 0, count: s.batch * s.inChannels * P)
            for n in 0..<s.batch {
                for gi in 0..<s.groups {
                    let target = dx + (n * s.inChannels + gi * cinG) * P
                    // cols = W_g^T [rows, coutG] x gy_ng [coutG, L], added back into the input planes.
                    gemm(m: rows, n: L, k: coutG, a: w + gi * coutG * rows, 1, rows,
                         b: gy + (n * s.outChannels + gi * coutG) * L, L, 1, beta: 0, c: cols ?? target, ldc: L)
                    if let cols { ColumnMatrix.col2im(cols, channels: cinG, g, into: target) }
                }
            }
        }
    }

    /// Transposed convolution: `y_ng = col2im(W_g^T x_ng)`, then the bias per channel.
    static func transposedForward<T: TensorFloat>(x: UnsafePointer<T>, w: UnsafePointer<T>, bias: UnsafePointer<T>?,
                                                  y: UnsafeMutablePointer<T>, _ s: Sizes, _ g: WindowGeometry) {
        let cinG = s.inChannels / s.groups, coutG = s.outChannels / s.groups
        let rows = coutG * g.kernelVolume, Lin = g.outputPlane, P = g.inputPlane
        let cols = scratch(g, rows * Lin, T.self)
        defer { cols?.deallocate() }
        y.update(repeating: 0, count: s.batch * s.outChannels * P)
        for n in 0..<s.batch {
            for gi in 0..<s.groups {
                let target = y + (n * s.outChannels + gi * coutG) * P
                gemm(m: rows, n: Lin, k: cinG, a: w + gi * cinG * rows, 1, rows,
                     b: x + (n * s.inChannels + gi * cinG) * Lin, Lin, 1, beta: 0, c: cols ?? target, ldc: Lin)
                if let cols { ColumnMatrix.col2im(cols, channels: coutG, g, into: target) }
            }
        }
        if let bias {
            for n in 0..<s.batch {
                for o in 0..<s.outChannels {
                    let b = bias[o], p = y + (n * s.outChannels + o) * P
                    for j in 0..<P { p[j] += b }
                }
            }
        }
    }

    /// Input and weight gradients of ``transposedForward``.
    static func transposedBackward<T: TensorFloat>(x: UnsafePointer<T>, w: UnsafePointer<T>, gy: UnsafePointer<T>,
                                                   dx: UnsafeMutablePointer<T>?, dw: UnsafeMutablePointer<T>?,
                                                   _ s: Sizes, _ g: WindowGeometry) {
        let cinG = s.inChannels / s.groups, coutG = s.outChannels / s.groups
        let rows = coutG * g.kernelVolume, Lin = g.outputPlane, P = g.inputPlane
        let cols = scratch(g, rows * Lin, T.self)
        defer { cols?.deallocate() }
        dw?.update(repeating: 0, count: s.inChannels * rows)
        if s.batch * cinG * Lin == 0 { dx?.update(repeating: 0, count: s.batch * s.inChannels * Lin) }
        for n in 0..<s.batch {
            for gi in 0..<s.groups {
                let src = gy + (n * s.outChannels + gi * coutG) * P
                if let cols { ColumnMatrix.im2col(src, channels: coutG, g, into: cols) }
                let c = cols.map { UnsafePointer($0) } ?? src
                let xg = x + (n * s.inChannels + gi * cinG) * Lin
                if let dx {
                    // dx_ng [cinG, Lin] = W_g [cinG, rows] x cols [rows, Lin]
                    gemm(m: cinG, n: Lin, k: rows, a: w + gi * cinG * rows, rows, 1, b: c, Lin, 1,
                         beta: 0, c: dx + (n * s.inChannels + gi * cinG) * Lin, ldc: Lin)
                }
                if let dw {
                    // dW_g += x_ng [cinG, Lin] x cols^T [Lin, rows]
                    gemm(m: cinG, n: rows, k: Lin, a: xg, Lin, 1, b: c, 1, Lin, beta: 1, c: dw + gi * cinG * rows, ldc: rows)
                }
            }
        }
    }
}
