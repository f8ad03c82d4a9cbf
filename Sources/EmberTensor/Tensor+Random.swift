import EmberStorage
import RealModule

// Random tensors. Every function draws from an explicit `Generator` (by default
// `Generator.default`, the task's generator) and lays its draw out so that element `i` depends
// only on `(seed, offset, i)`:
//
//   uniform float32     4 elements per Philox block (24 bits each)
//   uniform float64     2 elements per block (53 bits each)
//   normal float32      4 elements per block (two Box-Muller pairs from 32-bit uniforms)
//   normal float64      2 elements per block (one Box-Muller pair from 53-bit uniforms)
//   bernoulli           2 elements per block (53-bit uniform < p)
//   randint             1 element per block (Lemire's multiply-shift with exact rejection; a
//                       rejected draw continues on the same block index in stream 1, 2, ...)
//   randperm(n)         n blocks (block i drives the Fisher-Yates swap at position i)
//
// A draw of n elements advances the generator by the number of blocks it covers, so
// consecutive draws never share blocks. Large draws are filled in parallel chunks of whole blocks,
// which cannot change any value. None of this matches PyTorch's streams (PyTorch's CPU generator
// is mt19937): the same seed gives different numbers than in PyTorch.

extension Generator {
    /// Reserves `blocks` Philox blocks and calls `body(seed, index, b)` for `b` in `0..<blocks`,
    /// where `index` is the block's absolute counter. Large draws run in parallel chunks of whole
    /// blocks; `body` must write only the elements that belong to block `b` (disjoint memory).
    package func forEachBlock(_ blocks: Int, _ body: (_ seed: UInt64, _ index: UInt64, _ b: Int) -> Void) {
        let (seed, start) = reserve(blocks: blocks)
        let minBlocksPerChunk = 1 << 13
        let chunks = Swift.max(1, Swift.min(Threading.maxThreads, blocks / minBlocksPerChunk))
        // Chunks cover disjoint block ranges, and each block writes only its own elements.
        Threading.parallelFor(chunks: chunks) { c in
            let lo = blocks * c / chunks, hi = blocks * (c + 1) / chunks
            for b in lo..<hi { body(seed, start &+ UInt64(b), b) }
        }
    }

    /// ``forEachBlock(_:_:)`` in ranges: reserves `blocks` blocks and calls
    /// `body(seed, firstIndex, range)` for consecutive ranges of at most `maxRange` blocks covering
    /// `0..<blocks`, where `firstIndex` is the absolute counter of `range.lowerBound`. Large draws
    /// run in the same parallel chunks as ``forEachBlock(_:_:)``; `body` must write only the
    /// elements that belong to its range (disjoint memory).
    package func forEachBlockRange(
        _ blocks: Int, maxRange: Int, _ body: (_ seed: UInt64, _ firstIndex: UInt64, _ range: Range<Int>) -> Void
    ) {
        let (seed, start) = reserve(blocks: blocks)
        let minBlocksPerChunk = 1 << 13
        let chunks = Swift.max(1, Swift.min(Threading.maxThreads, blocks / minBlocksPerChunk))
        // Chunks cover disjoint block ranges, and each range writes only its own elements.
        Threading.parallelFor(chunks: chunks) { c in
            var lo = blocks * c / chunks
            let hi = blocks * (c + 1) / chunks
            while lo < hi {
                let end = Swift.min(hi, lo + maxRange)
                body(seed, start &+ UInt64(lo), lo..<end)
                lo = end
            }
        }
    }
}

