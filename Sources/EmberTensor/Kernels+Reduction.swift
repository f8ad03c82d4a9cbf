import EmberStorage
import RealModule

// Raw reductions. Every reduction goes through `ReductionPlan`, which visits each output
// element's group of input elements in place (no copy) whenever the reduced dimensions collapse
// to one strided run, which covers the last axis, any single axis, and any set of adjacent axes
// of a contiguous tensor, and all of a contiguous tensor. Otherwise it makes one permuted copy.

extension Kernels {
    /// Normalises and de-duplicates reduction axes; empty means all axes. A rank-0 tensor accepts
    /// axis 0 or -1 (as PyTorch) and has nothing to reduce, so it gives `[]`.
    ///
    /// PyTorch parity: "Dimension out of range (expected to be in range of [-2, 1], but got 2)" and
    /// "dim 1 appears multiple times in the list of dims".
    package static func reductionAxes(_ axes: [Int], rank: Int, op: String) -> [Int] {
        if axes.isEmpty { return Array(0..<rank) }
        var mask = 0
        for a in axes {
            let n = normalizeAxis(a, rank: rank, op: op)
            precondition(mask & (1 << n) == 0,
                         "\(op): dim \(n) appears multiple times in the list of dims (axes \(axes), rank \(rank))")
            mask |= 1 << n
        }
        if rank == 0 { return [] }
        return (0..<rank).filter { mask & (1 << $0) != 0 }
    }

    /// Shape after reducing `axes` (kept as 1 when `keepDim`).
    package static func reducedShape(_ shape: Shape, axes: [Int], keepDim: Bool) -> Shape {
        var out = Shape()
        for i in 0..<shape.count {
            if axes.contains(i) { if keepDim { out.append(1) } } else { out.append(shape[i]) }
        }
        return out
    }

    /// Reduces `x` over `axes` by folding each group of elements with `reduce`, which receives a
    /// pointer to the group's elements laid out contiguously and the group size.
    ///
    /// No copy is made when each group is already one contiguous run (the last axis of a
    /// contiguous tensor, or all of it); otherwise the reduced axes are moved innermost in one copy.
    @inline(__always)
    package static func reduce<T: TensorScalar, R: TensorScalar>(
        _ x: Tensor, axes: [Int], keepDim: Bool, op: String, _: T.Type, _: R.Type,
        _ reduce: (UnsafePointer<T>, Int) -> R
    ) -> Tensor {
        let plan = ReductionPlan(x, axes: axes, keepDim: keepDim, op: op, requireUnitStride: true)
        let out = Tensor(uninitializedShape: plan.outShape, dtype: R.dtype)
        let po = out.mutablePointer(as: R.self)
        let px = plan.source.pointer(as: T.self)
        let n = plan.groupSize
        plan.forEachGroup { i, off in po[i] = reduce(px + off, n) }
        return out
    }

    /// Like `reduce`, but the fold reads its group through a stride, so no copy is ever needed
    /// for a single axis.
    @inline(__always)
    package static func reduceStrided<T: TensorScalar, R: TensorScalar>(
        _ x: Tensor, axes: [Int], keepDim: Bool, op: String, _: T.Type, _: R.Type,
        _ reduce: (UnsafePointer<T>, Int, Int) -> R
    ) -> Tensor {
        let plan = ReductionPlan(x, axes: axes, keepDim: keepDim, op: op)
        let out = Tensor(uninitializedShape: plan.outShape, dtype: R.dtype)
        let po = out.mutablePointer(as: R.self)
        let px = plan.source.pointer(as: T.self)
        let n = plan.groupSize, s = plan.groupStride
        plan.forEachGroup { i, off in po[i] = reduce(px + off, n, s) }
        return out
    }
}

