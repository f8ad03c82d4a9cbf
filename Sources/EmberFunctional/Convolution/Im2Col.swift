import EmberStorage
import EmberTensor

/// The column matrix of a convolution and its adjoint, over the three-dimensional
/// ``WindowGeometry``.
///
/// `im2col` writes, for `channels` input planes, a `[channels * kernelVolume, outputPlane]`
/// row-major matrix: row `(c, kd, kh, kw)` holds, for every output position, the input element the
/// kernel tap `(kd, kh, kw)` sees there, or 0 where it falls in the padding. A convolution is then
/// one matrix product with the weight viewed as `[out, channels * kernelVolume]`. `col2im` adds a
/// column matrix back into the input planes (the same walk, with `+=`), which is the input
/// gradient of a convolution and the forward of a transposed one.
enum ColumnMatrix {
    static func im2col<T: TensorFloat>(_ src: UnsafePointer<T>, channels: Int, _ g: WindowGeometry,
                                        rows: Range<Int>? = nil, into dst: UnsafeMutablePointer<T>) {
        walk(channels: channels, g, rows: rows ?? 0..<(g.output[0] * g.output[1])) { plane, column, count, start, step in
            let s = src + plane
            let d = dst + column
            if let start {
                if step == 1 {
                    d.update(from: s + start, count: count)
                } else {
                    for j in 0..<count { d[j] = s[start + j * step] }
                }
            } else {
                d.update(repeating: 0, count: count)
            }
        }
    }

    static func col2im<T: TensorFloat>(_ src: UnsafePointer<T>, channels: Int, _ g: WindowGeometry,
                                        rows: Range<Int>? = nil, into dst: UnsafeMutablePointer<T>) {
        walk(channels: channels, g, rows: rows ?? 0..<(g.output[0] * g.output[1])) { plane, column, count, start, step in
            guard let start else { return }
            let s = src + column
            let d = dst + plane + start
            if step == 1 {
                for j in 0..<count { d[j] += s[j] }
            } else {
                for j in 0..<count { d[j * step] += s[j] }
            }
        }
    }

    /// With `rows`, only the output rows (flattened `(od, oh)` positions) in that range take part:
    /// the column matrix then has `rows.count * outputWidth` columns, so a convolution can run in
    /// chunks whose column matrix stays in cache.
    ///
    /// Visits every run of one column-matrix row along the last output dimension: `body(plane,
    /// column, count, start, step)` where `column` is the run's offset in the column matrix,
    /// `plane` the input plane's offset, and `start` the input offset (within the plane) of the
    /// run's first element with `step` between elements, or `nil` for a run in the padding.
    @inline(__always)
    private static func walk(channels: Int, _ g: WindowGeometry, rows outputRows: Range<Int>,
                             _ body: (_ plane: Int, _ column: Int, _ count: Int, _ start: Int?, _ step: Int) -> Void) {
        let iD = g.input[0], iH = g.input[1], iW = g.input[2]
        let oH = g.output[1], oW = g.output[2]
        let sD = g.stride[0], sH = g.stride[1], sW = g.stride[2]
        let pD = g.padBefore[0], pH = g.padBefore[1], pW = g.padBefore[2]
        let dD = g.dilation[0], dH = g.dilation[1], dW = g.dilation[2]
        let width = outputRows.count * oW, inPlane = g.inputPlane
        var row = 0
        for c in 0..<channels {
            let plane = c * inPlane
            for kd in 0..<g.kernel[0] {
                for kh in 0..<g.kernel[1] {
                    for kw in 0..<g.kernel[2] {
                        // Output columns ow in lo..<hi read inside the input along W.
                        let w0 = kw * dW - pW
                        let lo = min(oW, w0 >= 0 ? 0 : (-w0 + sW - 1) / sW)
                        let hi = max(lo, min(oW, w0 > iW - 1 ? 0 : (iW - 1 - w0) / sW + 1))
                        var column = row * width
                        for t in outputRows {
                            let od = t / oH, oh = t - od * oH
                            let id = od * sD - pD + kd * dD
                            let ih = oh * sH - pH + kh * dH
                            if id < 0 || id >= iD || ih < 0 || ih >= iH {
                                body(plane, column, oW, nil, 1)
                            } else {
                                if lo > 0 { body(plane, column, lo, nil, 1) }
                                if hi > lo {
                                    body(plane, column + lo, hi - lo, (id * iH + ih) * iW + lo * sW + w0, sW)
                                }
                                if hi < oW { body(plane, column + hi, oW - hi, nil, 1) }
                            }
                            column += oW
                        }
                        row += 1
                    }
                }
            }
        }
    }
}

/// `C = A B + beta C` on raw pointers for float32 or float64 (see ``GEMM``).
@inline(__always)
func gemm<T: TensorFloat>(m: Int, n: Int, k: Int, a: UnsafePointer<T>, _ rowStrideA: Int, _ colStrideA: Int,
                          b: UnsafePointer<T>, _ rowStrideB: Int, _ colStrideB: Int,
                          beta: T, c: UnsafeMutablePointer<T>, ldc: Int) {
    if m == 0 || n == 0 { return }
    if T.self == Float.self {
        GEMM.sgemm(m: m, n: n, k: k, alpha: 1,
                   a: UnsafeRawPointer(a).assumingMemoryBound(to: Float.self), rowStrideA: rowStrideA, colStrideA: colStrideA,
                   b: UnsafeRawPointer(b).assumingMemoryBound(to: Float.self), rowStrideB: rowStrideB, colStrideB: colStrideB,
                   beta: Float(beta), c: UnsafeMutableRawPointer(c).assumingMemoryBound(to: Float.self), ldc: ldc)
    } else {
        GEMM.dgemm(m: m, n: n, k: k, alpha: 1,
                   a: UnsafeRawPointer(a).assumingMemoryBound(to: Double.self), rowStrideA: rowStrideA, colStrideA: colStrideA,
                   b: UnsafeRawPointer(b).assumingMemoryBound(to: Double.self), rowStrideB: rowStrideB, colStrideB: colStrideB,
                   beta: Double(beta), c: UnsafeMutableRawPointer(c).assumingMemoryBound(to: Double.self), ldc: ldc)
    }
}
