import CEmberKernels
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
/// The sums and the input gradient run in C (`batch_norm.c`), at the CPU's vector width on
/// `path`, the same bits on every path (`BatchNormPlaneKernelTests` holds them to the Swift loops
/// they replaced).
enum BatchNormPlanes {
    /// Runs `body` on disjoint ranges of channels, over threads when the tensor is large.
    static func forEachChannels(n: Int, c: Int, s: Int, _ body: (Range<Int>) -> Void) {
        let threads = n * c * s >= 1 << 16 ? min(Threading.maxThreads, c) : 1
        if threads <= 1 { return body(0..<c) }
        Threading.parallelFor(chunks: threads) { t in body((c * t / threads)..<(c * (t + 1) / threads)) }
    }

    /// Per-channel means and biased variances (`BatchNormKernel.statistics`).
    static func statistics(_ x: UnsafePointer<Float>, n: Int, c: Int, s: Int,
                           mean: UnsafeMutablePointer<Double>, variance: UnsafeMutablePointer<Double>,
                           path: GEMMKernelPath = .best) {
        let m = Double(n * s), p = Int32(path.rawValue)
        // Channels split over threads: each owns its channels' sums, added in sample order.
        forEachChannels(n: n, c: c, s: s) { channels in
            for i in 0..<n {
                for ch in channels { mean[ch] += ember_bn_plane_sum_f32(p, x + (i * c + ch) * s, s, 0, 0) }
            }
            for ch in channels { mean[ch] /= m }
            for i in 0..<n {
                for ch in channels { variance[ch] += ember_bn_plane_sum_f32(p, x + (i * c + ch) * s, s, 1, mean[ch]) }
            }
            for ch in channels { variance[ch] /= m }
        }
    }

    /// `sum(g)` and `sum(g * (x - mean) * invstd)` per channel, added to `sumG` and `sumGX`.
    static func gradientSums(x: UnsafePointer<Float>, g: UnsafePointer<Float>, n: Int, c: Int, s: Int,
                             mean: UnsafePointer<Double>, invstd: UnsafePointer<Double>,
                             sumG: UnsafeMutablePointer<Double>, sumGX: UnsafeMutablePointer<Double>,
                             path: GEMMKernelPath = .best) {
        let p = Int32(path.rawValue)
        forEachChannels(n: n, c: c, s: s) { channels in
            for i in 0..<n {
                for ch in channels {
                    let o = (i * c + ch) * s
                    var sg = 0.0, sgx = 0.0
                    ember_bn_plane_gradient_sums_f32(p, x + o, g + o, s, mean[ch], invstd[ch], &sg, &sgx)
                    sumG[ch] += sg
                    sumGX[ch] += sgx
                }
            }
        }
    }

    /// `dx = Float(k * (m g - sumG - xhat sumGX))` with `xhat = (x - mean) * invstd`, per channel.
    static func inputGradient(x: UnsafePointer<Float>, g: UnsafePointer<Float>, n: Int, c: Int, s: Int, m: Double,
                              mean: UnsafePointer<Double>, invstd: UnsafePointer<Double>, k: UnsafePointer<Double>,
                              sumG: UnsafePointer<Double>, sumGX: UnsafePointer<Double>, dx: UnsafeMutablePointer<Float>,
                              path: GEMMKernelPath = .best) {
        let p = Int32(path.rawValue)
        Kernels.forEachChunk(count: n * c, minimumPerThread: max(1, 32_768 / s)) { start, count in
            for plane in start..<(start + count) {
                let ch = plane % c, o = plane * s
                ember_bn_plane_input_gradient_f32(p, x + o, g + o, dx + o, s, m, mean[ch], invstd[ch], k[ch], sumG[ch], sumGX[ch])
            }
        }
    }
}
