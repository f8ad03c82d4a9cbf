import CEmberKernels
import EmberStorage
import EmberTensor

/// The loops of max and average pooling over ``PoolWindows``, plane by plane.
enum PoolKernel {
    /// Whether 2x2 windows with stride 2 over float32 run in C (`pool_x86.c`, AVX2), bitwise the
    /// Swift loops (``max2x2Float(_:_:_:planes:_:)``, ``scatterTiledLoop(_:_:_:planes:_:kernelHeight:)``),
    /// whose SIMD types compile to SSE2 in the baseline build (BENCHMARKS.md, fourteenth session).
    static let native2x2 = GEMMKernelPath.avx2.isSupported

    /// Whether they run sixteen windows at a time (AVX-512F, the same bits): where GEMM
    /// dispatches its AVX-512 kernels (`EMBER_DISABLE_AVX512=1` turns both off).
    static let native2x2Wide = GEMMKernelPath.best == .avx512

    /// Whether `w`'s windows are whole 2x2 windows with stride 2 within a plane of fewer than 2^31
    /// elements: the windows of ``max2x2Native(_:_:_:planes:_:)``.
    static func is2x2(_ w: PoolWindows) -> Bool {
        guard let full = w.fullWindows2d else { return false }
        // (A single window along a dimension reports stride 1.)
        return full.kernel == (2, 2) && (full.stride.0 == 2 || w.output[1] == 1) && (full.stride.1 == 2 || w.output[2] == 1)
            && w.inputPlane < Int(Int32.max)
    }

    /// ``max2x2Float(_:_:_:planes:_:)`` in C; without `indices`, the values alone. Requires
    /// ``native2x2`` and ``is2x2(_:)``.
    static func max2x2Native(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ indices: UnsafeMutablePointer<Int64>?,
                                     planes: Int, _ w: PoolWindows, wide: Bool = native2x2Wide) {
        if wide {
            ember_smax_pool2x2_avx512(planes, w.input[1], w.input[2], w.output[1], w.output[2], x, y, indices)
        } else {
            ember_smax_pool2x2_avx2(planes, w.input[1], w.input[2], w.output[1], w.output[2], x, y, indices)
        }
    }

    /// ``scatterTiled(_:_:_:planes:_:kernelHeight:)`` for 2x2 windows, in C. Requires
    /// ``native2x2`` and ``is2x2(_:)``.
    static func scatter2x2Native(_ g: UnsafePointer<Float>, _ indices: UnsafePointer<Int64>, _ dx: UnsafeMutablePointer<Float>,
                                         planes: Int, _ w: PoolWindows, wide: Bool = native2x2Wide) {
        if wide {
            ember_smax_pool2x2_backward_avx512(planes, w.input[1], w.input[2], w.output[1], w.output[2], g, indices, dx)
        } else {
            ember_smax_pool2x2_backward_avx2(planes, w.input[1], w.input[2], w.output[1], w.output[2], g, indices, dx)
        }
    }

    /// Visits every output position `(index, window)` of one plane.
    @inline(__always)
    private static func forEachWindow(_ w: PoolWindows, _ body: (Int, _ d: (Int, Int), _ h: (Int, Int), _ x: (Int, Int), Int) -> Void) {
        var o = 0
        for od in 0..<w.output[0] {
            for oh in 0..<w.output[1] {
                for ow in 0..<w.output[2] {
                    let count = w.paddedLength[0][od] * w.paddedLength[1][oh] * w.paddedLength[2][ow]
                    body(o, (w.start[0][od], w.end[0][od]), (w.start[1][oh], w.end[1][oh]), (w.start[2][ow], w.end[2][ow]), count)
                    o += 1
                }
            }
        }
    }