/// How to visit the groups of a reduction: for every output element (row-major), the offset of
/// its group's first element in `source` and the stride between the group's elements.
package struct ReductionPlan {
    /// The normalised reduced axes, ascending.
    package let axes: [Int]
    /// The result's shape (reduced axes dropped, or kept as 1 with `keepDim`).
    package let outShape: Shape
    /// Elements per group (1 when nothing is reduced, 0 for an empty reduced dimension).
    package let groupSize: Int
    /// Stride between consecutive group elements in `source` (row-major order over the reduced
    /// axes).
    package let groupStride: Int
    /// The tensor the offsets refer to: the input itself, or a permuted contiguous copy.
    package let source: Tensor
    private let keptShape: Shape
    private let keptStrides: Shape

    /// - Parameter requireUnitStride: make a copy unless each group is one contiguous run.
    package init(_ x: Tensor, axes rawAxes: [Int], keepDim: Bool, op: String, requireUnitStride: Bool = false) {
        let ax = Kernels.reductionAxes(rawAxes, rank: x.rank, op: op)
        axes = ax
        outShape = Kernels.reducedShape(x.shape, axes: ax, keepDim: keepDim)
        var group = 1
        var kShape = Shape(), kStrides = Shape()
        var isReduced = 0
        for a in ax { group *= x.shape[a]; isReduced |= 1 << a }
        for i in 0..<x.rank where isReduced & (1 << i) == 0 { kShape.append(x.shape[i]); kStrides.append(x.strides[i]) }
        groupSize = group
        // Collapse the reduced dimensions, innermost first, while each outer one continues the
        // run of the inner ones. Size-1 dimensions do not matter.
        var runSize = 1, runStride = 1, runs = 0
        for a in ax.reversed() where x.shape[a] != 1 {
            if runs == 0 {
                runSize = x.shape[a]; runStride = x.strides[a]; runs = 1
            } else if runStride * runSize == x.strides[a] {
                runSize *= x.shape[a]
            } else {
                runs += 1
                break
            }
        }
        if runs <= 1 && (!requireUnitStride || runStride == 1 || group <= 1) {
            source = x
            groupStride = runs == 0 ? 1 : runStride
            keptShape = kShape
            keptStrides = kStrides
        } else {
            var perm = (0..<x.rank).filter { isReduced & (1 << $0) == 0 }
            perm += ax
            let copy = x.permutedRaw(perm).contiguousRaw
            source = copy
            groupStride = 1
            keptShape = kShape
            keptStrides = Shape(copy.strides.prefix(kShape.count))
        }
    }

    /// Number of groups (output elements).
    package var outCount: Int { keptShape.elementCount }

    /// Calls `body(outputIndex, groupOffset)` for every group, output indices in row-major order.
    @inline(__always)
    package func forEachGroup(_ body: (_ outIndex: Int, _ offset: Int) -> Void) {
        forEachRun(shape: keptShape, keptStrides) { o0, _, _, linear, n, st0, _, _ in
            var off = o0
            for j in 0..<n {
                body(linear + j, off)
                off += st0
            }
        }
    }

    /// Calls `body(offset, count, stride, outputStart)` for each run of groups whose offsets
    /// advance by `stride` (the innermost kept dimension, after merging).
    @inline(__always)
    package func forEachGroupRun(_ body: (_ offset: Int, _ count: Int, _ stride: Int, _ outStart: Int) -> Void) {
        forEachRun(shape: keptShape, keptStrides) { o0, _, _, linear, n, st0, _, _ in body(o0, n, st0, linear) }
    }
}

// MARK: - Sum, mean, product

extension Kernels {
    /// Sum over `axes` (all when empty). int64 and bool sum to int64; floats use pairwise
    /// summation along a run and blocked accumulation across rows.
    package static func sum(_ x: Tensor, axes: [Int], keepDim: Bool) -> Tensor {
        switch x.dtype {
        case .float32: return floatSum(x, axes: axes, keepDim: keepDim, Float.self)
        case .float64: return floatSum(x, axes: axes, keepDim: keepDim, Double.self)
        case .int64:
            return reduceStrided(x, axes: axes, keepDim: keepDim, op: "sum", Int64.self, Int64.self) { p, n, s in
                var acc: Int64 = 0
                var q = p
                for _ in 0..<n { acc &+= q.pointee; q += s }
                return acc
            }
        case .bool: return sum(x.convertedRaw(to: .int64), axes: axes, keepDim: keepDim)
        }
    }

