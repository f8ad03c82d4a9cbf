import EmberAutograd

/// Batch normalization loops for float32 `[N, C]` input (one position per channel, the layout
/// after a `Linear`), four channels at a time: each SIMD lane runs exactly the scalar loop's
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

    /// Sums, means and biased variances of the vector channels (see `BatchNormKernel.statistics`).
    static func statistics(_ x: UnsafePointer<Float>, n: Int, c: Int, m: Double,
                           mean: UnsafeMutablePointer<Double>, variance: UnsafeMutablePointer<Double>) {
        var ch = 0
        while ch < vectorChannels(c) {
            var sum = D4(repeating: 0)
            for i in 0..<n { sum += load(x + i * c + ch) }
            let mu = sum / D4(repeating: m)
            var sq = D4(repeating: 0)
            for i in 0..<n {
                let d = load(x + i * c + ch) - mu
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

    /// `y = x * scale + shift` for the vector channels.
    static func normalize(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, n: Int, c: Int,
                          scale: UnsafePointer<Float>, shift: UnsafePointer<Float>) {
        var ch = 0
        while ch < vectorChannels(c) {
            let sc = UnsafeRawPointer(scale + ch).loadUnaligned(as: F4.self)
            let sh = UnsafeRawPointer(shift + ch).loadUnaligned(as: F4.self)
            for i in 0..<n {
                let o = i * c + ch
                store(UnsafeRawPointer(x + o).loadUnaligned(as: F4.self) * sc + sh, y + o)
            }
            ch += 4
        }
    }

    /// `sum g` and `sum g xhat` per vector channel.
    static func gradientSums(x: UnsafePointer<Float>, g: UnsafePointer<Float>, n: Int, c: Int,
                             mean: UnsafePointer<Double>, invstd: UnsafePointer<Double>,
                             sumG: UnsafeMutablePointer<Double>, sumGX: UnsafeMutablePointer<Double>) {
        var ch = 0
        while ch < vectorChannels(c) {
            let mu = load(mean + ch), inv = load(invstd + ch)
            var a = D4(repeating: 0), b = D4(repeating: 0)
            for i in 0..<n {
                let o = i * c + ch
                let gv = load(g + o)
                a += gv
                b += gv * (load(x + o) - mu) * inv
            }
            store(a, sumG + ch)
            store(b, sumGX + ch)
            ch += 4
        }
    }

    /// `dx = k * (M g - sum g - xhat sum(g xhat))` for the vector channels (batch statistics).
    static func inputGradient(x: UnsafePointer<Float>, g: UnsafePointer<Float>, n: Int, c: Int, m: Double,
                              mean: UnsafePointer<Double>, invstd: UnsafePointer<Double>, k: UnsafePointer<Double>,
                              sumG: UnsafePointer<Double>, sumGX: UnsafePointer<Double>, dx: UnsafeMutablePointer<Float>) {
        var ch = 0
        let mv = D4(repeating: m)
        while ch < vectorChannels(c) {
            let mu = load(mean + ch), inv = load(invstd + ch), kc = load(k + ch)
            let sg = load(sumG + ch), sgx = load(sumGX + ch)
            for i in 0..<n {
                let o = i * c + ch
                let xhat = (load(x + o) - mu) * inv
                store(F4(kc * (mv * load(g + o) - sg - xhat * sgx)), dx + o)
            }
            ch += 4
        }
    }
}
