import EmberStorage
import RealModule

// Softmax and log-softmax along one axis, and their backward (raw, graph-free).

extension Kernels {
    /// Calls `body(xOffset, xStride, outOffset, outStride, n)` for every line of `x` along `axis`,
    /// with the output a fresh contiguous tensor of `x`'s shape.
    @inline(__always)
    private static func forEachLine(
        _ x: Tensor, axis: Int, op: String, _ body: (_ xOff: Int, _ xStride: Int, _ outOff: Int, _ outStride: Int, _ n: Int) -> Void
    ) {
        let plan = ReductionPlan(x, axes: [axis], keepDim: true, op: op)
        let a = plan.axes.first
        let n = plan.groupSize, s = plan.groupStride
        var inner = 1
        if let a { for d in (a + 1)..<x.rank { inner *= x.shape[d] } }
        plan.forEachGroup { i, off in body(off, s, (i / inner) * n * inner + i % inner, inner, n) }
    }

    /// Elements after `axis` (the stride of `axis` in a contiguous tensor) and the size of `axis`.
    private static func lineGeometry(_ shape: Shape, axis: Int) -> (n: Int, inner: Int) {
        if shape.count == 0 { return (1, 1) }
        var inner = 1
        for d in (axis + 1)..<shape.count { inner *= shape[d] }
        return (shape[axis], inner)
    }

    /// `exp(x - max) / sum(exp(x - max))` along `axis`. A NaN in a line, or a line of `-inf` only,
    /// gives NaN, as PyTorch's CPU kernel. Float dtypes only, as PyTorch.
    package static func softmax(_ x: Tensor, axis: Int) -> Tensor {
        requireFloat(x, op: "softmax", kernel: "softmax_lastdim_kernel_impl")
        if x.dtype == .float32 { return softmaxTyped(x, axis: axis, log: false, Float.self) }
        return softmaxTyped(x, axis: axis, log: false, Double.self)
    }

    /// `(x - max) - log(sum(exp(x - max)))` along `axis` (in that order, so large values keep
    /// their precision). Float dtypes only, as PyTorch.
    package static func logSoftmax(_ x: Tensor, axis: Int) -> Tensor {
        requireFloat(x, op: "logSoftmax", kernel: "log_softmax_lastdim_kernel_impl")
        if x.dtype == .float32 { return softmaxTyped(x, axis: axis, log: true, Float.self) }
        return softmaxTyped(x, axis: axis, log: true, Double.self)
    }