/// Random-bit to number conversions (exact integer and power-of-two arithmetic, so identical on
/// every machine).
package enum RandomBits {
    /// Word `j` (0...3) of a block.
    @inline(__always) package static func word(_ w: Philox.Block, _ j: Int) -> UInt32 {
        switch j {
        case 0: w.0
        case 1: w.1
        case 2: w.2
        default: w.3
        }
    }

    /// A float in `[0, 1)` from the top 24 bits of `w`: `k * 2^-24`.
    @inline(__always) package static func unitFloat(_ w: UInt32) -> Float { Float(w >> 8) * 0x1p-24 }

    /// A double in `[0, 1)` from 53 of the 64 bits `(hi, lo)`: `k * 2^-53`.
    @inline(__always) package static func unitDouble(_ hi: UInt32, _ lo: UInt32) -> Double {
        Double((UInt64(hi) << 32 | UInt64(lo)) >> 11) * 0x1p-53
    }

    /// A double in `(0, 1]` from 53 bits: `(k + 1) * 2^-53` (safe for `log`).
    @inline(__always) package static func unitDoubleOpenZero(_ hi: UInt32, _ lo: UInt32) -> Double {
        Double((UInt64(hi) << 32 | UInt64(lo)) >> 11 + 1) * 0x1p-53
    }

    /// Box-Muller: two independent standard normals from `u1` in `(0, 1]` and `u2` in `[0, 1)`.
    @inline(__always) package static func boxMuller(_ u1: Double, _ u2: Double) -> (Double, Double) {
        let r = (-2 * Double.log(u1)).squareRoot()
        let theta = 2 * Double.pi * u2
        return (r * Double.cos(theta), r * Double.sin(theta))
    }

    /// A uniform integer in `0..<bound` (`bound >= 1`) for Philox block `index`, without bias:
    /// Lemire's multiply-shift, rejecting the few values that would favour small results. The
    /// block's two 64-bit words are tried first; a rejection (probability < bound / 2^64 each)
    /// continues on the same block index in streams 1, 2, ..., so the result still depends only
    /// on `(seed, index)`.
    @inline(__always) package static func bounded(_ bound: UInt64, seed: UInt64, index: UInt64) -> UInt64 {
        var block = Philox.block(seed: seed, index: index)
        var stream: UInt64 = 0
        var useSecond = false
        func nextWord() -> UInt64 {
            if useSecond {
                useSecond = false
                let w = UInt64(block.2) << 32 | UInt64(block.3)
                stream += 1
                block = Philox.block(seed: seed, index: index, stream: stream)
                return w
            }
            useSecond = true
            return UInt64(block.0) << 32 | UInt64(block.1)
        }
        var m = nextWord().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound  // 2^64 mod bound
            while m.low < threshold { m = nextWord().multipliedFullWidth(by: bound) }
        }
        return m.high
    }
}

extension Tensor {
    /// Values drawn uniformly from `[low, high)`.
    ///
    /// `x = low + (high - low) * u` with `u = k * 2^-24` (float32) or `k * 2^-53` (float64) for a
    /// uniform integer `k`, computed in double and rounded to the dtype; a value that rounds up to
    /// `high` is replaced by the largest value below it, so `high` is never returned (unless
    /// `low == high`, which gives `low`).
    ///
    /// - Parameters:
    ///   - shape: the result's shape.
    ///   - low: inclusive lower bound.
    ///   - high: exclusive upper bound (`>= low`).
    ///   - dtype: `.float32` (default) or `.float64`.
    ///   - generator: the random source; defaults to the task's ``Generator/default``.
    ///
    /// PyTorch parity: `torch.rand(shape)` (for `[0, 1)`) and `torch.empty(shape).uniform_(low,
    /// high)`, with the same argument checks. The random stream differs from PyTorch's.
    public static func uniform(
        _ shape: Shape, low: Double = 0, high: Double = 1, dtype: DType = .float32,
        generator: Generator = .default
    ) -> Tensor {
        precondition(dtype.isFloatingPoint, "uniform: \"check_uniform_bounds\" not implemented for '\(dtype)'; use a float dtype (or randint for integers)")
        precondition(low.isFinite, "uniform: from is out of bounds for \(dtype) (low = \(low))")
        precondition(high.isFinite, "uniform: to is out of bounds for \(dtype) (high = \(high))")
        precondition(low <= high, "uniform_ expects to return a [from, to) range, but found from=\(low) > to=\(high)")
        let maxValue = dtype == .float32 ? Double(Float.greatestFiniteMagnitude) : Double.greatestFiniteMagnitude
        precondition((high - low) <= maxValue,
                     "uniform_ expects to-from <= numeric_limits<\(dtype)>::max(), but found to=\(high) and from=\(low) which result in to-from to exceed the limit")
        let out = Tensor(uninitializedShape: checkedShape(shape, op: "uniform"), dtype: dtype)
        let n = out.count
        let width = high - low
        switch dtype {
        case .float32:
            let p = out.mutablePointer(as: Float.self)
            let lo = Float(low), hi = Float(high)
            let top = lo < hi ? hi.nextDown : lo
            generator.forEachBlock((n + 3) / 4) { seed, index, b in
                let w = Philox.block(seed: seed, index: index)
                for j in 0..<Swift.min(4, n - 4 * b) {
                    let v = Float(low + width * Double(RandomBits.unitFloat(RandomBits.word(w, j))))
                    p[4 * b + j] = v < hi ? v : top
                }
            }
        default:
            let p = out.mutablePointer(as: Double.self)
            let top = low < high ? high.nextDown : low
            generator.forEachBlock((n + 1) / 2) { seed, index, b in
                let w = Philox.block(seed: seed, index: index)
                let v0 = low + width * RandomBits.unitDouble(w.0, w.1)
                p[2 * b] = v0 < high ? v0 : top
                if 2 * b + 1 < n {
                    let v1 = low + width * RandomBits.unitDouble(w.2, w.3)
                    p[2 * b + 1] = v1 < high ? v1 : top
                }
            }
        }
        return out
    }

