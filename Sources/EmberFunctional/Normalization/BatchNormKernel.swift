import CEmberKernels
import EmberAutograd
import EmberTensor
import EmberStorage

/// Fused batch normalization over `[N, C, S]` views of contiguous input: one pass for the mean,
/// one for the variance, one for the output, and a fused backward. Composing it from element-wise
/// ops would cost ten kernels and allocations per call; tiny networks are dominated by exactly
/// that.
///
/// Every loop walks the input in memory order (sample, channel, position) and keeps one
/// accumulator per channel, so each channel's sum is formed in the same order as a channel-by-
/// channel loop would (sample by sample, position by position): the results do not depend on the
/// loop order, and for `S == 1` (`[N, C]` input, the common case after a `Linear`) the inner loop
/// runs over contiguous channels and vectorises.
enum BatchNormKernel {
    /// Per-channel batch statistics accumulated in Double: `mean[ch]` and the biased variance
    /// `variance[ch]` (two passes: the mean, then the squared deviations from it; float32 planes
    /// combine each plane's own two passes, `BatchNormPlanes.statistics`).
    static func statistics<T: TensorFloat>(
        _ x: UnsafePointer<T>, n: Int, c: Int, s: Int,
        mean: UnsafeMutablePointer<Double>, variance: UnsafeMutablePointer<Double>
    ) {
        let m = Double(n * s)
        mean.update(repeating: 0, count: c)
        variance.update(repeating: 0, count: c)
        if s == 1 {
            var first = 0
            if T.self == Float.self {
                let xf = UnsafeRawPointer(x).assumingMemoryBound(to: Float.self)
                BatchNormChannelsLast.forEachChannelRange(n: n, c: c) { c0, count in
                    BatchNormChannelsLast.statistics(xf + c0, n: n, c: count, ld: c, m: m,
                                                     mean: mean + c0, variance: variance + c0)
                }
                first = BatchNormChannelsLast.vectorChannels(c)
            }
            for i in 0..<n {
                let row = x + i * c
                for ch in first..<c { mean[ch] += Double(row[ch]) }
            }
            for ch in first..<c { mean[ch] /= m }
            for i in 0..<n {
                let row = x + i * c
                for ch in first..<c {
                    let d = Double(row[ch]) - mean[ch]
                    variance[ch] += d * d
                }
            }
        } else if T.self == Float.self {
            BatchNormPlanes.statistics(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self), n: n, c: c, s: s,
                                       mean: mean, variance: variance)
            return
        } else {
            for i in 0..<n {
                for ch in 0..<c {
                    let row = x + (i * c + ch) * s
                    var sum = mean[ch]
                    for j in 0..<s { sum += Double(row[j]) }
                    mean[ch] = sum
                }
            }
            for ch in 0..<c { mean[ch] /= m }
            for i in 0..<n {
                for ch in 0..<c {
                    let row = x + (i * c + ch) * s
                    let mu = mean[ch]
                    var sq = variance[ch]
                    for j in 0..<s { let d = Double(row[j]) - mu; sq += d * d }
                    variance[ch] = sq
                }
            }
        }
        for ch in 0..<c { variance[ch] /= m }
    }

    /// `v = 1 / sqrt(v + eps)` in place (correctly rounded operations, four lanes at a time where
    /// the CPU has AVX2).
    static func invertStandardDeviation(_ v: UnsafeMutablePointer<Double>, count: Int, eps: Double) {
        VectorKernels.inverseSquareRoot(v, count: count, plus: eps)
    }

    /// `scale = invstd * gamma`, `shift = beta - mean * invstd * gamma` per channel (in float64,
    /// rounded once), the fold ``normalize(_:_:n:c:s:mean:invstd:gamma:beta:)`` applies.
    @inline(__always)
    static func scaleShift<T: TensorFloat>(
        mean: UnsafePointer<Double>, invstd: UnsafePointer<Double>, c: Int, gamma: UnsafePointer<T>?, beta: UnsafePointer<T>?,
        scale: UnsafeMutablePointer<T>, shift: UnsafeMutablePointer<T>
    ) {
        var first = 0
        if T.self == Float.self {
            BatchNormChannelsLast.scaleShift(
                mean: mean, invstd: invstd, c: c,
                gamma: gamma.map { UnsafeRawPointer($0).assumingMemoryBound(to: Float.self) },
                beta: beta.map { UnsafeRawPointer($0).assumingMemoryBound(to: Float.self) },
                scale: UnsafeMutableRawPointer(scale).assumingMemoryBound(to: Float.self),
                shift: UnsafeMutableRawPointer(shift).assumingMemoryBound(to: Float.self))
            first = BatchNormChannelsLast.vectorChannels(c)
        }
        for ch in first..<c {
            let g = gamma.map { Double($0[ch]) } ?? 1
            let b = beta.map { Double($0[ch]) } ?? 0
            scale[ch] = T(invstd[ch] * g)
            shift[ch] = T(b - mean[ch] * invstd[ch] * g)
        }
    }

    /// `y = (x - mean) * invstd * gamma + beta` per channel, folded into `x * scale + shift`; then,
    /// when given, `+ residual` (`x`'s layout) and with `relu`, `y <= 0 ? 0 : y`: each step the
    /// rounded operation the separate op computes. Float32 planes run in C
    /// (`ember_channel_epilogue_f32`), the sum and the ReLU applied while the plane is in cache;
    /// with `maskBits` (float32 planes and `relu`), each output plane's ReLU mask is written there
    /// too (``BatchNormPlanes/maskBits(_:planes:s:into:path:)``), for ``backward``.
    static func normalize<T: TensorFloat>(
        _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, n: Int, c: Int, s: Int,
        mean: UnsafePointer<Double>, invstd: UnsafePointer<Double>, gamma: UnsafePointer<T>?, beta: UnsafePointer<T>?,
        residual: UnsafePointer<T>? = nil, relu: Bool = false, maskBits: UnsafeMutablePointer<UInt16>? = nil
    ) {
        precondition(maskBits == nil || (relu && T.self == Float.self && s > 1), "BatchNormKernel.normalize: a ReLU mask needs a ReLU on float32 planes")
        withUnsafeTemporaryAllocation(of: T.self, capacity: 2 * c) { buffer in
            let scale = buffer.baseAddress!, shift = scale + c
            scaleShift(mean: mean, invstd: invstd, c: c, gamma: gamma, beta: beta, scale: scale, shift: shift)
            if s == 1 {
                var first = 0
                if T.self == Float.self {
                    let xf = UnsafeRawPointer(x).assumingMemoryBound(to: Float.self)
                    let yf = UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self)
                    let sf = UnsafeRawPointer(scale).assumingMemoryBound(to: Float.self)
                    let hf = UnsafeRawPointer(shift).assumingMemoryBound(to: Float.self)
                    BatchNormChannelsLast.forEachChannelRange(n: n, c: c) { c0, count in
                        BatchNormChannelsLast.normalize(xf + c0, yf + c0, n: n, c: count, ld: c, scale: sf + c0, shift: hf + c0)
                    }
                    first = BatchNormChannelsLast.vectorChannels(c)
                }
                for i in 0..<n {
                    let o = i * c
                    for ch in first..<c { y[o + ch] = x[o + ch] * scale[ch] + shift[ch] }
                }
            } else if T.self == Float.self {
                let xf = UnsafeRawPointer(x).assumingMemoryBound(to: Float.self)
                let yf = UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self)
                let sf = UnsafeRawPointer(scale).assumingMemoryBound(to: Float.self)
                let hf = UnsafeRawPointer(shift).assumingMemoryBound(to: Float.self)
                let rf = residual.map { UnsafeRawPointer($0).assumingMemoryBound(to: Float.self) }
                let path = Int32(GEMMKernelPath.best.rawValue)
                // Planes split over threads when there are many elements (each writes its own).
                Kernels.forEachChunk(count: n * c, minimumPerThread: max(1, 32_768 / s)) { start, count in
                    for plane in start..<(start + count) {
                        let ch = plane % c, o = plane * s
                        ember_channel_epilogue_f32(path, xf + o, yf + o, 1, s, sf + ch, hf + ch, rf.map { $0 + o }, relu ? 1 : 0)
                        // The ReLU's mask for the backward, from the plane just written (in cache).
                        if let maskBits { BatchNormPlanes.maskBits(yf, planes: plane..<(plane + 1), s: s, into: maskBits) }
                    }
                }
                return
            } else {
                for i in 0..<n {
                    for ch in 0..<c {
                        let o = (i * c + ch) * s, sc = scale[ch], sh = shift[ch]
                        for j in 0..<s { y[o + j] = x[o + j] * sc + sh }
                    }
                }
            }
            guard residual != nil || relu else { return }
            if T.self == Float.self {
                // One pass over the output (rows of channels have no plane to apply it to).
                ember_channel_epilogue_f32(Int32(GEMMKernelPath.best.rawValue), UnsafeRawPointer(y).assumingMemoryBound(to: Float.self),
                                           UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self), 1, n * c * s, nil, nil,
                                           residual.map { UnsafeRawPointer($0).assumingMemoryBound(to: Float.self) }, relu ? 1 : 0)
                return
            }
            for i in 0..<(n * c * s) {
                var v = y[i]
                if let residual { v = v + residual[i] }
                if relu && v <= 0 { v = 0 }
                y[i] = v
            }
        }
    }

    /// Gradients of batch normalization.
    ///
    /// With batch statistics (`usedBatchStats`): `dx = gamma * invstd / M * (M g - sum g - xhat sum(g xhat))`;
    /// with fixed running statistics: `dx = g * gamma * invstd`. Always `dgamma = sum(g xhat)`,
    /// `dbeta = sum(g)`.
    ///
    /// With `maskBits` (float32 planes with batch statistics only): the mask of a ReLU applied
    /// after the normalization (``BatchNormPlanes/maskBits(_:planes:s:into:path:)`` of its output
    /// `y`), and `g` the gradient of that output: `g` is taken through ReLU's backward
    /// (`y <= 0 ? 0 : g`) as it is read, and written to `maskedGradient` when given (the
    /// residual's gradient when one was added before the ReLU): no pass of its own.
    static func backward<T: TensorFloat>(
        x: UnsafePointer<T>, g: UnsafePointer<T>, n: Int, c: Int, s: Int,
        mean: UnsafePointer<Double>, invstd: UnsafePointer<Double>, gamma: UnsafePointer<T>?, usedBatchStats: Bool,
        dx: UnsafeMutablePointer<T>?, dgamma: UnsafeMutablePointer<T>?, dbeta: UnsafeMutablePointer<T>?,
        maskBits: UnsafePointer<UInt16>? = nil, maskedGradient: UnsafeMutablePointer<T>? = nil
    ) {
        precondition(maskBits == nil || (T.self == Float.self && s > 1 && usedBatchStats),
                     "BatchNormKernel.backward: a ReLU mask needs float32 planes and batch statistics")
        let maskedF = maskedGradient.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: Float.self) }
        let m = Double(n * s)
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 3 * c) { buffer in
            let sumG = buffer.baseAddress!, sumGX = sumG + c, k = sumGX + c
            sumG.update(repeating: 0, count: c)
            sumGX.update(repeating: 0, count: c)
            if s == 1 {
                var first = 0
                if T.self == Float.self {
                    let xf = UnsafeRawPointer(x).assumingMemoryBound(to: Float.self)
                    let gf = UnsafeRawPointer(g).assumingMemoryBound(to: Float.self)
                    BatchNormChannelsLast.forEachChannelRange(n: n, c: c) { c0, count in
                        BatchNormChannelsLast.gradientSums(x: xf + c0, g: gf + c0, n: n, c: count, ld: c,
                                                           mean: mean + c0, invstd: invstd + c0,
                                                           sumG: sumG + c0, sumGX: sumGX + c0)
                    }
                    first = BatchNormChannelsLast.vectorChannels(c)
                }
                for i in 0..<n {
                    let o = i * c
                    for ch in first..<c {
                        let gv = Double(g[o + ch])
                        sumG[ch] += gv
                        sumGX[ch] += gv * (Double(x[o + ch]) - mean[ch]) * invstd[ch]
                    }
                }
            } else if T.self == Float.self {
                BatchNormPlanes.gradientSums(x: UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
                                             g: UnsafeRawPointer(g).assumingMemoryBound(to: Float.self), n: n, c: c, s: s,
                                             mean: mean, invstd: invstd, sumG: sumG, sumGX: sumGX, maskBits: maskBits, masked: maskedF)
            } else {
                for i in 0..<n {
                    for ch in 0..<c {
                        let o = (i * c + ch) * s, mu = mean[ch], inv = invstd[ch]
                        var a = sumG[ch], b = sumGX[ch]
                        for j in 0..<s {
                            let gv = Double(g[o + j])
                            a += gv
                            b += gv * (Double(x[o + j]) - mu) * inv
                        }
                        sumG[ch] = a
                        sumGX[ch] = b
                    }
                }
            }
            for ch in 0..<c {
                dgamma?[ch] = T(sumGX[ch])
                dbeta?[ch] = T(sumG[ch])
            }
            guard let dx else { return }
            for ch in 0..<c {
                let gam = gamma.map { Double($0[ch]) } ?? 1
                k[ch] = usedBatchStats ? gam * invstd[ch] / m : gam * invstd[ch]
            }
            if usedBatchStats && s == 1 {
                var first = 0
                if T.self == Float.self {
                    let xf = UnsafeRawPointer(x).assumingMemoryBound(to: Float.self)
                    let gf = UnsafeRawPointer(g).assumingMemoryBound(to: Float.self)
                    let df = UnsafeMutableRawPointer(dx).assumingMemoryBound(to: Float.self)
                    BatchNormChannelsLast.forEachChannelRange(n: n, c: c) { c0, count in
                        BatchNormChannelsLast.inputGradient(x: xf + c0, g: gf + c0, n: n, c: count, ld: c, m: m,
                                                            mean: mean + c0, invstd: invstd + c0, k: k + c0,
                                                            sumG: sumG + c0, sumGX: sumGX + c0, dx: df + c0)
                    }
                    first = BatchNormChannelsLast.vectorChannels(c)
                }
                for i in 0..<n {
                    let o = i * c
                    for ch in first..<c {
                        let xhat = (Double(x[o + ch]) - mean[ch]) * invstd[ch]
                        dx[o + ch] = T(k[ch] * (m * Double(g[o + ch]) - sumG[ch] - xhat * sumGX[ch]))
                    }
                }
            } else if usedBatchStats && T.self == Float.self {
                // The masked gradient when the sums' pass wrote it, else `g` masked as it is read.
                BatchNormPlanes.inputGradient(x: UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
                                              g: maskedF.map { UnsafePointer($0) } ?? UnsafeRawPointer(g).assumingMemoryBound(to: Float.self),
                                              n: n, c: c, s: s, m: m,
                                              mean: mean, invstd: invstd, k: k, sumG: sumG, sumGX: sumGX,
                                              dx: UnsafeMutableRawPointer(dx).assumingMemoryBound(to: Float.self),
                                              maskBits: maskedF == nil ? maskBits : nil)
            } else if usedBatchStats {
                for i in 0..<n {
                    for ch in 0..<c {
                        let o = (i * c + ch) * s, mu = mean[ch], inv = invstd[ch], kc = k[ch]
                        let sg = sumG[ch], sgx = sumGX[ch]
                        for j in 0..<s {
                            let xhat = (Double(x[o + j]) - mu) * inv
                            dx[o + j] = T(kc * (m * Double(g[o + j]) - sg - xhat * sgx))
                        }
                    }
                }
            } else {
                withUnsafeTemporaryAllocation(of: T.self, capacity: c) { kt in
                    for ch in 0..<c { kt[ch] = T(k[ch]) }
                    for i in 0..<n {
                        for ch in 0..<c {
                            let o = (i * c + ch) * s, kc = kt[ch]
                            for j in 0..<s { dx[o + j] = g[o + j] * kc }
                        }
                    }
                }
            }
        }
    }
}