    /// Mean over `axes` (all when empty): the sum divided by the group size (NaN for an empty
    /// group, as PyTorch). Float dtypes only.
    package static func mean(_ x: Tensor, axes: [Int], keepDim: Bool) -> Tensor {
        precondition(x.dtype.isFloatingPoint,
                     "mean: mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. Got: \(pyTorchTypeName(x.dtype)) (shape \(x.shape))")
        let out = sum(x, axes: axes, keepDim: keepDim)
        let ax = reductionAxes(axes, rank: x.rank, op: "mean")
        var n = 1
        for a in ax { n *= x.shape[a] }
        // `out` is a fresh tensor nobody else holds: divide in place.
        switch out.dtype {
        case .float32: let p = out.mutablePointer(as: Float.self), d = Float(n); for i in 0..<out.count { p[i] /= d }
        default: let p = out.mutablePointer(as: Double.self), d = Double(n); for i in 0..<out.count { p[i] /= d }
        }
        return out
    }

    private static func floatSum<T: TensorFloat>(_ x: Tensor, axes: [Int], keepDim: Bool, _: T.Type) -> Tensor {
        let plan = ReductionPlan(x, axes: axes, keepDim: keepDim, op: "sum")
        let out = Tensor(uninitializedShape: plan.outShape, dtype: T.dtype)
        let po = out.mutablePointer(as: T.self)
        let px = plan.source.pointer(as: T.self)
        let n = plan.groupSize, s = plan.groupStride
        if s == 1 || n <= 1 {
            plan.forEachGroup { i, off in po[i] = pairwiseSum(px + off, n) }
            return out
        }
        plan.forEachGroupRun { off, count, st, outStart in
            if st == 1 && count >= 8 {
                // Reducing over rows with a contiguous row of outputs: add whole rows, which
                // vectorises, with a double-precision accumulator across blocks of rows.
                columnSum(px + off, rows: n, rowStride: s, columns: count, into: po + outStart)
            } else {
                var o = off
                for j in 0..<count { po[outStart + j] = pairwiseSum(px + o, n, stride: s); o += st }
            }
        }
        return out
    }

    /// `out[j] = sum over r of p[r * rowStride + j]`: rows are added in blocks of 32 in `T`
    /// (whole rows at a time, which vectorises), the block sums in double precision; columns go
    /// in tiles of 256 so both accumulators stay in L1.
    private static func columnSum<T: TensorFloat>(
        _ p: UnsafePointer<T>, rows: Int, rowStride: Int, columns: Int, into out: UnsafeMutablePointer<T>
    ) {
        let tile = 256, block = 32
        withUnsafeTemporaryAllocation(of: Double.self, capacity: tile) { accBuffer in
            withUnsafeTemporaryAllocation(of: T.self, capacity: tile) { blockBuffer in
                let acc = accBuffer.baseAddress!, blk = blockBuffer.baseAddress!
                var c0 = 0
                while c0 < columns {
                    let w = Swift.min(tile, columns - c0)
                    for j in 0..<w { acc[j] = 0 }
                    var r = 0
                    while r < rows {
                        let end = Swift.min(r + block, rows)
                        var row = p + r * rowStride + c0
                        for j in 0..<w { blk[j] = row[j] }
                        for _ in (r + 1)..<end {
                            row += rowStride
                            for j in 0..<w { blk[j] += row[j] }
                        }
                        for j in 0..<w { acc[j] += Double(blk[j]) }
                        r = end
                    }
                    for j in 0..<w { out[c0 + j] = T(acc[j]) }
                    c0 += w
                }
            }
        }
    }