    /// Values drawn from the normal distribution with `mean` and standard deviation `std`.
    ///
    /// Box-Muller on uniforms in `(0, 1]` x `[0, 1)`: `mean + std * sqrt(-2 ln u1) * cos(2 pi u2)`
    /// (and `sin` for the pair's second value), computed in double and rounded to the dtype.
    /// float32 uses 32-bit uniforms (tails reach about 6.7 sigma), float64 53-bit ones (8.6 sigma).
    ///
    /// `log`, `cos` and `sin` come from the platform's math library: results are bit-identical
    /// across runs, thread counts and machines of one platform; two different C libraries may
    /// differ in the last bit of a float64 result (float32 results, rounded from double, almost
    /// never differ).
    ///
    /// - Parameters:
    ///   - shape: the result's shape.
    ///   - mean: the distribution's mean.
    ///   - std: its standard deviation (`>= 0`).
    ///   - dtype: `.float32` (default) or `.float64`.
    ///   - generator: the random source; defaults to the task's ``Generator/default``.
    ///
    /// PyTorch parity: `torch.randn(shape)` (for mean 0, std 1) and `torch.normal(mean, std,
    /// size)`, with the same argument checks. The random stream differs from PyTorch's.
    public static func normal(
        _ shape: Shape, mean: Double = 0, std: Double = 1, dtype: DType = .float32,
        generator: Generator = .default
    ) -> Tensor {
        precondition(dtype.isFloatingPoint, "normal: \"normal_kernel_cpu\" not implemented for '\(dtype)'; use a float dtype")
        precondition(std >= 0, "normal expects std >= 0.0, but found std \(std)")
        precondition(mean.isFinite && std.isFinite, "normal: mean (\(mean)) and std (\(std)) must be finite")
        let out = Tensor(uninitializedShape: checkedShape(shape, op: "normal"), dtype: dtype)
        let n = out.count
        switch dtype {
        case .float32:
            let p = out.mutablePointer(as: Float.self)
            generator.forEachBlock((n + 3) / 4) { seed, index, b in
                let w = Philox.block(seed: seed, index: index)
                let (z0, z1) = RandomBits.boxMuller((Double(w.0) + 1) * 0x1p-32, Double(w.1) * 0x1p-32)
                let (z2, z3) = RandomBits.boxMuller((Double(w.2) + 1) * 0x1p-32, Double(w.3) * 0x1p-32)
                let m = Swift.min(4, n - 4 * b)
                p[4 * b] = Float(mean + std * z0)
                if m > 1 { p[4 * b + 1] = Float(mean + std * z1) }
                if m > 2 { p[4 * b + 2] = Float(mean + std * z2) }
                if m > 3 { p[4 * b + 3] = Float(mean + std * z3) }
            }
        default:
            let p = out.mutablePointer(as: Double.self)
            generator.forEachBlock((n + 1) / 2) { seed, index, b in
                let w = Philox.block(seed: seed, index: index)
                let (z0, z1) = RandomBits.boxMuller(RandomBits.unitDoubleOpenZero(w.0, w.1), RandomBits.unitDouble(w.2, w.3))
                p[2 * b] = mean + std * z0
                if 2 * b + 1 < n { p[2 * b + 1] = mean + std * z1 }
            }
        }
        return out
    }

