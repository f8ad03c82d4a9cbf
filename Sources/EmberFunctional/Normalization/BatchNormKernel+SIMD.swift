import EmberAutograd
import EmberStorage

/// Batch normalization loops for float32 `[N, C]` input (one position per channel, the layout
/// after a `Linear`), four channels per SIMD vector: each SIMD lane runs exactly the scalar loop's
/// operations for its channel, in the same order (sums over samples in sample order, no fused
/// multiply-adds), so the results are bitwise those of `BatchNormKernel`'s scalar loops. Swift
/// does not vectorise those itself here: it cannot prove the output does not overlap the inputs.
/// The `c % 4` channels left over run through the scalar loops.
enum BatchNormChannelsLast {
    typealias F4 = SIMD4<Float>
    typealias D4 = SIMD4<Double>

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> D4 {
        D4(UnsafeRawPointer(p).loadUnaligned(as: F4.self))
    }

    @inline(__always) static func load(_ p: UnsafePointer<Double>) -> D4 {
        UnsafeRawPointer(p).loadUnaligned(as: D4.self)
    }

    @inline(__always) static func store(_ v: D4, _ p: UnsafeMutablePointer<Double>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: D4.self)
    }

    @inline(__always) static func store(_ v: F4, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: F4.self)
    }

    /// The channels handled here: `0 ..< c - c % 4`.
    @inline(__always) static func vectorChannels(_ c: Int) -> Int { c - c % 4 }

    /// Runs `body(first, count)` on disjoint ranges of the vector channels (starting at multiples
    /// of 16), over threads when `[n, c]` is large. Channels are independent, so every channel's
    /// result is the same bits whatever the split.
    static func forEachChannelRange(n: Int, c: Int, _ body: (_ first: Int, _ count: Int) -> Void) {
        let vc = vectorChannels(c), groups = (vc + 15) / 16
        let threads = n * c >= 1 << 14 ? min(Threading.maxThreads, groups) : 1
        if threads <= 1 { return body(0, vc) }
        Threading.parallelFor(chunks: threads) { t in
            let first = 16 * (groups * t / threads), end = min(vc, 16 * (groups * (t + 1) / threads))
            if first < end { body(first, end - first) }
        }
    }

    /// Sums, means and biased variances of the vector channels (see `BatchNormKernel.statistics`).
    ///
    /// Sixteen channels (one cache line of each row) at a time: walking a column of `[N, C]` four
    /// channels wide re-read each line four times, and with rows a power-of-two apart the lines
    /// also evicted each other in L1 and L2 (rows 2 KiB apart use 32 of L2's 1024 sets).
    static func statistics(_ x: UnsafePointer<Float>, n: Int, c: Int, ld: Int, m: Double,
                           mean: UnsafeMutablePointer<Double>, variance: UnsafeMutablePointer<Double>) {
        var ch = 0
        let mv = D4(repeating: m)
        while ch + 16 <= c {
            var s0 = D4(repeating: 0), s1 = s0, s2 = s0, s3 = s0
            for i in 0..<n {
                let row = x + i * ld + ch
                s0 += load(row); s1 += load(row + 4); s2 += load(row + 8); s3 += load(row + 12)
            }
            let m0 = s0 / mv, m1 = s1 / mv, m2 = s2 / mv, m3 = s3 / mv
            var q0 = D4(repeating: 0), q1 = q0, q2 = q0, q3 = q0
            for i in 0..<n {
                let row = x + i * ld + ch
                let d0 = load(row) - m0, d1 = load(row + 4) - m1, d2 = load(row + 8) - m2, d3 = load(row + 12) - m3
                q0 += d0 * d0; q1 += d1 * d1; q2 += d2 * d2; q3 += d3 * d3
            }
            store(m0, mean + ch); store(m1, mean + ch + 4); store(m2, mean + ch + 8); store(m3, mean + ch + 12)
            store(q0, variance + ch); store(q1, variance + ch + 4); store(q2, variance + ch + 8); store(q3, variance + ch + 12)
            ch += 16
        }
        while ch < vectorChannels(c) {
            var sum = D4(repeating: 0)
            for i in 0..<n { sum += load(x + i * ld + ch) }
            let mu = sum / mv
            var sq = D4(repeating: 0)
            for i in 0..<n {
                let d = load(x + i * ld + ch) - mu
                sq += d * d
            }
            store(mu, mean + ch)
            store(sq, variance + ch)
            ch += 4
        }
    }

    /// `scale = Float(invstd * gamma)`, `shift = Float(beta - mean * invstd * gamma)` for the
    /// vector channels (gamma 1 and beta 0 when absent), as `BatchNormKernel.normalize` computes
    /// them one channel at a time.
    static func scaleShift(mean: UnsafePointer<Double>, invstd: UnsafePointer<Double>, c: Int,
                           gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?,
                           scale: UnsafeMutablePointer<Float>, shift: UnsafeMutablePointer<Float>) {
        var ch = 0
        while ch < vectorChannels(c) {
            let g = gamma.map { load($0 + ch) } ?? D4(repeating: 1)
            let b = beta.map { load($0 + ch) } ?? D4(repeating: 0)
            let mu = load(mean + ch), inv = load(invstd + ch)
            store(F4(inv * g), scale + ch)
            store(F4(b - mu * inv * g), shift + ch)
            ch += 4
        }
    }

    /// `y = x * scale + shift` for the vector channels, row by row (memory order).
    static func normalize(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, n: Int, c: Int, ld: Int,
                          scale: UnsafePointer<Float>, shift: UnsafePointer<Float>) {
        let vc = vectorChannels(c)
        for i in 0..<n {
            let o = i * ld
            var ch = 0
            while ch < vc {
                let sc = UnsafeRawPointer(scale + ch).loadUnaligned(as: F4.self)
                let sh = UnsafeRawPointer(shift + ch).loadUnaligned(as: F4.self)
                store(UnsafeRawPointer(x + o + ch).loadUnaligned(as: F4.self) * sc + sh, y + o + ch)
                ch += 4
            }
        }
    }

    /// `sum g` and `sum g xhat` per vector channel, sixteen channels per pass over the rows (see
    /// ``statistics(_:n:c:ld:m:mean:variance:)``).
    static func gradientSums(x: UnsafePointer<Float>, g: UnsafePointer<Float>, n: Int, c: Int, ld: Int,
                             mean: UnsafePointer<Double>, invstd: UnsafePointer<Double>,
                             sumG: UnsafeMutablePointer<Double>, sumGX: UnsafeMutablePointer<Double>) {
        var ch = 0
        while ch + 16 <= c {
            let mu0 = load(mean + ch), mu1 = load(mean + ch + 4), mu2 = load(mean + ch + 8), mu3 = load(mean + ch + 12)
            let in0 = load(invstd + ch), in1 = load(invstd + ch + 4), in2 = load(invstd + ch + 8), in3 = load(invstd + ch + 12)
            var a0 = D4(repeating: 0), a1 = a0, a2 = a0, a3 = a0
            var b0 = D4(repeating: 0), b1 = b0, b2 = b0, b3 = b0
            for i in 0..<n {
                let o = i * ld + ch
                let g0 = load(g + o), g1 = load(g + o + 4), g2 = load(g + o + 8), g3 = load(g + o + 12)
                a0 += g0; a1 += g1; a2 += g2; a3 += g3
                b0 += g0 * (load(x + o) - mu0) * in0
                b1 += g1 * (load(x + o + 4) - mu1) * in1
                b2 += g2 * (load(x + o + 8) - mu2) * in2
                b3 += g3 * (load(x + o + 12) - mu3) * in3
            }
            store(a0, sumG + ch); store(a1, sumG + ch + 4); store(a2, sumG + ch + 8); store(a3, sumG + ch + 12)
            store(b0, sumGX + ch); store(b1, sumGX + ch + 4); store(b2, sumGX + ch + 8); store(b3, sumGX + ch + 12)
            ch += 16
        }
        while ch < vectorChannels(c) {
            let mu = load(mean + ch), inv = load(invstd + ch)
            var a = D4(repeating: 0), b = D4(repeating: 0)
            for i in 0..<n {
                let o = i * ld + ch
                let gv = load(g + o)
                a += gv
                b += gv * (load(x + o) - mu) * inv
            }
            store(a, sumG + ch)
            store(b, sumGX + ch)
            ch += 4
        }
    }

    /// `dx = k * (M g - sum g - xhat sum(g xhat))` for the vector channels (batch statistics),
    /// row by row (memory order).
    static func inputGradient(x: UnsafePointer<Float>, g: UnsafePointer<Float>, n: Int, c: Int, ld: Int, m: Double,
                              mean: UnsafePointer<Double>, invstd: UnsafePointer<Double>, k: UnsafePointer<Double>,
                              sumG: UnsafePointer<Double>, sumGX: UnsafePointer<Double>, dx: UnsafeMutablePointer<Float>) {
        let mv = D4(repeating: m), vc = vectorChannels(c)
        for i in 0..<n {
            var ch = 0
            while ch < vc {
                let o = i * ld + ch
                let xhat = (load(x + o) - load(mean + ch)) * load(invstd + ch)
                store(F4(load(k + ch) * (mv * load(g + o) - load(sumG + ch) - xhat * load(sumGX + ch))), dx + o)
                ch += 4
            }
        }
    }
}