    /// Product over `axes` (all when empty); 1 for an empty group. int64 and bool give int64.
    package static func prod(_ x: Tensor, axes: [Int], keepDim: Bool) -> Tensor {
        switch x.dtype {
        case .float32:
            return reduceStrided(x, axes: axes, keepDim: keepDim, op: "prod", Float.self, Float.self) { stridedProduct($0, $1, $2) }
        case .float64:
            return reduceStrided(x, axes: axes, keepDim: keepDim, op: "prod", Double.self, Double.self) { stridedProduct($0, $1, $2) }
        case .int64:
            return reduceStrided(x, axes: axes, keepDim: keepDim, op: "prod", Int64.self, Int64.self) { p, n, s in
                var acc: Int64 = 1
                var q = p
                for _ in 0..<n { acc = acc &* q.pointee; q += s }
                return acc
            }
        case .bool: return prod(x.convertedRaw(to: .int64), axes: axes, keepDim: keepDim)
        }
    }

    /// Gradient of `prod` over `axes`: for every element, the product of the other elements of its
    /// group (exact with zeros: computed from prefix and suffix products, never by division).
    /// `g` has the reduced shape with kept dimensions; the result has `x`'s shape.
    package static func prodBackward(_ g: Tensor, _ x: Tensor, axes: [Int]) -> Tensor {
        switch x.dtype {
        case .float32: return prodBackwardTyped(g, x, axes: axes, Float.self)
        default: return prodBackwardTyped(g, x, axes: axes, Double.self)
        }
    }

    private static func prodBackwardTyped<T: TensorFloat>(_ g: Tensor, _ x: Tensor, axes: [Int], _: T.Type) -> Tensor {
        let ax = reductionAxes(axes, rank: x.rank, op: "prod")
        // Work on a contiguous copy with the reduced axes innermost; write the result through the
        // inverse permutation.
        var isReduced = 0
        for a in ax { isReduced |= 1 << a }
        var perm = (0..<x.rank).filter { isReduced & (1 << $0) == 0 }
        perm += ax
        let xp = x.permutedRaw(perm).contiguousRaw
        let gp = g.contiguousRaw
        var out = Tensor(uninitializedShape: xp.shape, dtype: x.dtype)
        let n = ax.reduce(1) { $0 * x.shape[$1] }
        let groups = gp.count
        let px = xp.pointer(as: T.self), pg = gp.pointer(as: T.self), po = out.mutablePointer(as: T.self)
        for i in 0..<groups {
            let base = i * n
            // po <- exclusive prefix products, then multiply by exclusive suffix products.
            var acc: T = 1
            for k in 0..<n { po[base + k] = acc; acc *= px[base + k] }
            acc = 1
            var k = n - 1
            while k >= 0 { po[base + k] *= acc * pg[i]; acc *= px[base + k]; k -= 1 }
        }
        var inverse = [Int](repeating: 0, count: perm.count)
        for (i, d) in perm.enumerated() { inverse[d] = i }
        out = out.permutedRaw(inverse)
        return out
    }
}

@inline(__always)
private func stridedProduct<T: TensorFloat>(_ p: UnsafePointer<T>, _ n: Int, _ s: Int) -> T {
    var acc: T = 1
    var q = p
    for _ in 0..<n { acc *= q.pointee; q += s }
    return acc
}

// MARK: - Variance, log-sum-exp

extension Kernels {
    /// Variance over `axes`: `sum((x - mean)^2) / max(0, N - correction)`, by two passes (the mean
    /// first) accumulated in double precision. NaN for `N == 0` or `N == correction` with equal
    /// values; float dtypes only.
    /// With `squareRoot`, the standard deviation instead (same single allocation).
    package static func variance(
        _ x: Tensor, axes: [Int], correction: Double, keepDim: Bool, squareRoot: Bool = false, op: String
    ) -> Tensor {
        precondition(x.dtype.isFloatingPoint,
                     "\(op): std and var only support floating point and complex dtypes (got \(x.dtype), shape \(x.shape))")
        if x.dtype == .float32 {
            return reduceStrided(x, axes: axes, keepDim: keepDim, op: op, Float.self, Float.self) {
                let v = stridedVariance($0, $1, $2, correction: correction)
                return Float(squareRoot ? v.squareRoot() : v)
            }
        }
        return reduceStrided(x, axes: axes, keepDim: keepDim, op: op, Double.self, Double.self) {
            let v = stridedVariance($0, $1, $2, correction: correction)
            return squareRoot ? v.squareRoot() : v
        }
    }