    /// A random mask: each element is 1 (`true`) with probability `p`, else 0 (`false`).
    ///
    /// Element `i` is `u_i < p` for a 53-bit uniform `u_i` in `[0, 1)`, so `p = 0` never and `p = 1`
    /// always gives 1.
    ///
    /// - Parameters:
    ///   - shape: the result's shape.
    ///   - p: the probability of a 1, in `[0, 1]`.
    ///   - dtype: any dtype; `.bool` gives a boolean mask, float dtypes a 0/1 mask (default float32).
    ///   - generator: the random source; defaults to the task's ``Generator/default``.
    ///
    /// PyTorch parity: `torch.empty(shape, dtype=dtype).bernoulli_(p)`, with the same check on
    /// `p`. The random stream differs from PyTorch's.
    public static func bernoulli(
        _ shape: Shape, p: Double, dtype: DType = .float32, generator: Generator = .default
    ) -> Tensor {
        precondition(p >= 0 && p <= 1, "bernoulli_ expects p to be in [0, 1], but got p=\(p)")
        let out = Tensor(uninitializedShape: checkedShape(shape, op: "bernoulli"), dtype: dtype)
        fillBernoulli(out, generator: generator) { _ in p }
        return out
    }

    /// A random mask with a per-element probability: element `i` is 1 with probability
    /// `probabilities[i]` (which must lie in `[0, 1]`).
    ///
    /// - Parameters:
    ///   - probabilities: a float tensor of probabilities; the result has its shape.
    ///   - dtype: the result's dtype; defaults to that of `probabilities` (`.bool` gives a mask).
    ///   - generator: the random source; defaults to the task's ``Generator/default``.
    ///
    /// PyTorch parity: `torch.bernoulli(probabilities)`, including its refusal of integer
    /// probabilities and of values outside `[0, 1]`. The random stream differs from PyTorch's.
    public static func bernoulli(
        _ probabilities: Tensor, dtype: DType? = nil, generator: Generator = .default
    ) -> Tensor {
        precondition(probabilities.dtype.isFloatingPoint,
                     "bernoulli: \"bernoulli_tensor_cpu_p_\" not implemented for '\(probabilities.dtype)'; probabilities must be float32 or float64")
        let probs = probabilities.doubles
        precondition(probs.allSatisfy { $0 >= 0 && $0 <= 1 },
                     "bernoulli: Expected p_in >= 0 && p_in <= 1 to be true, but got false (a probability lies outside [0, 1] or is NaN)")
        let out = Tensor(uninitializedShape: probabilities.shape, dtype: dtype ?? probabilities.dtype)
        probs.withUnsafeBufferPointer { pb in
            fillBernoulli(out, generator: generator) { pb[$0] }
        }
        return out
    }

    /// Writes Bernoulli draws into the fresh contiguous `out`; element `i` has probability `p(i)`.
    private static func fillBernoulli(_ out: Tensor, generator: Generator, _ p: (Int) -> Double) {
        let n = out.count
        func fill<T: TensorScalar>(_: T.Type, one: T, zero: T) {
            let o = out.mutablePointer(as: T.self)
            generator.forEachBlock((n + 1) / 2) { seed, index, b in
                let w = Philox.block(seed: seed, index: index)
                let i = 2 * b
                o[i] = RandomBits.unitDouble(w.0, w.1) < p(i) ? one : zero
                if i + 1 < n { o[i + 1] = RandomBits.unitDouble(w.2, w.3) < p(i + 1) ? one : zero }
            }
        }
        switch out.dtype {
        case .float32: fill(Float.self, one: 1, zero: 0)
        case .float64: fill(Double.self, one: 1, zero: 0)
        case .int64: fill(Int64.self, one: 1, zero: 0)
        case .bool: fill(Bool.self, one: true, zero: false)
        }
    }

