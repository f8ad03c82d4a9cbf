import EmberStorage
import EmberTensor

/// Batch normalization loops for float32 input with planes (`[N, C, S]`, `S > 1`: after a
/// convolution), along each contiguous plane of `S` positions with SIMD vectors.
///
/// The scalar loops summed each plane into one Double, a chain of dependent additions bound by
/// the adder's latency (BENCHMARKS.md has what it cost). Here each sum runs in sixteen Double
/// lanes, combined in a fixed order at the end of the plane, so results are deterministic (also
/// across thread counts: threads split channels or planes, never a sum) and independent of the
/// other samples' values, but not bitwise those of the one-chain sum (both are float64 sums of
/// float32 values). Element-wise outputs (`y`, `dx`) are computed exactly as the scalar loops do.
enum BatchNormPlanes {
    typealias F4 = SIMD4<Float>
    typealias D4 = SIMD4<Double>

    /// Runs `body` on disjoint ranges of channels, over threads when the tensor is large.
    static func forEachChannels(n: Int, c: Int, s: Int, _ body: (Range<Int>) -> Void) {
        let threads = n * c * s >= 1 << 16 ? min(Threading.maxThreads, c) : 1
        if threads <= 1 { return body(0..<c) }
        Threading.parallelFor(chunks: threads) { t in body((c * t / threads)..<(c * (t + 1) / threads)) }
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> D4 {
        D4(UnsafeRawPointer(p).loadUnaligned(as: F4.self))
    }

    /// `sum(f(row[j]))` over `j < s` in 16 lanes, then the lanes, then the tail.
    @inline(__always)
    static func laneSum(_ row: UnsafePointer<Float>, _ s: Int, _ f: (D4) -> D4, _ scalar: (Double) -> Double) -> Double {
        var a0 = D4(repeating: 0), a1 = a0, a2 = a0, a3 = a0
        var j = 0
        while j + 16 <= s {
            a0 += f(load(row + j)); a1 += f(load(row + j + 4)); a2 += f(load(row + j + 8)); a3 += f(load(row + j + 12))
            j += 16
        }
        var total = ((a0 + a1) + (a2 + a3)).sum()
        while j < s { total += scalar(Double(row[j])); j += 1 }
        return total
    }

    /// Per-channel means and biased variances (`BatchNormKernel.statistics`).
    static func statistics(_ x: UnsafePointer<Float>, n: Int, c: Int, s: Int,
                           mean: UnsafeMutablePointer<Double>, variance: UnsafeMutablePointer<Double>) {
        let m = Double(n * s)
        // Channels split over threads: each owns its channels' sums, added in sample order.
        forEachChannels(n: n, c: c, s: s) { channels in
            for i in 0..<n {
                for ch in channels { mean[ch] += laneSum(x + (i * c + ch) * s, s, { $0 }, { $0 }) }
            }
            for ch in channels { mean[ch] /= m }
            for i in 0..<n {
                for ch in channels {
                    let mu = mean[ch], mv = D4(repeating: mu)
                    variance[ch] += laneSum(x + (i * c + ch) * s, s, { ($0 - mv) * ($0 - mv) }, { ($0 - mu) * ($0 - mu) })
                }
            }
            for ch in channels { variance[ch] /= m }
        }
    }

    /// `y = x * scale + shift` along one plane (no fused multiply-add, as the scalar loop).
    @inline(__always)
    static func affine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ s: Int, _ scale: Float, _ shift: Float) {
        let sc = SIMD8<Float>(repeating: scale), sh = SIMD8<Float>(repeating: shift)
        var j = 0
        while j + 8 <= s {
            let v = UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(y + j).storeBytes(of: v * sc + sh, as: SIMD8<Float>.self)
            j += 8
        }
        while j < s { y[j] = x[j] * scale + shift; j += 1 }
    }

    /// `sum(g)` and `sum(g * (x - mean) * invstd)` per channel, added to `sumG` and `sumGX`.
    static func gradientSums(x: UnsafePointer<Float>, g: UnsafePointer<Float>, n: Int, c: Int, s: Int,
                             mean: UnsafePointer<Double>, invstd: UnsafePointer<Double>,
                             sumG: UnsafeMutablePointer<Double>, sumGX: UnsafeMutablePointer<Double>) {
        forEachChannels(n: n, c: c, s: s) { channels in
            for i in 0..<n {
                for ch in channels {
                    let o = (i * c + ch) * s, mu = mean[ch], inv = invstd[ch]
                    let mv = D4(repeating: mu), iv = D4(repeating: inv)
                    sumG[ch] += laneSum(g + o, s, { $0 }, { $0 })
                    // g * (x - mu) * inv, lane by lane.
                    var a0 = D4(repeating: 0), a1 = a0, a2 = a0, a3 = a0
                    var j = 0
                    let xp = x + o, gp = g + o
                    while j + 16 <= s {
                        a0 += load(gp + j) * (load(xp + j) - mv) * iv
                        a1 += load(gp + j + 4) * (load(xp + j + 4) - mv) * iv
                        a2 += load(gp + j + 8) * (load(xp + j + 8) - mv) * iv
                        a3 += load(gp + j + 12) * (load(xp + j + 12) - mv) * iv
                        j += 16
                    }
                    var total = ((a0 + a1) + (a2 + a3)).sum()
                    while j < s { total += Double(gp[j]) * (Double(xp[j]) - mu) * inv; j += 1 }
                    sumGX[ch] += total
                }
            }
        }
    }

    /// `dx = Float(k * (m g - sumG - xhat sumGX))` with `xhat = (x - mean) * invstd`, per channel.
    static func inputGradient(x: UnsafePointer<Float>, g: UnsafePointer<Float>, n: Int, c: Int, s: Int, m: Double,
                              mean: UnsafePointer<Double>, invstd: UnsafePointer<Double>, k: UnsafePointer<Double>,
                              sumG: UnsafePointer<Double>, sumGX: UnsafePointer<Double>, dx: UnsafeMutablePointer<Float>) {
        let mm = D4(repeating: m)
        Kernels.forEachChunk(count: n * c, minimumPerThread: max(1, 32_768 / s)) { start, count in
            for plane in start..<(start + count) {
                let ch = plane % c
                let o = plane * s, mu = mean[ch], inv = invstd[ch], kc = k[ch], sg = sumG[ch], sgx = sumGX[ch]
                let mv = D4(repeating: mu), iv = D4(repeating: inv), kv = D4(repeating: kc)
                let sgv = D4(repeating: sg), sgxv = D4(repeating: sgx)
                let xp = x + o, gp = g + o, dp = dx + o
                var j = 0
                while j + 4 <= s {
                    let xhat = (load(xp + j) - mv) * iv
                    let v = kv * (mm * load(gp + j) - sgv - xhat * sgxv)
                    UnsafeMutableRawPointer(dp + j).storeBytes(of: F4(v), as: F4.self)
                    j += 4
                }
                while j < s {
                    let xhat = (Double(xp[j]) - mu) * inv
                    dp[j] = Float(kc * (m * Double(gp[j]) - sg - xhat * sgx))
                    j += 1
                }
            }
        }
    }
}
