import EmberAutograd

/// Fused batch normalization over `[N, C, S]` views of contiguous input, in one pass per channel
/// for statistics and one for output, with a fused backward. Composing it from element-wise ops
/// would cost ten kernels and allocations per call; tiny networks are dominated by exactly that.
enum BatchNormKernel {
    /// Per-channel batch statistics: mean and biased variance, accumulated in Double.
    static func statistics<T: TensorFloat>(_ x: UnsafePointer<T>, n: Int, c: Int, s: Int) -> (mean: [Double], variance: [Double]) {
        var mean = [Double](repeating: 0, count: c), variance = [Double](repeating: 0, count: c)
        let m = Double(n * s)
        for ch in 0..<c {
            var sum = 0.0
            for i in 0..<n {
                let row = x + (i * c + ch) * s
                for j in 0..<s { sum += Double(row[j]) }
            }
            let mu = sum / m
            var sq = 0.0
            for i in 0..<n {
                let row = x + (i * c + ch) * s
                for j in 0..<s { let d = Double(row[j]) - mu; sq += d * d }
            }
            mean[ch] = mu
            variance[ch] = sq / m
        }
        return (mean, variance)
    }

    /// `y = (x - mean) * invstd * gamma + beta` per channel, folded into `x * scale + shift`.
    static func normalize<T: TensorFloat>(
        _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, n: Int, c: Int, s: Int,
        mean: [Double], invstd: [Double], gamma: UnsafePointer<T>?, beta: UnsafePointer<T>?
    ) {
        for ch in 0..<c {
            let g = gamma.map { Double($0[ch]) } ?? 1
            let b = beta.map { Double($0[ch]) } ?? 0
            let scale = T(invstd[ch] * g)
            let shift = T(b - mean[ch] * invstd[ch] * g)
            for i in 0..<n {
                let o = (i * c + ch) * s
                for j in 0..<s { y[o + j] = x[o + j] * scale + shift }
            }
        }
    }

    /// Gradients of batch normalization.
    ///
    /// With batch statistics (`usedBatchStats`): `dx = gamma * invstd / M * (M g - sum g - xhat sum(g xhat))`;
    /// with fixed running statistics: `dx = g * gamma * invstd`. Always `dgamma = sum(g xhat)`,
    /// `dbeta = sum(g)`.
    static func backward<T: TensorFloat>(
        x: UnsafePointer<T>, g: UnsafePointer<T>, n: Int, c: Int, s: Int,
        mean: [Double], invstd: [Double], gamma: UnsafePointer<T>?, usedBatchStats: Bool,
        dx: UnsafeMutablePointer<T>?, dgamma: UnsafeMutablePointer<T>?, dbeta: UnsafeMutablePointer<T>?
    ) {
        let m = Double(n * s)
        for ch in 0..<c {
            var sumG = 0.0, sumGX = 0.0
            let mu = mean[ch], inv = invstd[ch]
            for i in 0..<n {
                let o = (i * c + ch) * s
                for j in 0..<s {
                    let gv = Double(g[o + j])
                    sumG += gv
                    sumGX += gv * (Double(x[o + j]) - mu) * inv
                }
            }
            dgamma?[ch] = T(sumGX)
            dbeta?[ch] = T(sumG)
            guard let dx else { continue }
            let gam = gamma.map { Double($0[ch]) } ?? 1
            if usedBatchStats {
                let k = gam * inv / m
                for i in 0..<n {
                    let o = (i * c + ch) * s
                    for j in 0..<s {
                        let xhat = (Double(x[o + j]) - mu) * inv
                        dx[o + j] = T(k * (m * Double(g[o + j]) - sumG - xhat * sumGX))
                    }
                }
            } else {
                let k = T(gam * inv)
                for i in 0..<n {
                    let o = (i * c + ch) * s
                    for j in 0..<s { dx[o + j] = g[o + j] * k }
                }
            }
        }
    }
}