    /// Integers drawn uniformly from `low..<high`, without bias.
    ///
    /// Each element comes from one Philox block through Lemire's multiply-shift with exact
    /// rejection, so every value in the range is equally likely for any range up to the full
    /// int64 span.
    ///
    /// - Parameters:
    ///   - low: inclusive lower bound (default 0).
    ///   - high: exclusive upper bound (`> low`).
    ///   - shape: the result's shape.
    ///   - dtype: `.int64` (default), `.float32` or `.float64` (integer values stored as floats).
    ///   - generator: the random source; defaults to the task's ``Generator/default``.
    ///
    /// PyTorch parity: `torch.randint(low, high, size)`, with the same check on the bounds. The
    /// random stream differs from PyTorch's.
    public static func randint(
        low: Int = 0, high: Int, shape: Shape, dtype: DType = .int64, generator: Generator = .default
    ) -> Tensor {
        precondition(low < high, "random_ expects 'from' to be less than 'to', but got from=\(low) >= to=\(high)")
        precondition(dtype != .bool, "randint: to - 1 is out of bounds for bool; use bernoulli for random masks")
        let out = Tensor(uninitializedShape: checkedShape(shape, op: "randint"), dtype: .int64)
        let p = out.mutablePointer(as: Int64.self)
        let lo = Int64(low)
        let range = UInt64(bitPattern: Int64(high) &- lo)
        generator.forEachBlock(out.count) { seed, index, b in
            p[b] = lo &+ Int64(bitPattern: RandomBits.bounded(range, seed: seed, index: index))
        }
        return dtype == .int64 ? out : out.convertedRaw(to: dtype)
    }

    /// A random permutation of `0..<n`.
    ///
    /// Fisher-Yates: for `i` from `n - 1` down to 1, swap position `i` with a uniform `j` in
    /// `0...i` drawn from block `i` of the draw (unbiased, see ``randint(low:high:shape:dtype:generator:)``).
    ///
    /// - Parameters:
    ///   - n: the number of elements (`>= 0`).
    ///   - dtype: `.int64` (default), `.float32` or `.float64`.
    ///   - generator: the random source; defaults to the task's ``Generator/default``.
    ///
    /// PyTorch parity: `torch.randperm(n)`. The random stream differs from PyTorch's.
    public static func randperm(_ n: Int, dtype: DType = .int64, generator: Generator = .default) -> Tensor {
        precondition(n >= 0, "randperm: Trying to create tensor with negative dimension \(n): [\(n)]")
        precondition(dtype != .bool, "randperm: \"randperm_cpu\" not implemented for 'Bool'")
        let out = Tensor(uninitializedShape: [n], dtype: .int64)
        let p = out.mutablePointer(as: Int64.self)
        for i in 0..<n { p[i] = Int64(i) }
        let (seed, start) = generator.reserve(blocks: n)
        var i = n - 1
        while i >= 1 {
            let j = Int(RandomBits.bounded(UInt64(i + 1), seed: seed, index: start &+ UInt64(i)))
            (p[i], p[j]) = (p[j], p[i])
            i -= 1
        }
        return dtype == .int64 ? out : out.convertedRaw(to: dtype)
    }

    /// Uniform values in `[low, high)` with this tensor's shape and (by default) dtype.
    ///
    /// PyTorch parity: `torch.rand_like(x)` / `torch.empty_like(x).uniform_(low, high)`.
    public func uniformLike(
        low: Double = 0, high: Double = 1, dtype: DType? = nil, generator: Generator = .default
    ) -> Tensor {
        .uniform(shape, low: low, high: high, dtype: dtype ?? self.dtype, generator: generator)
    }

    /// Normal values with this tensor's shape and (by default) dtype.
    ///
    /// PyTorch parity: `torch.randn_like(x)` / `torch.empty_like(x).normal_(mean, std)`.
    public func normalLike(
        mean: Double = 0, std: Double = 1, dtype: DType? = nil, generator: Generator = .default
    ) -> Tensor {
        .normal(shape, mean: mean, std: std, dtype: dtype ?? self.dtype, generator: generator)
    }

    /// `shape` after checking it has no negative dimension, with PyTorch's error text.
    private static func checkedShape(_ shape: Shape, op: String) -> Shape {
        for d in shape {
            precondition(d >= 0, "\(op): Trying to create tensor with negative dimension \(d): \(shape)")
        }
        return shape
    }
}