    /// `log(sum(exp(x)))` over `axes`, computed as `m + log(sum(exp(x - m)))` with `m` the group
    /// maximum (replaced by 0 when infinite, as PyTorch, so all `-inf` gives `-inf` and any `+inf`
    /// gives `+inf`). An empty group gives `-inf`. Integer input promotes to float32.
    package static func logsumexp(_ x: Tensor, axes: [Int], keepDim: Bool) -> Tensor {
        switch x.dtype {
        case .float32:
            return reduceStrided(x, axes: axes, keepDim: keepDim, op: "logsumexp", Float.self, Float.self) { stridedLogSumExp($0, $1, $2) }
        case .float64:
            return reduceStrided(x, axes: axes, keepDim: keepDim, op: "logsumexp", Double.self, Double.self) { stridedLogSumExp($0, $1, $2) }
        case .int64, .bool: return logsumexp(x.convertedRaw(to: .float32), axes: axes, keepDim: keepDim)
        }
    }
}

@inline(__always)
private func stridedVariance<T: TensorFloat>(_ p: UnsafePointer<T>, _ n: Int, _ s: Int, correction: Double) -> Double {
    var sum = 0.0
    var q = p
    for _ in 0..<n { sum += Double(q.pointee); q += s }
    let mean = sum / Double(n)
    // Corrected two-pass: the second term removes the rounding error left in `mean`.
    var m2 = 0.0, c = 0.0
    q = p
    for _ in 0..<n {
        let d = Double(q.pointee) - mean
        m2 += d * d
        c += d
        q += s
    }
    if n > 0 { m2 = Swift.max(0, m2 - c * c / Double(n)) }
    let dof = Swift.max(0, Double(n) - correction)
    return m2 / dof
}

@inline(__always)
private func stridedLogSumExp<T: TensorFloat>(_ p: UnsafePointer<T>, _ n: Int, _ s: Int) -> T {
    if n == 0 { return -.infinity }
    var m = extremumValue(p, n, s, isMax: true)
    if m.isInfinite { m = 0 }
    var acc = 0.0
    if T.self == Float.self {
        let mv = Float8(repeating: Float(m))
        acc = Kernels.sumFloat8(UnsafeRawPointer(p).assumingMemoryBound(to: Float.self), stride: s, count: n) {
            expVector($0 - mv)
        }
    } else {
        var q = p
        for _ in 0..<n { acc += Double(T.exp(q.pointee - m)); q += s }
    }
    return T(Double.log(acc)) + m
}

// MARK: - Summation helpers

/// Pairwise (cascade) summation: error grows like O(log n) rather than O(n). Blocks of up to 256
/// elements are summed into 32 interleaved partial sums (four 8-lane vector accumulators), which
/// are then added as a fixed tree; blocks combine pairwise. The order depends only on `n`.
@inline(__always)
package func pairwiseSum<T: BinaryFloatingPoint>(_ p: UnsafePointer<T>, _ n: Int) -> T {
    if n <= 256 {
        if T.self == Float.self {
            return T(vectorBlockSum(UnsafeRawPointer(p).assumingMemoryBound(to: Float.self), n))
        }
        if T.self == Double.self {
            return T(vectorBlockSum(UnsafeRawPointer(p).assumingMemoryBound(to: Double.self), n))
        }
        var s0: T = 0, s1: T = 0, s2: T = 0, s3: T = 0
        var i = 0
        while i + 4 <= n { s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3]; i += 4 }
        while i < n { s0 += p[i]; i += 1 }
        return (s0 + s1) + (s2 + s3)
    }
    let half = (n / 2 + 31) & ~31
    return pairwiseSum(p, half) + pairwiseSum(p + half, n - half)
}

