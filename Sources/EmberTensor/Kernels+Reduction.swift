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

// MARK: - Max, min, arg-max, arg-min

extension Kernels {
    /// The largest (`isMax`) or smallest element of each group over `axes`, NaN propagating.
    /// Stops with PyTorch's errors for empty input or an empty reduced dimension.
    package static func extremum(_ x: Tensor, axes: [Int], keepDim: Bool, isMax: Bool, op: String) -> Tensor {
        checkNonEmptyReduction(x, axes: axes, op: op)
        switch x.dtype {
        case .float32: return extremumTyped(x, axes: axes, keepDim: keepDim, isMax: isMax, op: op, Float.self)
        case .float64: return extremumTyped(x, axes: axes, keepDim: keepDim, isMax: isMax, op: op, Double.self)
        case .int64: return extremumTyped(x, axes: axes, keepDim: keepDim, isMax: isMax, op: op, Int64.self)
        case .bool:
            return reduceStrided(x, axes: axes, keepDim: keepDim, op: op, Bool.self, Bool.self) { p, n, s in
                var q = p
                for _ in 0..<n {
                    if q.pointee == isMax { return isMax }
                    q += s
                }
                return !isMax
            }
        }
    }

    private static func extremumTyped<T: TensorNumeric>(
        _ x: Tensor, axes: [Int], keepDim: Bool, isMax: Bool, op: String, _: T.Type
    ) -> Tensor {
        if isMax {
            return reduceStrided(x, axes: axes, keepDim: keepDim, op: op, T.self, T.self) { extremumValue($0, $1, $2, isMax: true) }
        }
        return reduceStrided(x, axes: axes, keepDim: keepDim, op: op, T.self, T.self) { extremumValue($0, $1, $2, isMax: false) }
    }

    /// The extreme value along `axis` and its index (first occurrence; the first NaN wins).
    /// PyTorch parity: `torch.max(x, dim, keepdim)` / `torch.min`.
    package static func extremumWithIndex(
        _ x: Tensor, axis: Int, keepDim: Bool, isMax: Bool, op: String
    ) -> (values: Tensor, indices: Tensor) {
        let a = normalizeAxis(axis, rank: x.rank, op: op)
        checkNonEmptyReduction(x, axes: [a], op: op)
        switch x.dtype {
        case .float32: return extremumWithIndexTyped(x, axis: a, keepDim: keepDim, isMax: isMax, op: op, Float.self)
        case .float64: return extremumWithIndexTyped(x, axis: a, keepDim: keepDim, isMax: isMax, op: op, Double.self)
        case .int64: return extremumWithIndexTyped(x, axis: a, keepDim: keepDim, isMax: isMax, op: op, Int64.self)
        case .bool:
            let (v, i) = extremumWithIndex(x.convertedRaw(to: .int64), axis: a, keepDim: keepDim, isMax: isMax, op: op)
            return (v.convertedRaw(to: .bool), i)
        }
    }

    private static func extremumWithIndexTyped<T: TensorNumeric>(
        _ x: Tensor, axis: Int, keepDim: Bool, isMax: Bool, op: String, _: T.Type
    ) -> (values: Tensor, indices: Tensor) {
        let plan = ReductionPlan(x, axes: [axis], keepDim: keepDim, op: op)
        let values = Tensor(uninitializedShape: plan.outShape, dtype: T.dtype)
        let indices = Tensor(uninitializedShape: plan.outShape, dtype: .int64)
        let pv = values.mutablePointer(as: T.self), pi = indices.mutablePointer(as: Int64.self)
        let px = plan.source.pointer(as: T.self)
        let n = plan.groupSize, s = plan.groupStride
        if T.self == Float.self && s == 1 && n >= 16 {
            // Contiguous float32 groups: the value 8 lanes at a time, then its first position.
            plan.forEachGroup { i, off in
                let v = extremumValue(px + off, n, 1, isMax: isMax)
                var k = 0
                if v != v { while px[off + k] == px[off + k] { k += 1 } } else { while px[off + k] != v { k += 1 } }
                pv[i] = v
                pi[i] = Int64(k)
            }
        } else if isMax {
            plan.forEachGroup { i, off in let r = extremumFold(px + off, n, s, isMax: true); pv[i] = r.0; pi[i] = Int64(r.1) }
        } else {
            plan.forEachGroup { i, off in let r = extremumFold(px + off, n, s, isMax: false); pv[i] = r.0; pi[i] = Int64(r.1) }
        }
        return (values, indices)
    }