    private static func softmaxTyped<T: TensorFloat>(_ x: Tensor, axis: Int, log: Bool, _: T.Type) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape, dtype: T.dtype)
        let (n, inner) = lineGeometry(x.shape, axis: axis)
        if inner > 1 && n > 1 {
            // Not the last axis: work row by row over blocks of the inner elements (contiguous,
            // vectorisable) instead of striding through memory one line at a time.
            let xc = x.contiguousRaw
            let px = xc.pointer(as: T.self), po = out.mutablePointer(as: T.self)
            let outer = n * inner == 0 ? 0 : x.count / (n * inner)
            for o in 0..<outer {
                softmaxColumns(px + o * n * inner, po + o * n * inner, n: n, inner: inner, log: log)
            }
            return out
        }
        let px = x.pointer(as: T.self), po = out.mutablePointer(as: T.self)
        if x.isContiguous && n > 0 && x.count >= 65_536 {
            // Contiguous rows along the last axis: independent, so whole rows go to threads.
            let rows = x.count / n
            forEachChunk(count: rows, minimumPerThread: Swift.max(1, 32_768 / n)) { start, count in
                for r in start..<(start + count) { softmaxLine(px + r * n, 1, po + r * n, 1, n: n, log: log) }
            }
            return out
        }
        forEachLine(x, axis: axis, op: log ? "logSoftmax" : "softmax") { xo, xs, oo, os, n in
            if n == 0 { return }
            softmaxLine(px + xo, xs, po + oo, os, n: n, log: log)
        }
        return out
    }

    /// Softmax (or log-softmax) of one line of `n` elements.
    @inline(__always)
    private static func softmaxLine<T: TensorFloat>(
        _ src: UnsafePointer<T>, _ xs: Int, _ dst: UnsafeMutablePointer<T>, _ os: Int, n: Int, log: Bool
    ) {
        let m = extremumValue(src, n, xs, isMax: true)
        if T.self == Float.self {
            let sf = UnsafeRawPointer(src).assumingMemoryBound(to: Float.self)
            let df = UnsafeMutableRawPointer(dst).assumingMemoryBound(to: Float.self)
            let mv = Float8(repeating: Float(m))
            if xs == 1 && os == 1 && ActivationKernels.isAvailable {
                // The same values through the AVX2 exp row (bitwise `expVector`): dst = x - m, then
                // e^dst in place; the sums and scalings below read it as the lanes would have.
                let mf = Float(m)
                for k in 0..<n { df[k] = sf[k] - mf }
                ActivationKernels.run(.exp, df, into: df, count: n)
                if log {
                    let logSum = Float(Double.log(sumFloat8(df, stride: 1, count: n) { $0 }))
                    for k in 0..<n { df[k] = (sf[k] - mf) - logSum }
                } else {
                    let inv = 1 / pairwiseSum(UnsafePointer(df), n)
                    for k in 0..<n { df[k] *= inv }
                }
                return
            }
            if log {
                let logSum = Float(Double.log(sumFloat8(sf, stride: xs, count: n) { expVector($0 - mv) }))
                let shift = Float8(repeating: logSum)
                applyFloat8(sf, stride: xs, count: n, into: df, dstStride: os) { ($0 - mv) - shift }
            } else {
                applyFloat8(sf, stride: xs, count: n, into: df, dstStride: os) { expVector($0 - mv) }
                var sum: Float = 0
                if os == 1 { sum = pairwiseSum(UnsafePointer(df), n) } else { for k in 0..<n { sum += df[k * os] } }
                let inv = 1 / sum
                for k in 0..<n { df[k * os] *= inv }
            }
            return
        }
        if log {
            var sum: T = 0
            for k in 0..<n { sum += T.exp(src[k * xs] - m) }
            let logSum = T.log(sum)
            for k in 0..<n { dst[k * os] = (src[k * xs] - m) - logSum }
        } else {
            var sum: T = 0
            for k in 0..<n { let e = T.exp(src[k * xs] - m); dst[k * os] = e; sum += e }
            let inv = 1 / sum
            for k in 0..<n { dst[k * os] *= inv }
        }
    }

    /// Softmax over the rows of an `n x inner` contiguous block (normalising each column), in
    /// tiles of 256 columns.
    private static func softmaxColumns<T: TensorFloat>(
        _ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, n: Int, inner: Int, log: Bool
    ) {
        let tile = 256
        withUnsafeTemporaryAllocation(of: T.self, capacity: 2 * tile) { buf in
            let m = buf.baseAddress!, sums = m + tile
            var j0 = 0
            while j0 < inner {
                let w = Swift.min(tile, inner - j0)
                let s0 = src + j0, d0 = dst + j0
                for j in 0..<w { m[j] = s0[j]; sums[j] = 0 }
                for k in 1..<n {
                    let row = s0 + k * inner
                    for j in 0..<w {
                        let v = row[j]
                        if v > m[j] || v != v { m[j] = v }
                    }
                }
                for k in 0..<n {
                    let row = s0 + k * inner, drow = d0 + k * inner
                    if T.self == Float.self {
                        applyFloat8(UnsafeRawPointer(row).assumingMemoryBound(to: Float.self),
                                    UnsafeRawPointer(m).assumingMemoryBound(to: Float.self), count: w,
                                    into: UnsafeMutableRawPointer(drow).assumingMemoryBound(to: Float.self)) { expVector($0 - $1) }
                    } else {
                        for j in 0..<w { drow[j] = T.exp(row[j] - m[j]) }
                    }
                    for j in 0..<w { sums[j] += drow[j] }
                }
                if log {
                    for j in 0..<w { sums[j] = T.log(sums[j]) }
                    for k in 0..<n {
                        let row = s0 + k * inner, drow = d0 + k * inner
                        for j in 0..<w { drow[j] = (row[j] - m[j]) - sums[j] }
                    }
                } else {
                    for j in 0..<w { sums[j] = 1 / sums[j] }
                    for k in 0..<n {
                        let drow = d0 + k * inner
                        for j in 0..<w { drow[j] *= sums[j] }
                    }
                }
                j0 += w
            }
        }
    }

    /// Backward of `softmax` given its output `y`: `y * (g - sum(g * y))` along `axis`.
    package static func softmaxBackward(_ g: Tensor, _ y: Tensor, axis: Int) -> Tensor {
        if y.dtype == .float32 { return softmaxBackwardTyped(g, y, axis: axis, log: false, Float.self) }
        return softmaxBackwardTyped(g, y, axis: axis, log: false, Double.self)
    }

    /// Backward of `logSoftmax` given its output `y`: `g - exp(y) * sum(g)` along `axis`.
    package static func logSoftmaxBackward(_ g: Tensor, _ y: Tensor, axis: Int) -> Tensor {
        if y.dtype == .float32 { return softmaxBackwardTyped(g, y, axis: axis, log: true, Float.self) }
        return softmaxBackwardTyped(g, y, axis: axis, log: true, Double.self)
    }

    private static func softmaxBackwardTyped<T: TensorFloat>(_ g: Tensor, _ y: Tensor, axis: Int, log: Bool, _: T.Type) -> Tensor {
        // y is the forward output (contiguous); make g contiguous too so g, y and the result share
        // offsets. Each line is `n` elements `inner` apart; inner axes go a tile of lines at a time.
        let gc = g.contiguousRaw, yc = y.contiguousRaw
        let out = Tensor(uninitializedShape: y.shape, dtype: T.dtype)
        let pg = gc.pointer(as: T.self), py = yc.pointer(as: T.self), po = out.mutablePointer(as: T.self)
        let (n, inner) = lineGeometry(y.shape, axis: axis)
        if n * inner == 0 { return out }
        let outer = y.count / (n * inner)
        if inner == 1 {
            // The last axis: each line is contiguous.
            for o in 0..<outer {
                let gl = pg + o * n, yl = py + o * n, ol = po + o * n
                var a0: T = 0, a1: T = 0, a2: T = 0, a3: T = 0
                var k = 0
                if log {
                    while k + 4 <= n { a0 += gl[k]; a1 += gl[k + 1]; a2 += gl[k + 2]; a3 += gl[k + 3]; k += 4 }
                    while k < n { a0 += gl[k]; k += 1 }
                } else {
                    while k + 4 <= n {
                        a0 += gl[k] * yl[k]; a1 += gl[k + 1] * yl[k + 1]; a2 += gl[k + 2] * yl[k + 2]; a3 += gl[k + 3] * yl[k + 3]
                        k += 4
                    }
                    while k < n { a0 += gl[k] * yl[k]; k += 1 }
                }
                let acc = (a0 + a1) + (a2 + a3)
                if !log {
                    for k in 0..<n { ol[k] = yl[k] * (gl[k] - acc) }
                } else if T.self == Float.self {
                    let sumV = Float8(repeating: Float(acc))
                    applyFloat8(UnsafeRawPointer(gl).assumingMemoryBound(to: Float.self),
                                UnsafeRawPointer(yl).assumingMemoryBound(to: Float.self), count: n,
                                into: UnsafeMutableRawPointer(ol).assumingMemoryBound(to: Float.self)) { $0 - expVector($1) * sumV }
                } else {
                    for k in 0..<n { ol[k] = gl[k] - T.exp(yl[k]) * acc }
                }
            }
            return out
        }
        let tile = 256
        withUnsafeTemporaryAllocation(of: T.self, capacity: tile) { buf in
            let acc = buf.baseAddress!
            for o in 0..<outer {
                var j0 = 0
                while j0 < inner {
                    let w = Swift.min(tile, inner - j0)
                    let base = o * n * inner + j0
                    for j in 0..<w { acc[j] = 0 }
                    for k in 0..<n {
                        let gr = pg + base + k * inner, yr = py + base + k * inner
                        if log { for j in 0..<w { acc[j] += gr[j] } } else { for j in 0..<w { acc[j] += gr[j] * yr[j] } }
                    }
                    for k in 0..<n {
                        let gr = pg + base + k * inner, yr = py + base + k * inner, orow = po + base + k * inner
                        if log {
                            if T.self == Float.self {
                                // exp(y) for the row of the tile, vectorised, then combined.
                                applyFloat8(UnsafeRawPointer(yr).assumingMemoryBound(to: Float.self), stride: 1, count: w,
                                            into: UnsafeMutableRawPointer(orow).assumingMemoryBound(to: Float.self), expVector)
                                for j in 0..<w { orow[j] = gr[j] - orow[j] * acc[j] }
                            } else {
                                for j in 0..<w { orow[j] = gr[j] - T.exp(yr[j]) * acc[j] }
                            }
                        } else {
                            for j in 0..<w { orow[j] = yr[j] * (gr[j] - acc[j]) }
                        }
                    }
                    j0 += w
                }
            }
        }
        return out
    }
}