    /// Max over each window; `indices` gets the flat position within the plane of the maximum.
    /// As in PyTorch, a later element replaces the maximum when it is greater or NaN (so NaN
    /// propagates, the last NaN's position wins and ties keep the first), and the position starts
    /// at the window's first element.
    static func max<T: TensorFloat>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ indices: UnsafeMutablePointer<Int64>,
                                    planes: Int, _ w: PoolWindows) {
        if let full = w.fullWindows2d {
            if T.self == Float.self && native2x2 && is2x2(w) {
                max2x2Native(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
                             UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self), indices, planes: planes, w)
            } else if T.self == Float.self && w.inputPlane < Int(Int32.max) && full.kernel == (2, 2) && full.stride == (2, 2) {
                max2x2Float(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
                            UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self), indices, planes: planes, w)
            } else if T.self == Float.self && w.inputPlane < Int(Int32.max) {
                maxFull2dFloat(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
                               UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self), indices,
                               planes: planes, w, kernel: full.kernel, stride: full.stride)
            } else {
                maxFull2d(x, y, indices, planes: planes, w, kernel: full.kernel, stride: full.stride)
            }
            return
        }
        let iH = w.input[1], iW = w.input[2], inPlane = w.inputPlane, outPlane = w.outputPlane
        let sD = w.step[0], sH = w.step[1], sW = w.step[2]
        let oD = w.output[0], oH = w.output[1], oW = w.output[2]
        // Plain arrays and while loops, no closure per window: this is the hot loop of small CNNs
        // (BENCHMARKS.md, "Convolutional networks").
        w.start[0].withUnsafeBufferPointer { d0 in w.end[0].withUnsafeBufferPointer { d1 in
        w.start[1].withUnsafeBufferPointer { h0 in w.end[1].withUnsafeBufferPointer { h1 in
        w.start[2].withUnsafeBufferPointer { c0 in w.end[2].withUnsafeBufferPointer { c1 in
            for p in 0..<planes {
                let src = x + p * inPlane
                var o = p * outPlane
                for od in 0..<oD {
                    for oh in 0..<oH {
                        for ow in 0..<oW {
                            var best = -T.infinity
                            var at = (d0[od] * iH + h0[oh]) * iW + c0[ow]
                            var id = d0[od]
                            while id < d1[od] {
                                var ih = h0[oh]
                                while ih < h1[oh] {
                                    let row = (id * iH + ih) * iW
                                    var iw = c0[ow]
                                    while iw < c1[ow] {
                                        // Branch-free selects: the comparison is data-dependent and
                                        // mispredicts half the time as a branch.
                                        let v = src[row + iw]
                                        let take = (v > best) || (v != v)
                                        best = take ? v : best
                                        at = take ? row + iw : at
                                        iw += sW
                                    }
                                    ih += sH
                                }
                                id += sD
                            }
                            y[o] = best
                            indices[o] = Int64(at)
                            o += 1
                        }
                    }
                }
            }
        } } } } } }
    }

    /// ``max`` for 2-D windows that all lie inside the input, undilated (`MaxPool2d(2)` and the
    /// like): taps in the outer loops and output columns in the inner one, so each column's
    /// running maximum is an independent select rather than a data-dependent branch. Same order
    /// of candidates per window as ``max``, so the same results and indices.
    static func maxFull2d<T: TensorFloat>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ indices: UnsafeMutablePointer<Int64>,
                                          planes: Int, _ w: PoolWindows, kernel: (Int, Int), stride: (Int, Int)) {
        let iH = w.input[1], iW = w.input[2], oH = w.output[1], oW = w.output[2]
        for p in 0..<planes {
            let src = x + p * iH * iW
            for oh in 0..<oH {
                let best = y + (p * oH + oh) * oW, at = indices + (p * oH + oh) * oW
                for kh in 0..<kernel.0 {
                    let row = (oh * stride.0 + kh) * iW
                    for kw in 0..<kernel.1 {
                        let first = kh == 0 && kw == 0
                        for ow in 0..<oW {
                            let i = row + ow * stride.1 + kw
                            let v = src[i]
                            // Non-short-circuit flags, so the selects compile without branches.
                            let flags = UInt8(first ? 1 : 0) | UInt8(v > best[ow] ? 1 : 0) | UInt8(v != v ? 1 : 0)
                            let take = flags != 0
                            best[ow] = take ? v : best[ow]
                            at[ow] = take ? Int64(i) : at[ow]
                        }
                    }
                }
            }
        }
    }

    /// ``maxFull2d`` for float32, eight output columns at a time in SIMD registers, because the
    /// compiler does not vectorise the scalar loop's value and index selects. The same candidates in
    /// the same order per window, so the same values and indices.
    static func maxFull2dFloat(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ indices: UnsafeMutablePointer<Int64>,
                               planes: Int, _ w: PoolWindows, kernel: (Int, Int), stride: (Int, Int)) {
        let iH = w.input[1], iW = w.input[2], oH = w.output[1], oW = w.output[2]
        let lanes = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) &* Int32(stride.1)
        let vectorColumns = oW / 8 * 8
        for p in 0..<planes {
            let src = x + p * iH * iW
            for oh in 0..<oH {
                let best = y + (p * oH + oh) * oW, at = indices + (p * oH + oh) * oW
                var ow = 0
                while ow < vectorColumns {
                    var top = SIMD8<Float>(), where_ = SIMD8<Int32>()
                    for kh in 0..<kernel.0 {
                        let row = (oh * stride.0 + kh) * iW
                        for kw in 0..<kernel.1 {
                            let start = row + ow * stride.1 + kw
                            var v = SIMD8<Float>()
                            for l in 0..<8 { v[l] = src[start + l * stride.1] }
                            let position = lanes &+ Int32(start)
                            if kh == 0 && kw == 0 {
                                top = v
                                where_ = position
                            } else {
                                let take = (v .> top) .| (v .!= v)
                                top.replace(with: v, where: take)
                                where_.replace(with: position, where: take)
                            }
                        }
                    }
                    for l in 0..<8 {
                        best[ow + l] = top[l]
                        at[ow + l] = Int64(where_[l])
                    }
                    ow += 8
                }
                // The last columns one at a time, as in `maxFull2d`.
                while ow < oW {
                    var top = -Float.infinity, position = 0
                    for kh in 0..<kernel.0 {
                        let row = (oh * stride.0 + kh) * iW
                        for kw in 0..<kernel.1 {
                            let i = row + ow * stride.1 + kw
                            let v = src[i]
                            if (kh == 0 && kw == 0) || v > top || v.isNaN { top = v; position = i }
                        }
                    }
                    best[ow] = top
                    at[ow] = Int64(position)
                    ow += 1
                }
            }
        }
    }

    /// ``maxFull2dFloat`` for the most common window, 2x2 with stride 2: sixteen consecutive
    /// inputs of each of the two rows split into even and odd columns give the four candidates of
    /// eight windows without a gather. The same candidates in the same order, so the same values
    /// and indices. A last partial group of columns reruns the final eight (same results).
    static func max2x2Float(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ indices: UnsafeMutablePointer<Int64>,
                            planes: Int, _ w: PoolWindows) {
        let iH = w.input[1], iW = w.input[2], oH = w.output[1], oW = w.output[2]
        guard oW >= 8 else {
            if oW >= 4 { max2x2FloatNarrow(x, y, indices, planes: planes, w) } else {
                maxFull2dFloat(x, y, indices, planes: planes, w, kernel: (2, 2), stride: (2, 2))
            }
            return
        }
        let even = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14)
        for p in 0..<planes {
            let src = x + p * iH * iW
            for oh in 0..<oH {
                let best = y + (p * oH + oh) * oW, at = indices + (p * oH + oh) * oW
                var ow = 0
                while ow < oW {
                    if ow + 8 > oW { ow = oW - 8 }
                    let top = 2 * oh * iW + 2 * ow, bottom = top + iW
                    let upper = UnsafeRawPointer(src + top).loadUnaligned(as: SIMD16<Float>.self)
                    let lower = UnsafeRawPointer(src + bottom).loadUnaligned(as: SIMD16<Float>.self)
                    var value = upper.evenHalf, position = even &+ Int32(top)
                    @inline(__always) func consider(_ v: SIMD8<Float>, _ start: Int) {
                        let take = (v .> value) .| (v .!= v)
                        value.replace(with: v, where: take)
                        position.replace(with: even &+ Int32(start), where: take)
                    }
                    consider(upper.oddHalf, top + 1)
                    consider(lower.evenHalf, bottom)
                    consider(lower.oddHalf, bottom + 1)
                    UnsafeMutableRawPointer(best + ow).storeBytes(of: value, as: SIMD8<Float>.self)
                    UnsafeMutableRawPointer(at + ow).storeBytes(of: SIMD8<Int64>(truncatingIfNeeded: position), as: SIMD8<Int64>.self)
                    ow += 8
                }
            }
        }
    }

    /// ``max2x2Float`` four columns at a time, for output rows of 4 to 7 columns.
    static func max2x2FloatNarrow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ indices: UnsafeMutablePointer<Int64>,
                                  planes: Int, _ w: PoolWindows) {
        let iH = w.input[1], iW = w.input[2], oH = w.output[1], oW = w.output[2]
        let even = SIMD4<Int32>(0, 2, 4, 6)
        for p in 0..<planes {
            let src = x + p * iH * iW
            for oh in 0..<oH {
                let best = y + (p * oH + oh) * oW, at = indices + (p * oH + oh) * oW
                var ow = 0
                while ow < oW {
                    if ow + 4 > oW { ow = oW - 4 }
                    let top = 2 * oh * iW + 2 * ow, bottom = top + iW
                    let upper = UnsafeRawPointer(src + top).loadUnaligned(as: SIMD8<Float>.self)
                    let lower = UnsafeRawPointer(src + bottom).loadUnaligned(as: SIMD8<Float>.self)
                    var value = upper.evenHalf, position = even &+ Int32(top)
                    @inline(__always) func consider(_ v: SIMD4<Float>, _ start: Int) {
                        let take = (v .> value) .| (v .!= v)
                        value.replace(with: v, where: take)
                        position.replace(with: even &+ Int32(start), where: take)
                    }
                    consider(upper.oddHalf, top + 1)
                    consider(lower.evenHalf, bottom)
                    consider(lower.oddHalf, bottom + 1)
                    UnsafeMutableRawPointer(best + ow).storeBytes(of: value, as: SIMD4<Float>.self)
                    UnsafeMutableRawPointer(at + ow).storeBytes(of: SIMD4<Int64>(truncatingIfNeeded: position), as: SIMD4<Int64>.self)
                    ow += 4
                }
            }
        }
    }

    /// The values of ``maxFull2d`` without the indices (inference): the select per output column
    /// has no index to carry, so it vectorises.
    static func maxValues2d<T: TensorFloat>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, planes: Int, _ w: PoolWindows,
                                            kernel: (Int, Int), stride: (Int, Int)) {
        let iH = w.input[1], iW = w.input[2], oH = w.output[1], oW = w.output[2]
        if T.self == Float.self && native2x2 && is2x2(w) {
            max2x2Native(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
                         UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self), nil, planes: planes, w)
            return
        }
        if T.self == Float.self && kernel == (2, 2) && stride == (2, 2) && oW >= 8 {
            let src = UnsafeRawPointer(x).assumingMemoryBound(to: Float.self)
            let dst = UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self)
            // As ``max2x2Float``: even and odd columns of sixteen consecutive inputs per row.
            for p in 0..<planes {
                for oh in 0..<oH {
                    var ow = 0
                    while ow < oW {
                        if ow + 8 > oW { ow = oW - 8 }
                        let top = src + p * iH * iW + 2 * oh * iW + 2 * ow
                        let upper = UnsafeRawPointer(top).loadUnaligned(as: SIMD16<Float>.self)
                        let lower = UnsafeRawPointer(top + iW).loadUnaligned(as: SIMD16<Float>.self)
                        var value = upper.evenHalf
                        var v = upper.oddHalf
                        value.replace(with: v, where: (v .> value) .| (v .!= v))
                        v = lower.evenHalf
                        value.replace(with: v, where: (v .> value) .| (v .!= v))
                        v = lower.oddHalf
                        value.replace(with: v, where: (v .> value) .| (v .!= v))
                        UnsafeMutableRawPointer(dst + (p * oH + oh) * oW + ow).storeBytes(of: value, as: SIMD8<Float>.self)
                        ow += 8
                    }
                }
            }
            return
        }
        for p in 0..<planes {
            let src = x + p * iH * iW
            for oh in 0..<oH {
                let best = y + (p * oH + oh) * oW
                let first = src + oh * stride.0 * iW
                for ow in 0..<oW { best[ow] = first[ow * stride.1] }
                for kh in 0..<kernel.0 {
                    let row = src + (oh * stride.0 + kh) * iW
                    for kw in 0..<kernel.1 where kh > 0 || kw > 0 {
                        for ow in 0..<oW {
                            let v = row[ow * stride.1 + kw], b = best[ow]
                            // NaN propagates: a NaN candidate replaces, a NaN maximum stays.
                            best[ow] = (v > b) || (v != v) ? v : b
                        }
                    }
                }
            }
        }
    }

    /// Mean over each window, divided by `divisor(clippedCount, paddedCount)`.
    static func average<T: TensorFloat>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, planes: Int, _ w: PoolWindows,
                                        divisor: (Int, Int) -> Int) {
        let iH = w.input[1], iW = w.input[2], inPlane = w.inputPlane, outPlane = w.outputPlane
        for p in 0..<planes {
            let src = x + p * inPlane, dst = y + p * outPlane
            forEachWindow(w) { o, d, h, c, padded in
                let clipped = (d.1 - d.0) * (h.1 - h.0) * (c.1 - c.0)
                if clipped == 0 { dst[o] = 0; return }
                var sum: T = 0
                for id in d.0..<d.1 {
                    for ih in h.0..<h.1 {
                        let row = (id * iH + ih) * iW
                        for iw in c.0..<c.1 { sum += src[row + iw] }
                    }
                }
                dst[o] = sum / T(divisor(clipped, padded))
            }
        }
    }

    /// Gradient of ``average``: each output's gradient over its divisor, added to its window.
    static func averageBackward<T: TensorFloat>(_ g: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>, planes: Int, _ w: PoolWindows,
                                                divisor: (Int, Int) -> Int) {
        let iH = w.input[1], iW = w.input[2], inPlane = w.inputPlane, outPlane = w.outputPlane
        for p in 0..<planes {
            let src = g + p * outPlane, dst = dx + p * inPlane
            forEachWindow(w) { o, d, h, c, padded in
                let clipped = (d.1 - d.0) * (h.1 - h.0) * (c.1 - c.0)
                if clipped == 0 { return }
                let v = src[o] / T(divisor(clipped, padded))
                for id in d.0..<d.1 {
                    for ih in h.0..<h.1 {
                        let row = (id * iH + ih) * iW
                        for iw in c.0..<c.1 { dst[row + iw] += v }
                    }
                }
            }
        }
    }

    /// Adds `g[o]` at `indices[o]` of each plane (the gradient of ``max``), or with `assigning`
    /// writes it there (max unpooling: an element several windows picked gets its value once).
    /// ``scatter`` into an uninitialised `dx` for windows that tile the plane (kernel equal to
    /// stride, no padding): a row of windows at a time, zeros and then `0 + g` at each window's
    /// maximum (as adding to a zero would: -0 becomes +0), rows and columns no window covers
    /// zeroed too. Saves zero-filling all of `dx` in a separate pass ahead of the scatter.
    static func scatterTiled<T: TensorFloat>(_ g: UnsafePointer<T>, _ indices: UnsafePointer<Int64>, _ dx: UnsafeMutablePointer<T>,
                                             planes: Int, _ w: PoolWindows, kernelHeight kh: Int) {
        if T.self == Float.self && native2x2 && is2x2(w) {
            scatter2x2Native(UnsafeRawPointer(g).assumingMemoryBound(to: Float.self), indices,
                             UnsafeMutableRawPointer(dx).assumingMemoryBound(to: Float.self), planes: planes, w)
        } else {
            scatterTiledLoop(g, indices, dx, planes: planes, w, kernelHeight: kh)
        }
    }

    /// ``scatterTiled(_:_:_:planes:_:kernelHeight:)`` in Swift, for every float type and window.
    static func scatterTiledLoop<T: TensorFloat>(_ g: UnsafePointer<T>, _ indices: UnsafePointer<Int64>, _ dx: UnsafeMutablePointer<T>,
                                                 planes: Int, _ w: PoolWindows, kernelHeight kh: Int) {
        let iH = w.input[1], iW = w.input[2], oH = w.output[1], oW = w.output[2]
        for p in 0..<planes {
            let gp = g + p * oH * oW, ip = indices + p * oH * oW, dp = dx + p * iH * iW
            for oh in 0..<oH {
                // The window row's input rows while they are in cache, then no data-dependent branch.
                (dp + oh * kh * iW).update(repeating: 0, count: kh * iW)
                for ow in 0..<oW { dp[Int(ip[oh * oW + ow])] = 0 + gp[oh * oW + ow] }
            }
            (dp + oH * kh * iW).update(repeating: 0, count: (iH - oH * kh) * iW)
        }
    }

    static func scatter<T: TensorFloat>(_ g: UnsafePointer<T>, _ indices: UnsafePointer<Int64>, _ dx: UnsafeMutablePointer<T>,
                                        planes: Int, from: Int, to: Int, assigning: Bool = false) {
        for p in 0..<planes {
            let src = g + p * from, idx = indices + p * from, dst = dx + p * to
            if assigning {
                for o in 0..<from { dst[Int(idx[o])] = src[o] }
            } else {
                for o in 0..<from { dst[Int(idx[o])] += src[o] }
            }
        }
    }
}