    /// Index of the extreme element along `axis`, or in the flattened tensor when `axis` is nil
    /// (then `keepDim` keeps every dimension as 1). int64 result; first occurrence; NaN counts as
    /// the extreme. PyTorch parity: `torch.argmax` / `torch.argmin`.
    package static func argExtremum(_ x: Tensor, axis: Int?, keepDim: Bool, isMax: Bool, op: String) -> Tensor {
        precondition(x.dtype != .bool, "\(op): \"\(op)_cpu\" not implemented for 'Bool' (shape \(x.shape))")
        if let axis { return extremumWithIndex(x, axis: axis, keepDim: keepDim, isMax: isMax, op: op).indices }
        precondition(x.count > 0,
                     "\(op): \(op)(): Expected reduction dim to be specified for input.numel() == 0. (shape \(x.shape))")
        let flat = x.reshapedRaw([x.count])
        let idx = extremumWithIndex(flat, axis: 0, keepDim: false, isMax: isMax, op: op).indices
        return keepDim ? idx.reshapedRaw(Shape(repeating: 1, count: x.rank)) : idx
    }

    /// PyTorch's errors for max/min-like reductions of nothing.
    package static func checkNonEmptyReduction(_ x: Tensor, axes: [Int], op: String) {
        if axes.isEmpty {
            precondition(x.count > 0,
                         "\(op): \(op)(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim with the 'dim' argument. (shape \(x.shape))")
            return
        }
        for a in reductionAxes(axes, rank: x.rank, op: op) {
            precondition(x.shape[a] != 0,
                         "\(op): \(op)(): Expected reduction dim \(a) to have non-zero size. (shape \(x.shape))")
        }
    }

    /// Gradient of a full max/min reduction: `g` shared evenly among the elements equal to
    /// `result` (among the NaNs when `result` is NaN). PyTorch's `evenly_distribute_backward`.
    package static func evenlyDistribute(_ g: Tensor, _ x: Tensor, _ result: Tensor) -> Tensor {
        switch x.dtype {
        case .float32: return evenlyDistributeTyped(g, x, result, Float.self)
        default: return evenlyDistributeTyped(g, x, result, Double.self)
        }
    }

    private static func evenlyDistributeTyped<T: TensorFloat>(_ g: Tensor, _ x: Tensor, _ result: Tensor, _: T.Type) -> Tensor {
        let r = result.contiguousRaw.pointer(as: T.self).pointee
        let gv = g.contiguousRaw.pointer(as: T.self).pointee
        let hit: (T) -> Bool = r.isNaN ? { $0.isNaN } : { $0 == r }
        let xc = x.contiguousRaw
        let px = xc.pointer(as: T.self)
        var count = 0
        for i in 0..<xc.count where hit(px[i]) { count += 1 }
        let share = gv / T(count)
        return map(xc, T.self, T.self) { hit($0) ? share : 0 }
    }

    /// Gradient of `amax`/`amin` over `axes`: `(g / count) * mask` with `mask = (x == result)`
    /// and `count` the number of hits per group. `g` and `result` have the kept-dims shape.
    package static func distributeAmongTies(_ g: Tensor, _ x: Tensor, _ result: Tensor, axes: [Int]) -> Tensor {
        let mask = floatBinary(x, result, op: "amax_backward", f32: { $0 == $1 ? 1 : 0 }, f64: { $0 == $1 ? 1 : 0 })
        let count = sum(mask, axes: axes, keepDim: true)
        return floatTernary(mask, g, count, op: "amax_backward", f32: { $0 * ($1 / $2) }, f64: { $0 * ($1 / $2) })
    }