/// One block of ``pairwiseSum(_:_:)``: 32 partial sums in four 8-lane accumulators (vectorised on
/// any SIMD width), a fixed tree over them, then the last `n % 8` elements in order.
@inline(__always)
private func vectorBlockSum<S: SIMDScalar & BinaryFloatingPoint>(_ p: UnsafePointer<S>, _ n: Int) -> S {
    var a0 = SIMD8<S>(), a1 = SIMD8<S>(), a2 = SIMD8<S>(), a3 = SIMD8<S>()
    let raw = UnsafeRawPointer(p), size = MemoryLayout<S>.stride
    var i = 0
    while i + 32 <= n {
        a0 += raw.loadUnaligned(fromByteOffset: i * size, as: SIMD8<S>.self)
        a1 += raw.loadUnaligned(fromByteOffset: (i + 8) * size, as: SIMD8<S>.self)
        a2 += raw.loadUnaligned(fromByteOffset: (i + 16) * size, as: SIMD8<S>.self)
        a3 += raw.loadUnaligned(fromByteOffset: (i + 24) * size, as: SIMD8<S>.self)
        i += 32
    }
    while i + 8 <= n {
        a0 += raw.loadUnaligned(fromByteOffset: i * size, as: SIMD8<S>.self)
        i += 8
    }
    let v = (a0 + a1) + (a2 + a3)
    var s = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]))
    while i < n {
        s += p[i]
        i += 1
    }
    return s
}

/// Pairwise summation of `n` elements `stride` apart.
@inline(__always)
package func pairwiseSum<T: BinaryFloatingPoint>(_ p: UnsafePointer<T>, _ n: Int, stride: Int) -> T {
    if stride == 1 { return pairwiseSum(p, n) }
    if n <= 32 {
        var s0: T = 0, s1: T = 0
        var i = 0
        while i + 2 <= n { s0 += p[i * stride]; s1 += p[(i + 1) * stride]; i += 2 }
        if i < n { s0 += p[i * stride] }
        return s0 + s1
    }
    let half = n / 2
    return pairwiseSum(p, half, stride: stride) + pairwiseSum(p + half * stride, n - half, stride: stride)
}

// MARK: - Backward helpers for variance and log-sum-exp

extension Kernels {
    /// Gradient of `variance` over `axes`: `2 / (N - correction) * g * (x - mean)`. `g` has the
    /// kept-dims shape. With `fullReduction` (PyTorch's `dim=None`) and `N - correction <= 0`,
    /// PyTorch's special case: NaN where `x == mean`, else infinity, times `g`.
    package static func varianceBackward(_ g: Tensor, _ x: Tensor, axes: [Int], correction: Double, fullReduction: Bool) -> Tensor {
        let ax = reductionAxes(axes, rank: x.rank, op: "var_backward")
        let n = ax.reduce(1) { $0 * x.shape[$1] }
        let dof = Double(n) - correction
        let m = mean(x, axes: ax, keepDim: true)
        if fullReduction && dof <= 0 {
            return floatTernary(x, m, g, op: "var_backward",
                                f32: { x, m, g in g * (x == m ? .nan : .infinity) },
                                f64: { x, m, g in g * (x == m ? .nan : .infinity) })
        }
        let c = 2 / dof, c32 = Float(c)
        return floatTernary(x, m, g, op: "var_backward", f32: { x, m, g in c32 * g * (x - m) },
                            f64: { x, m, g in c * g * (x - m) })
    }

    /// The gradient of `variance` given that of `std = sqrt(variance)`: `g / (2 std)`, and 0
    /// where `std == 0` (as PyTorch). Both have the kept-dims shape.
    package static func stdToVarianceGradient(_ g: Tensor, _ std: Tensor) -> Tensor {
        floatBinary(g, std, op: "std_backward", f32: { g, s in s == 0 ? 0 : g / (2 * s) },
                    f64: { g, s in s == 0 ? 0 : g / (2 * s) })
    }

    /// Gradient of `logsumexp`: `g * exp(x - result)`, with `g` and `result` in the kept-dims shape.
    package static func logsumexpBackward(_ g: Tensor, _ x: Tensor, _ result: Tensor) -> Tensor {
        floatTernary(x, result, g, op: "logsumexp_backward", f32: { x, r, g in g * Float.exp(x - r) },
                     f64: { x, r, g in g * Double.exp(x - r) })
    }
}
