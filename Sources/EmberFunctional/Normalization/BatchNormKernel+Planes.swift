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

    /// Per-channel means and biased variances (`BatchNormKernel.statistics`), from the planes'
    /// moments (``planeMoments(_:planes:s:sums:deviations:path:)``, ``combine(sums:deviations:n:c:s:mean:variance:)``):
    /// each plane is read from memory once, its second pass hitting the cache, where a mean over
    /// the whole batch first meant two passes over the input.
    static func statistics(_ x: UnsafePointer<Float>, n: Int, c: Int, s: Int,
                           mean: UnsafeMutablePointer<Double>, variance: UnsafeMutablePointer<Double>,
                           path: GEMMKernelPath = .best) {
        var moments = [Double](repeating: 0, count: 2 * n * c)
        moments.withUnsafeMutableBufferPointer { buffer in
            let sums = buffer.baseAddress!, deviations = sums + n * c
            planeMoments(x, planes: n * c, s: s, sums: sums, deviations: deviations, path: path)
            combine(sums: sums, deviations: deviations, n: n, c: c, s: s, mean: mean, variance: variance)
        }
    }

    /// ``momentsOfPlanes(_:planes:s:sums:deviations:path:)`` with the planes split over threads.
    static func planeMoments(_ x: UnsafePointer<Float>, planes: Int, s: Int, sums: UnsafeMutablePointer<Double>,
                             deviations: UnsafeMutablePointer<Double>, path: GEMMKernelPath = .best) {
        Kernels.forEachChunk(count: planes, minimumPerThread: max(1, 32_768 / s)) { start, count in
            momentsOfPlanes(x + start * s, planes: count, s: s, sums: sums + start, deviations: deviations + start, path: path)
        }
    }

    /// Each plane's sum and squared deviations from its own mean (`ember_bn_plane_moments_f32`),
    /// plane `p` of `[planes, s]` into `sums[p]` and `deviations[p]`, on the calling thread (a
    /// convolution takes its output's moments with it, sample by sample, on its worker threads).
    static func momentsOfPlanes(_ x: UnsafePointer<Float>, planes: Int, s: Int, sums: UnsafeMutablePointer<Double>,
                                deviations: UnsafeMutablePointer<Double>, path: GEMMKernelPath = .best) {
        let p = Int32(path.rawValue)
        for plane in 0..<planes { ember_bn_plane_moments_f32(p, x + plane * s, s, sums + plane, deviations + plane) }
    }

    /// Per-channel means and biased variances of `[n, c, s]` input from its planes' moments
    /// (`[n, c]` each): the mean is the planes' sums added in sample order, over `n s`; the
    /// variance adds, in sample order, each plane's squared deviations and `s (planeMean - mean)^2`
    /// (Chan, Golub and LeVeque's pairwise combination: in exact arithmetic the squared deviations
    /// from the batch mean, without a second pass over the input that needs the mean first).
    static func combine(sums: UnsafePointer<Double>, deviations: UnsafePointer<Double>, n: Int, c: Int, s: Int,
                        mean: UnsafeMutablePointer<Double>, variance: UnsafeMutablePointer<Double>) {
        let m = Double(n * s), size = Double(s)
        for ch in 0..<c {
            var total = 0.0
            for i in 0..<n { total += sums[i * c + ch] }
            let mu = total / m
            var squares = 0.0
            for i in 0..<n {
                let d = sums[i * c + ch] / size - mu
                squares += deviations[i * c + ch] + size * d * d
            }
            mean[ch] = mu
            variance[ch] = squares / m
        }
    }

    /// Words of a plane's ReLU mask (`ember_relu_mask_bits_f32`: a bit per element, planes
    /// starting on whole 16-bit words).
    static func maskWords(s: Int) -> Int { (s + 15) / 16 }

    /// Writes the ReLU mask of each plane of `y` (`[planes, s]`, a ReLU's output) to `bits`
    /// (``maskWords(s:)`` words per plane), on the calling thread.
    static func maskBits(_ y: UnsafePointer<Float>, planes: Range<Int>, s: Int, into bits: UnsafeMutablePointer<UInt16>,
                         path: GEMMKernelPath = .best) {
        let p = Int32(path.rawValue), words = maskWords(s: s)
        for plane in planes { ember_relu_mask_bits_f32(p, y + plane * s, s, bits + plane * words) }
    }

    /// `sum(g)` and `sum(g * (x - mean) * invstd)` per channel, added to `sumG` and `sumGX`. With
    /// `maskBits` (the mask of a ReLU applied after the normalization, ``maskBits(_:planes:s:into:path:)``),
    /// `g` is first taken through ReLU's backward (`y <= 0 ? 0 : g`), and written to `masked` when given.
    static func gradientSums(x: UnsafePointer<Float>, g: UnsafePointer<Float>, n: Int, c: Int, s: Int,
                             mean: UnsafePointer<Double>, invstd: UnsafePointer<Double>,
                             sumG: UnsafeMutablePointer<Double>, sumGX: UnsafeMutablePointer<Double>,
                             maskBits: UnsafePointer<UInt16>? = nil, masked: UnsafeMutablePointer<Float>? = nil,
                             path: GEMMKernelPath = .best) {
        let p = Int32(path.rawValue), words = maskWords(s: s)
        forEachChannels(n: n, c: c, s: s) { channels in
            for i in 0..<n {
                for ch in channels {
                    let o = (i * c + ch) * s
                    var sg = 0.0, sgx = 0.0
                    if let maskBits {
                        ember_bn_plane_masked_gradient_sums_f32(p, x + o, g + o, maskBits + (i * c + ch) * words, masked.map { $0 + o }, s,
                                                                mean[ch], invstd[ch], &sg, &sgx)
                    } else {
                        ember_bn_plane_gradient_sums_f32(p, x + o, g + o, s, mean[ch], invstd[ch], &sg, &sgx)
                    }
                    sumG[ch] += sg
                    sumGX[ch] += sgx
                }
            }
        }
    }

    /// `dx = Float(k * (m g - sumG - xhat sumGX))` with `xhat = (x - mean) * invstd`, per channel;
    /// with `maskBits`, of ReLU's backward of `g` (see ``gradientSums(x:g:n:c:s:mean:invstd:sumG:sumGX:maskBits:masked:path:)``).
    static func inputGradient(x: UnsafePointer<Float>, g: UnsafePointer<Float>, n: Int, c: Int, s: Int, m: Double,
                              mean: UnsafePointer<Double>, invstd: UnsafePointer<Double>, k: UnsafePointer<Double>,
                              sumG: UnsafePointer<Double>, sumGX: UnsafePointer<Double>, dx: UnsafeMutablePointer<Float>,
                              maskBits: UnsafePointer<UInt16>? = nil, path: GEMMKernelPath = .best) {
        let p = Int32(path.rawValue), words = maskWords(s: s)
        Kernels.forEachChunk(count: n * c, minimumPerThread: max(1, 32_768 / s)) { start, count in
            for plane in start..<(start + count) {
                let ch = plane % c, o = plane * s
                if let maskBits {
                    ember_bn_plane_masked_input_gradient_f32(p, x + o, g + o, maskBits + plane * words, dx + o, s, m, mean[ch], invstd[ch], k[ch],
                                                             sumG[ch], sumGX[ch])
                } else {
                    ember_bn_plane_input_gradient_f32(p, x + o, g + o, dx + o, s, m, mean[ch], invstd[ch], k[ch], sumG[ch], sumGX[ch])
                }
            }
        }
    }
}
