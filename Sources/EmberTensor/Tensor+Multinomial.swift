import EmberStorage
import RealModule

extension Tensor {
    /// Category indices drawn from the distributions in the rows of `self` (non-negative weights,
    /// need not sum to 1).
    ///
    /// With replacement each sample is drawn independently: a uniform `u` in `[0, total)` picks the
    /// first category whose running sum of weights exceeds `u` (one Philox block per sample).
    /// Without replacement the draw is sequential sampling without replacement, done in one pass
    /// (Efraimidis-Spirakis): each category gets the key `w / E` with `E` exponential(1) (one
    /// block per category) and the `numSamples` largest keys are taken in order; categories of
    /// weight zero come last (in index order), as in PyTorch, which also allows drawing them.
    ///
    /// - Parameters:
    ///   - numSamples: samples per row (`> 0`; at most the number of categories without
    ///     replacement).
    ///   - replacement: whether a category may be drawn more than once (default `false`).
    ///   - generator: the random source; the same seed gives the same samples.
    /// - Returns: int64 of shape `[numSamples]` (1-d input) or `[rows, numSamples]`.
    ///
    /// PyTorch parity: `torch.multinomial(input, num_samples, replacement=False, generator=None)`,
    /// with its argument checks and error texts ("prob_dist must be 1 or 2 dim", "cannot sample
    /// n_sample <= 0 samples", "probability tensor contains either `inf`, `nan` or element < 0",
    /// "invalid multinomial distribution (sum of probabilities <= 0)" ...). The random stream
    /// differs from PyTorch's (same distribution, different numbers).
    public func multinomial(numSamples: Int, replacement: Bool = false, generator: Generator = .default) -> Tensor {
        precondition(rank == 1 || rank == 2, "multinomial: prob_dist must be 1 or 2 dim (got \(rank)-dim input of shape \(shape))")
        precondition(dtype.isFloatingPoint,
                     "multinomial: multinomial only supports floating-point dtypes for input, got: \(dtype == .int64 ? "Long" : "Bool")")
        precondition(numSamples > 0, "multinomial: cannot sample n_sample <= 0 samples")
        let n = shape[rank - 1]
        precondition(replacement || numSamples <= n,
                     "multinomial: cannot sample n_sample > prob_dist.size(-1) samples without replacement (n_sample \(numSamples), size \(n))")
        precondition(n <= 1 << 24, "multinomial: number of categories cannot exceed 2^24")
        let rows = rank == 1 ? 1 : shape[0]
        let weights = convertedRaw(to: .float64).contiguousRaw.scalars(as: Double.self)
        for r in 0..<rows {
            var total = 0.0
            for i in 0..<n {
                let w = weights[r * n + i]
                precondition(w.isFinite && w >= 0, "multinomial: probability tensor contains either `inf`, `nan` or element < 0")
                total += w
            }
            precondition(total > 0, "multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
        }
        var out = [Int64](repeating: 0, count: rows * numSamples)
        let perRow = replacement ? numSamples : n
        let (seed, start) = generator.reserve(blocks: rows * perRow)
        func uniform(_ b: Int, openZero: Bool) -> Double {
            let w = Philox.block(seed: seed, index: start &+ UInt64(b))
            return openZero ? RandomBits.unitDoubleOpenZero(w.0, w.1) : RandomBits.unitDouble(w.0, w.1)
        }
        for r in 0..<rows {
            let row = weights[(r * n)..<(r * n + n)].map { $0 }
            if replacement {
                var cdf = [Double](repeating: 0, count: n)
                var acc = 0.0
                for i in 0..<n { acc += row[i]; cdf[i] = acc }
                let lastPositive = row.lastIndex { $0 > 0 }!
                for s in 0..<numSamples {
                    let u = uniform(r * perRow + s, openZero: false) * acc
                    // First category whose running sum exceeds u (binary search).
                    var lo = 0, hi = n
                    while lo < hi {
                        let mid = (lo + hi) / 2
                        if cdf[mid] > u { hi = mid } else { lo = mid + 1 }
                    }
                    out[r * numSamples + s] = Int64(Swift.min(lo, lastPositive))
                }
            } else {
                // Keys w / E with E = -log(U), U in (0, 1]; larger keys first, ties by index.
                let keys = (0..<n).map { i -> Double in
                    let e = -Double.log(uniform(r * perRow + i, openZero: true))
                    return row[i] / Swift.max(e, .leastNonzeroMagnitude)
                }
                let order = (0..<n).sorted { keys[$0] > keys[$1] || (keys[$0] == keys[$1] && $0 < $1) }
                for s in 0..<numSamples { out[r * numSamples + s] = Int64(order[s]) }
            }
        }
        return Tensor(out, shape: rank == 1 ? [numSamples] : [rows, numSamples])
    }
}