    /// Writes `g[i]` at index `indices[i]` along `axis` of a zero tensor of `shape` (the backward
    /// of a value-selecting reduction such as `max(axis)`). `g` and `indices` have the kept-dims
    /// shape.
    package static func scatterAlongAxis(_ g: Tensor, indices: Tensor, axis: Int, shape: Shape) -> Tensor {
        let out = Tensor(zeroedShape: shape, dtype: g.dtype)
        let gc = g.contiguousRaw, ic = indices.contiguousRaw
        let n = shape[axis]
        var inner = 1
        for d in (axis + 1)..<shape.count { inner *= shape[d] }
        let pi = ic.pointer(as: Int64.self)
        func run<T: TensorScalar>(_: T.Type) {
            let pg = gc.pointer(as: T.self), po = out.mutablePointer(as: T.self)
            for i in 0..<gc.count {
                let base = (i / inner) * n * inner + i % inner
                po[base + Int(pi[i]) * inner] = pg[i]
            }
        }
        if g.dtype == .float32 { run(Float.self) } else { run(Double.self) }
        return out
    }
}

/// The extreme element of a strided group and its index; the first NaN wins and ends the scan.
@inline(__always)
package func extremumFold<T: TensorNumeric>(_ p: UnsafePointer<T>, _ n: Int, _ s: Int, isMax: Bool) -> (T, Int) {
    var best = p.pointee, index = 0
    if best != best { return (best, 0) }
    var q = p + s
    var i = 1
    while i < n {
        let v = q.pointee
        if v != v { return (v, i) }
        if isMax ? v > best : v < best { best = v; index = i }
        q += s
        i += 1
    }
    return (best, index)
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

/// The extreme value of a strided group, NaN propagating (the first NaN is returned). Contiguous
/// float32 groups are scanned 8 lanes at a time.
@inline(__always)
package func extremumValue<T: TensorNumeric>(_ p: UnsafePointer<T>, _ n: Int, _ s: Int, isMax: Bool) -> T {
    if T.self == Float.self && s == 1 && n >= 16 {
        let r = extremumFloat8(UnsafeRawPointer(p).assumingMemoryBound(to: Float.self), n, isMax: isMax)
        return unsafeBitCast(r, to: T.self)
    }
    return extremumFold(p, n, s, isMax: isMax).0
}

/// Vectorised max/min of `n >= 8` contiguous floats; NaN propagates (the first NaN is returned).
@inline(__always)
private func extremumFloat8(_ p: UnsafePointer<Float>, _ n: Int, isMax: Bool) -> Float {
    let raw = UnsafeRawPointer(p)
    var m = raw.loadUnaligned(as: Float8.self)
    var nan = m .!= m
    var i = 8
    while i + 8 <= n {
        let v = raw.loadUnaligned(fromByteOffset: i * 4, as: Float8.self)
        if isMax { m.replace(with: v, where: v .> m) } else { m.replace(with: v, where: v .< m) }
        nan = nan .| (v .!= v)
        i += 8
    }
    var best = m[0]
    for l in 1..<8 where isMax ? m[l] > best : m[l] < best { best = m[l] }
    var tailNaN = false
    while i < n {
        let v = p[i]
        if v != v { tailNaN = true } else if isMax ? v > best : v < best { best = v }
        i += 1
    }
    if any(nan) || tailNaN {
        for k in 0..<n where p[k] != p[k] { return p[k] }
    }
    return best
}

// MARK: - Softmax

extension Kernels {
    /// Calls `body(xOffset, xStride, outOffset, outStride, n)` for every line of `x` along `axis`,
    /// with the output a fresh contiguous tensor of `x`'s shape.
    @inline(__always)
    private static func forEachLine(
        _ x: Tensor, axis: Int, op: String, _ body: (_ xOff: Int, _ xStride: Int, _ outOff: Int, _ outStride: Int, _ n: Int) -> Void
    ) {
        let plan = ReductionPlan(x, axes: [axis], keepDim: true, op: op)
        let a = plan.axes.first
        let n = plan.groupSize, s = plan.groupStride
        var inner = 1
        if let a { for d in (a + 1)..<x.rank { inner *= x.shape[d] } }
        plan.forEachGroup { i, off in body(off, s, (i / inner) * n * inner + i % inner, inner, n) }
    }

    /// Elements after `axis` (the stride of `axis` in a contiguous tensor) and the size of `axis`.
    private static func lineGeometry(_ shape: Shape, axis: Int) -> (n: Int, inner: Int) {
        if shape.count == 0 { return (1, 1) }
        var inner = 1
        for d in (axis + 1)..<shape.count { inner *= shape[d] }
        return (shape[axis], inner)
    }

    /// `exp(x - max) / sum(exp(x - max))` along `axis`. A NaN in a line, or a line of `-inf` only,
    /// gives NaN, as PyTorch's CPU kernel. Float dtypes only, as PyTorch.
    package static func softmax(_ x: Tensor, axis: Int) -> Tensor {
        requireFloat(x, op: "softmax", kernel: "softmax_lastdim_kernel_impl")
        if x.dtype == .float32 { return softmaxTyped(x, axis: axis, log: false, Float.self) }
        return softmaxTyped(x, axis: axis, log: false, Double.self)
    }

    /// `(x - max) - log(sum(exp(x - max)))` along `axis` (in that order, so large values keep
    /// their precision). Float dtypes only, as PyTorch.
    package static func logSoftmax(_ x: Tensor, axis: Int) -> Tensor {
        requireFloat(x, op: "logSoftmax", kernel: "log_softmax_lastdim_kernel_impl")
        if x.dtype == .float32 { return softmaxTyped(x, axis: axis, log: true, Float.self) }
        return softmaxTyped(x, axis: axis, log: true, Double.self)
    }

    private static func softmaxTyped<T: TensorFloat>(_ x: Tensor, axis: Int, log: Bool, _: T.Type) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape, dtype: T.dtype)
        let (n, inner) = lineGeometry(x.shape, axis: axis)
        if inner > 1 && n > 1 {
            // Not the last axis: work row by row over blocks of the inner elements (contiguous,
            // vectorisable) instead of striding through memory one line at a time.
            let xc = x.contiguousRaw
            let px = xc.pointer(as: T.self), po = out.mutablePointer(as: T.self)
            let outer = n * inner == 0 ? 0 : x.count / (n * inner)
            for o in 0..<outer {
                softmaxColumns(px + o * n * inner, po + o * n * inner, n: n, inner: inner, log: log)
            }
            return out
        }
        let px = x.pointer(as: T.self), po = out.mutablePointer(as: T.self)
        if x.isContiguous && n > 0 && x.count >= 65_536 {
            // Contiguous rows along the last axis: independent, so whole rows go to threads.
            let rows = x.count / n
            forEachChunk(count: rows, minimumPerThread: Swift.max(1, 32_768 / n)) { start, count in
                for r in start..<(start + count) { softmaxLine(px + r * n, 1, po + r * n, 1, n: n, log: log) }
            }
            return out
        }
        forEachLine(x, axis: axis, op: log ? "logSoftmax" : "softmax") { xo, xs, oo, os, n in
            if n == 0 { return }
            softmaxLine(px + xo, xs, po + oo, os, n: n, log: log)
        }
        return out
    }

    /// Softmax (or log-softmax) of one line of `n` elements.
    @inline(__always)
    private static func softmaxLine<T: TensorFloat>(
        _ src: UnsafePointer<T>, _ xs: Int, _ dst: UnsafeMutablePointer<T>, _ os: Int, n: Int, log: Bool
    ) {
        let m = extremumValue(src, n, xs, isMax: true)
        if T.self == Float.self {
            let sf = UnsafeRawPointer(src).assumingMemoryBound(to: Float.self)
            let df = UnsafeMutableRawPointer(dst).assumingMemoryBound(to: Float.self)
            let mv = Float8(repeating: Float(m))
            if xs == 1 && os == 1 && ActivationKernels.isAvailable {
                // The same values through the AVX2 exp row (bitwise `expVector`): dst = x - m, then
                // e^dst in place; the sums and scalings below read it as the lanes would have.
                let mf = Float(m)
                for k in 0..<n { df[k] = sf[k] - mf }
                ActivationKernels.run(.exp, df, into: df, count: n)
                if log {
                    let logSum = Float(Double.log(sumFloat8(df, stride: 1, count: n) { $0 }))
                    for k in 0..<n { df[k] = (sf[k] - mf) - logSum }
                } else {
                    let inv = 1 / pairwiseSum(UnsafePointer(df), n)
                    for k in 0..<n { df[k] *= inv }
                }
                return
            }
            if log {
                let logSum = Float(Double.log(sumFloat8(sf, stride: xs, count: n) { expVector($0 - mv) }))
                let shift = Float8(repeating: logSum)
                applyFloat8(sf, stride: xs, count: n, into: df, dstStride: os) { ($0 - mv) - shift }
            } else {
                applyFloat8(sf, stride: xs, count: n, into: df, dstStride: os) { expVector($0 - mv) }
                var sum: Float = 0
                if os == 1 { sum = pairwiseSum(UnsafePointer(df), n) } else { for k in 0..<n { sum += df[k * os] } }
                let inv = 1 / sum
                for k in 0..<n { df[k * os] *= inv }
            }
            return
        }
        if log {
            var sum: T = 0
            for k in 0..<n { sum += T.exp(src[k * xs] - m) }
            let logSum = T.log(sum)
            for k in 0..<n { dst[k * os] = (src[k * xs] - m) - logSum }
        } else {
            var sum: T = 0
            for k in 0..<n { let e = T.exp(src[k * xs] - m); dst[k * os] = e; sum += e }
            let inv = 1 / sum
            for k in 0..<n { dst[k * os] *= inv }
        }
    }

    /// Softmax over the rows of an `n x inner` contiguous block (normalising each column), in
    /// tiles of 256 columns.
    private static func softmaxColumns<T: TensorFloat>(
        _ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, n: Int, inner: Int, log: Bool
    ) {
        let tile = 256
        withUnsafeTemporaryAllocation(of: T.self, capacity: 2 * tile) { buf in
            let m = buf.baseAddress!, sums = m + tile
            var j0 = 0
            while j0 < inner {
                let w = Swift.min(tile, inner - j0)
                let s0 = src + j0, d0 = dst + j0
                for j in 0..<w { m[j] = s0[j]; sums[j] = 0 }
                for k in 1..<n {
                    let row = s0 + k * inner
                    for j in 0..<w {
                        let v = row[j]
                        if v > m[j] || v != v { m[j] = v }
                    }
                }
                for k in 0..<n {
                    let row = s0 + k * inner, drow = d0 + k * inner
                    if T.self == Float.self {
                        applyFloat8(UnsafeRawPointer(row).assumingMemoryBound(to: Float.self),
                                    UnsafeRawPointer(m).assumingMemoryBound(to: Float.self), count: w,
                                    into: UnsafeMutableRawPointer(drow).assumingMemoryBound(to: Float.self)) { expVector($0 - $1) }
                    } else {
                        for j in 0..<w { drow[j] = T.exp(row[j] - m[j]) }
                    }
                    for j in 0..<w { sums[j] += drow[j] }
                }
                if log {
                    for j in 0..<w { sums[j] = T.log(sums[j]) }
                    for k in 0..<n {
                        let row = s0 + k * inner, drow = d0 + k * inner
                        for j in 0..<w { drow[j] = (row[j] - m[j]) - sums[j] }
                    }
                } else {
                    for j in 0..<w { sums[j] = 1 / sums[j] }
                    for k in 0..<n {
                        let drow = d0 + k * inner
                        for j in 0..<w { drow[j] *= sums[j] }
                    }
                }
                j0 += w
            }
        }
    }

    /// Backward of `softmax` given its output `y`: `y * (g - sum(g * y))` along `axis`.
    package static func softmaxBackward(_ g: Tensor, _ y: Tensor, axis: Int) -> Tensor {
        if y.dtype == .float32 { return softmaxBackwardTyped(g, y, axis: axis, log: false, Float.self) }
        return softmaxBackwardTyped(g, y, axis: axis, log: false, Double.self)
    }

    /// Backward of `logSoftmax` given its output `y`: `g - exp(y) * sum(g)` along `axis`.
    package static func logSoftmaxBackward(_ g: Tensor, _ y: Tensor, axis: Int) -> Tensor {
        if y.dtype == .float32 { return softmaxBackwardTyped(g, y, axis: axis, log: true, Float.self) }
        return softmaxBackwardTyped(g, y, axis: axis, log: true, Double.self)
    }

    private static func softmaxBackwardTyped<T: TensorFloat>(_ g: Tensor, _ y: Tensor, axis: Int, log: Bool, _: T.Type) -> Tensor {
        // y is the forward output (contiguous); make g contiguous too so g, y and the result share
        // offsets. Each line is `n` elements `inner` apart; inner axes go a tile of lines at a time.
        let gc = g.contiguousRaw, yc = y.contiguousRaw
        let out = Tensor(uninitializedShape: y.shape, dtype: T.dtype)
        let pg = gc.pointer(as: T.self), py = yc.pointer(as: T.self), po = out.mutablePointer(as: T.self)
        let (n, inner) = lineGeometry(y.shape, axis: axis)
        if n * inner == 0 { return out }
        let outer = y.count / (n * inner)
        if inner == 1 {
            // The last axis: each line is contiguous.
            for o in 0..<outer {
                let gl = pg + o * n, yl = py + o * n, ol = po + o * n
                var a0: T = 0, a1: T = 0, a2: T = 0, a3: T = 0
                var k = 0
                if log {
                    while k + 4 <= n { a0 += gl[k]; a1 += gl[k + 1]; a2 += gl[k + 2]; a3 += gl[k + 3]; k += 4 }
                    while k < n { a0 += gl[k]; k += 1 }
                } else {
                    while k + 4 <= n {
                        a0 += gl[k] * yl[k]; a1 += gl[k + 1] * yl[k + 1]; a2 += gl[k + 2] * yl[k + 2]; a3 += gl[k + 3] * yl[k + 3]
                        k += 4
                    }
                    while k < n { a0 += gl[k] * yl[k]; k += 1 }
                }
                let acc = (a0 + a1) + (a2 + a3)
                if !log {
                    for k in 0..<n { ol[k] = yl[k] * (gl[k] - acc) }
                } else if T.self == Float.self {
                    let sumV = Float8(repeating: Float(acc))
                    applyFloat8(UnsafeRawPointer(gl).assumingMemoryBound(to: Float.self),
                                UnsafeRawPointer(yl).assumingMemoryBound(to: Float.self), count: n,
                                into: UnsafeMutableRawPointer(ol).assumingMemoryBound(to: Float.self)) { $0 - expVector($1) * sumV }
                } else {
                    for k in 0..<n { ol[k] = gl[k] - T.exp(yl[k]) * acc }
                }
            }
            return out
        }
        let tile = 256
        withUnsafeTemporaryAllocation(of: T.self, capacity: tile) { buf in
            let acc = buf.baseAddress!
            for o in 0..<outer {
                var j0 = 0
                while j0 < inner {
                    let w = Swift.min(tile, inner - j0)
                    let base = o * n * inner + j0
                    for j in 0..<w { acc[j] = 0 }
                    for k in 0..<n {
                        let gr = pg + base + k * inner, yr = py + base + k * inner
                        if log { for j in 0..<w { acc[j] += gr[j] } } else { for j in 0..<w { acc[j] += gr[j] * yr[j] } }
                    }
                    for k in 0..<n {
                        let gr = pg + base + k * inner, yr = py + base + k * inner, orow = po + base + k * inner
                        if log {
                            if T.self == Float.self {
                                // exp(y) for the row of the tile, vectorised, then combined.
                                applyFloat8(UnsafeRawPointer(yr).assumingMemoryBound(to: Float.self), stride: 1, count: w,
                                            into: UnsafeMutableRawPointer(orow).assumingMemoryBound(to: Float.self), expVector)
                                for j in 0..<w { orow[j] = gr[j] - orow[j] * acc[j] }
                            } else {
                                for j in 0..<w { orow[j] = gr[j] - T.exp(yr[j]) * acc[j] }
                            }
                        } else {
                            for j in 0..<w { orow[j] = yr[j] * (gr[j] - acc[j]) }
                        }
                    }
                    j0 += w
                }
            }
        }
        return out
    }
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
