import EmberAutograd
import EmberTensor
import EmberStorage

/// Element-wise inverted dropout in one pass: draws the keep decisions, multiplies, and (only
/// when a gradient will be needed) keeps the multipliers for backward. The composed form
/// (`bernoulli`, `scale`, `mul`) cost three kernels and two temporaries per call.
///
/// Random layout: element `i` uses 32-bit word `i % 4` of Philox block `i / 4` of the draw and is
/// kept when that word is below `round(keep * 2^32)`, so a draw of `n` elements advances the
/// generator by `ceil(n / 4)` blocks. Like every Ember draw it depends only on the generator's
/// seed and offset (not on the thread count), and differs from PyTorch's stream.
enum DropoutKernel {
    /// `x * m` element-wise with `m = 1 / (1 - p)` (kept) or `0` (dropped), for a float input and
    /// `0 < p < 1`. Returns the output and, when `keepMultipliers`, the multipliers `m` (same shape
    /// and dtype) for the backward pass.
    static func apply(_ input: Tensor, p: Double, generator: Generator, keepMultipliers: Bool) -> (out: Tensor, multipliers: Tensor?) {
        switch input.dtype {
        case .float32: typed(Float.self, input, p, 1 / Float(1 - p), generator, keepMultipliers)
        default: typed(Double.self, input, p, 1 / (1 - p), generator, keepMultipliers)
        }
    }

    private static func typed<T: TensorFloat>(
        _: T.Type, _ input: Tensor, _ p: Double, _ scale: T, _ generator: Generator, _ keepMultipliers: Bool
    ) -> (out: Tensor, multipliers: Tensor?) {
        let x = input.contiguousRaw
        let n = x.count
        let out = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        let multipliers = keepMultipliers ? Tensor(uninitializedShape: x.shape, dtype: x.dtype) : nil
        let px = x.pointer(as: T.self), po = out.mutablePointer(as: T.self)
        let pm = multipliers?.mutablePointer(as: T.self)
        // keep = 1 - p in (0, 1): keep element i when its word is below round(keep * 2^32). When
        // that rounds to 2^32 (p < 2^-33) every element is kept.
        let threshold = UInt64(((1 - p) * 0x1p32).rounded())
        let keepAll = threshold > UInt64(UInt32.max)
        let t = UInt32(truncatingIfNeeded: threshold)
        let zero = T(0)
        let rangeBlocks = 256
        // Each range writes only its own elements, so parallel chunks of blocks are disjoint.
        generator.forEachBlockRange((n + 3) / 4, maxRange: rangeBlocks) { seed, first, range in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 4 * rangeBlocks) { words in
                let w = words.baseAddress!
                Philox.fill(seed: seed, index: first, blocks: range.count, into: w)
                let i0 = 4 * range.lowerBound, count = Swift.min(n, 4 * range.upperBound) - i0
                let x = px + i0, o = po + i0
                var first = 0
                if T.self == Float.self {
                    first = vectorApply(words: w, count: count, threshold: t, keepAll: keepAll, scale: Float(scale.doubleValue),
                                        x: UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
                                        out: UnsafeMutableRawPointer(o).assumingMemoryBound(to: Float.self),
                                        multipliers: pm.map { UnsafeMutableRawPointer($0 + i0).assumingMemoryBound(to: Float.self) })
                }
                if let pm {
                    let m = pm + i0
                    for i in first..<count {
                        let mi = keepAll || w[i] < t ? scale : zero
                        o[i] = x[i] * mi
                        m[i] = mi
                    }
                } else {
                    for i in first..<count { o[i] = x[i] * (keepAll || w[i] < t ? scale : zero) }
                }
            }
        }
        return (out, multipliers)
    }

    /// The float32 element loop eight at a time (the same comparisons and products as the scalar
    /// loop); returns how many elements it handled (a multiple of 8).
    @inline(__always)
    private static func vectorApply(
        words: UnsafePointer<UInt32>, count: Int, threshold: UInt32, keepAll: Bool, scale: Float,
        x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, multipliers: UnsafeMutablePointer<Float>?
    ) -> Int {
        typealias F8 = SIMD8<Float>
        let vector = count - count % 8
        let t = SIMD8<UInt32>(repeating: threshold), kept = F8(repeating: scale), dropped = F8(repeating: 0)
        var i = 0
        while i < vector {
            let w = UnsafeRawPointer(words + i).loadUnaligned(as: SIMD8<UInt32>.self)
            let m = keepAll ? kept : dropped.replacing(with: kept, where: w .< t)
            let y = UnsafeRawPointer(x + i).loadUnaligned(as: F8.self) * m
            UnsafeMutableRawPointer(out + i).storeBytes(of: y, as: F8.self)
            if let multipliers { UnsafeMutableRawPointer(multipliers + i).storeBytes(of: m, as: F8.self) }
            i += 8
        }
        return vector
    }

    /// `g * m` for the saved multipliers `m`.
    static func backward(_ g: Tensor, multipliers m: Tensor) -> Tensor {
        guard g.dtype == m.dtype, g.shape == m.shape, g.isContiguous else { return Kernels.mul(g, m) }
        let out = Tensor(uninitializedShape: g.shape, dtype: g.dtype)
        let n = g.count
        switch g.dtype {
        case .float32:
            let pg = g.pointer(as: Float.self), pm = m.pointer(as: Float.self), po = out.mutablePointer(as: Float.self)
            Kernels.forEachChunk(count: n) { start, count in
                for i in start..<(start + count) { po[i] = pg[i] * pm[i] }
            }
        default:
            let pg = g.pointer(as: Double.self), pm = m.pointer(as: Double.self), po = out.mutablePointer(as: Double.self)
            for i in 0..<n { po[i] = pg[i] * pm[i] }
        }
        return out
    }
}
